"""One-line error messages that carry no document content.

Failure messages are logged, printed and stored in ``_sync_runs``, but some
quote the value that failed: BigQuery's "Bad int64 value: …", the emulator's
"Could not convert string '…' to INT64". So a message is cut to its first line
and every quoted string or ``value: …`` in it is replaced by ``…``, except
names the sync itself declares (tables and columns), which say where it failed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from pipelines.convert.table_spec import TableSpec

_QUOTED = re.compile(r"""(['"])(.*?)\1""")
_AFTER_VALUE = re.compile(r"(?i)(\bvalues?:\s*)([^;]+)")
REDACTED = "…"


def names(tables: Iterable[TableSpec]) -> frozenset[str]:
    """Table and column names: safe to show in an error, and what makes it useful."""
    return frozenset(n for t in tables for n in (t.name, t.collection, *t.column_names))


def scrub(text: str, keep: Collection[str] = ()) -> str:
    """``text`` with quoted strings and ``value: …`` tails redacted, unless in ``keep``."""

    def quoted(match: re.Match[str]) -> str:
        quote, inner = match.groups()
        step = match.string[: match.start()].endswith("while running ")  # Beam's step label
        return match.group(0) if inner in keep or step else f"{quote}{REDACTED}{quote}"

    def value(match: re.Match[str]) -> str:
        label, rest = match.groups()
        return match.group(0) if rest.strip() in keep else f"{label}{REDACTED}"

    return _AFTER_VALUE.sub(value, _QUOTED.sub(quoted, text))


def one_line(exc: BaseException, keep: Collection[str] = (), limit: int = 300) -> str:
    """``Type: first line of the message``, scrubbed and cut to ``limit`` characters."""
    lines = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
    line = scrub(lines[0], keep) if lines else ""
    line = line if len(line) <= limit else line[:limit] + REDACTED
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
