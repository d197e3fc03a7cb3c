"""The command line around ``SyncOptions``: unknown arguments, ``--help``, ``--log_level``.

Beam parses options leniently: an argument no ``PipelineOptions`` class
defines is dropped with an "Unparseable argument" warning, so a misspelled
``--start-date`` silently syncs yesterday instead. Here every argument is checked
against the same parser Beam builds (all ``PipelineOptions`` subclasses, ours
included) and one that fits none is refused, with the closest spelling.
:class:`Parser` gives the smaller commands (``status``, the analytics CLI,
``firestore-to-bq backfill``) the same contract with plain argparse.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.cli.options import SyncOptions
from pipelines.cli.usage import Parser, UsageError, unknown_option

PROG = "firestore-to-bq"
HELP = ("-h", "--help")
HELP_BEAM = "--help_beam"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DRY_RUN_HELP = (
    "Read and convert, print what would be written; write nothing to BigQuery. "
    "Takes an optional =true/=false."
)
LOG_LEVEL_HELP = "Console log level. DEBUG also prints the traceback of a failure. Default: INFO."


def beam_parser() -> argparse.ArgumentParser:
    """The parser Beam itself builds from every ``PipelineOptions`` subclass.

    Taken from ``get_all_options``' hook rather than rebuilt, so it holds
    exactly the options Beam would parse, whatever classes are loaded.
    """
    captured: list[argparse.ArgumentParser] = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=captured.append)
    return captured[0]


def _entry_point_options() -> list[str]:
    """Options the entry point takes out before Beam sees the rest."""
    return ["--dry_run", "--log_level", *HELP, HELP_BEAM]


def check_known(args: Sequence[str]) -> None:
    """Refuse the first argument that no option (Beam's or ours) accepts.

    Raises :class:`UsageError` naming it and, when one is close, the right spelling.
    """
    parser = beam_parser()
    _, unknown = parser.parse_known_args(list(args))
    if not unknown:
        return
    first = next((a for a in unknown if a.startswith("-")), unknown[0])
    if not first.startswith("-"):
        raise UsageError(f"unexpected argument {first!r} (options start with --; see --help)")
    name = first.split("=", 1)[0]
    known = sorted(
        {s for a in parser._actions for s in a.option_strings if s.startswith("--")}
        | set(_entry_point_options())
    )
    raise unknown_option(
        name, known, f" (run {PROG} --help for the sync's options, {HELP_BEAM} for Beam's)"
    )


#: ``--dry_run`` alone, or with one of these, is true; with 0, false or no, false.
TRUE_WORDS = frozenset({"", "1", "true", "yes"})
FALSE_WORDS = frozenset({"0", "false", "no"})


def _pop(argv: Sequence[str], flag: str, **how: Any) -> tuple[str | None, list[str]]:
    """Take ``flag`` (the last one given wins) out of ``argv``, the rest left in order.

    Options the entry point reads before Beam's parser sees the rest; argparse's
    ``parse_known_args`` does the taking, and its mistakes are :class:`UsageError`s.
    """
    parser = Parser(add_help=False)
    parser.add_argument(flag, dest="value", **how)
    found, rest = parser.parse_known_args(list(argv))
    return found.value, rest


def pop_dry_run(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """Take ``--dry_run[=true|false]`` out of ``argv``.

    Beam's own ``TestOptions`` owns ``--dry_run`` (it stops Dataflow from
    submitting the job at all), so ours never reaches ``PipelineOptions``.
    """
    value, rest = _pop(argv, "--dry_run", nargs="?", const="true", default="false")
    if value.lower() not in TRUE_WORDS | FALSE_WORDS:
        raise UsageError(f"--dry_run takes true or false, not {value!r}")
    return value.lower() in TRUE_WORDS, rest


def pop_log_level(argv: Sequence[str]) -> tuple[int, list[str]]:
    """Take ``--log_level LEVEL`` (or ``=LEVEL``) out of ``argv``; INFO by default."""
    if argv and argv[-1] == "--log_level":
        raise UsageError("--log_level needs a value: " + ", ".join(LOG_LEVELS))
    level, rest = _pop(argv, "--log_level", default="INFO")
    if level.upper() not in LOG_LEVELS:
        raise UsageError(f"--log_level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    return logging.getLevelName(level.upper()), rest


class _DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default after the help text, when there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, "", False, argparse.SUPPRESS)
        if shown and "default" not in text.lower():
            text += " (default: %(default)s)"
        return text


def help_parser() -> argparse.ArgumentParser:
    """The parser ``--help`` prints: ``SyncOptions``, the entry point's, the Beam options used most.

    The README's options table is generated from it too (``scripts/gen_table_docs.py``),
    so the two cannot differ.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_DefaultsFormatter,
        add_help=False,
        usage=f"{PROG} --project P --dataset D [--date YYYY-MM-DD | --start_date YYYY-MM-DD "
        "--end_date YYYY-MM-DD] [options] [Beam options]\n"
        f"       {PROG} status --project P --dataset D [--max_lag_days N] "
        "[--max_lag_minutes M] [--release_leases RUN_ID]\n"
        f"       {PROG} backfill --start_date D --end_date D [--chunk_days N] -- "
        "--project P --dataset D [options]\n"
        f"       {PROG} schema check [--schemas_dir DIR]\n"
        f"       {PROG} schema suggest --project P --path 'users/{{user_id}}/C' [--out FILE]\n"
        f"       {PROG} schema drift --project P --dataset D [--days N] [--fail_on_drift]",
        description="Sync Firestore collections into day-partitioned BigQuery tables.\n"
        "With no date it is the nightly: each table catches up to yesterday (UTC),\n"
        "reading only what changed since its last successful run.",
        epilog="Every Apache Beam pipeline option is accepted too (--region, --temp_location,\n"
        f"--max_num_workers, --direct_num_workers, …): {PROG} {HELP_BEAM} lists them.\n"
        "Exit codes: 0 success; 1 the run failed or did not reconcile; 2 bad arguments.",
    )
    SyncOptions._add_argparse_args(parser.add_argument_group("sync options"))
    entry = parser.add_argument_group("entry point")
    entry.add_argument("--dry_run", action="store_true", help=DRY_RUN_HELP)
    entry.add_argument("--log_level", choices=LOG_LEVELS, default="INFO", help=LOG_LEVEL_HELP)
    entry.add_argument(*HELP, action="store_true", help="Show this help.")
    entry.add_argument(HELP_BEAM, action="store_true", help="List every Beam pipeline option.")
    beam = parser.add_argument_group("Beam options used most")
    beam.add_argument("--project", help="Google Cloud project of Firestore and BigQuery.")
    beam.add_argument("--runner", help="DirectRunner (default, in-process) or DataflowRunner.")
    return parser


def sync_help() -> str:
    """``--help``: the sync's own options, read from ``SyncOptions``, apart from Beam's."""
    return help_parser().format_help()


def beam_help() -> str:
    """``--help_beam``: every option Beam accepts, as Beam describes them."""
    parser = beam_parser()
    parser.prog = PROG
    return parser.format_help()
