"""Usage errors of every command: one line, never argparse's usage dump.

Free of Beam, so the analytics command (installed without Beam) shares it with
the sync, ``status`` and the backfill.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn


class UsageError(ValueError):
    """Bad arguments: reported as one line, before anything runs."""


def unknown_option(name: str, known: Sequence[str], otherwise: str) -> UsageError:
    """``unknown option --x: did you mean --y?``, or ``otherwise`` when nothing is close."""
    return UsageError(f"unknown option {name}{suggestion(name, known) or otherwise}")


def suggestion(name: str, known: Sequence[str]) -> str:
    """``: did you mean --x?`` for the closest known option, or ""."""
    normalized = "--" + name.lstrip("-").replace("-", "_").lower()
    if normalized in known:
        match = normalized
    else:
        close = difflib.get_close_matches(normalized, known, n=1, cutoff=0.75)
        match = close[0] if close else None
    return f": did you mean {match}?" if match else ""


class Parser(argparse.ArgumentParser):
    """argparse for a small command: every mistake is one :class:`UsageError` line.

    argparse prints its usage and exits, and checks required options before it
    reports unknown ones, so ``--user-id U`` got "required: --user_id". Here an
    unknown ``--option`` is refused first, with the closest spelling; ``--help``
    still prints and raises ``SystemExit(0)``. Abbreviations are off, so an
    option is accepted only as spelled.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        known = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        for arg in argv:
            if arg == "--":  # what follows is not ours to check
                break
            name = arg.split("=", 1)[0]
            if name.startswith("--") and name not in known:
                raise unknown_option(name, known, f" (see {self.prog} --help)")
        return super().parse_args(argv, namespace)
