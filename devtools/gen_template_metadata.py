"""Generate ``deploy/metadata.json``, the Flex Template's parameters, from ``SyncOptions``.

    python scripts/gen_template_metadata.py           # rewrite the file
    python scripts/gen_template_metadata.py --check   # exit 1 if the committed file is stale

The template must accept exactly the options the pipeline parses, with the same
help texts, or the Dataflow console shows parameters the pipeline ignores (or
hides ones it needs). Reading the argparse definitions instead of keeping a
hand-written copy is what stops the two from drifting; ``--check`` runs in CI.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools import REPO_ROOT
from pipelines.cli.options import DATE_PATTERN, SyncOptions
from pipelines.convert.table_spec import IDENTIFIER
from pipelines.state.commit_log import RUN_ID

METADATA_PATH = REPO_ROOT / "deploy" / "metadata.json"

TEMPLATE_NAME = "Firestore to BigQuery"
TEMPLATE_DESCRIPTION = (
    "Syncs Firestore collections into day-partitioned BigQuery tables, replacing whole "
    "days from one Firestore snapshot. Without a date it catches up to yesterday (UTC) from "
    "the last successful run, reading only what changed (mode incremental); mode full reads "
    "whole collections."
)
#: Parsed by the entry point itself (``pop_dry_run``), not by ``SyncOptions``.
DRY_RUN = "dry_run"
DRY_RUN_HELP = "Read and convert everything but write nothing to BigQuery (true or false)."

#: Labels that ``name.replace("_", " ").capitalize()`` would get wrong.
LABELS = {
    "dataset": "BigQuery dataset",
    "date": "Date (UTC)",
    "num_splits": "Read splits per collection",
    "load_batch_rows": "Rows per load job",
    "read_time": "Firestore read time",
    "firestore_database": "Firestore database",
    "bq_location": "BigQuery location",
    "schemas_dir": "Schemas folder",
    "run_id": "Run ID",
    "hash_key_env": "Hash key environment variable",
    "firestore_retry_timeout": "Firestore retry timeout (seconds)",
    "mode": "Mode (incremental or full)",
    "intraday": "Bring today up to the snapshot (hourly)",
    "max_catchup_days": "Most missed days caught up",
    "verify_days": "Days checked for drift",
    "allow_shrink": "Allow days to shrink",
    "lease_minutes": "Table lease (minutes)",
    "lease_wait_seconds": "Wait for a lease (seconds)",
    DRY_RUN: "Dry run",
}
#: ``resolve()`` refuses to run without these (outside a dry run), though argparse
#: cannot say so: they have to be optional there so ``--dry_run`` works without them.
REQUIRED = {"dataset"}

INTEGER = r"^[0-9]+$"
NUMBER = r"^[0-9]+(\.[0-9]+)?$"
COLLECTIONS = r"^[A-Za-z0-9_\-]+( *, *[A-Za-z0-9_\-]+)*$"
BOOLEAN = r"^(true|false)$"


def portable(pattern: str) -> str:
    r"""A Python pattern as Dataflow validates it: ``\Z`` is not in every regex dialect."""
    return pattern.replace(r"\Z", "$")


#: Per-option regexes; options with ``type=int``/``float`` get theirs from the type.
REGEXES = {
    "dataset": [portable(IDENTIFIER.pattern)],
    "date": [portable(DATE_PATTERN)],
    "start_date": [portable(DATE_PATTERN)],
    "end_date": [portable(DATE_PATTERN)],
    "collections": [COLLECTIONS],
    "run_id": [portable(RUN_ID.pattern)],
}
TYPE_REGEXES: dict[type | None, list[str]] = {int: [INTEGER], float: [NUMBER]}


def option_actions() -> list[argparse.Action]:
    """The options ``SyncOptions`` adds, read from a bare parser (no Beam options mixed in)."""
    parser = argparse.ArgumentParser(add_help=False)
    SyncOptions._add_argparse_args(parser)
    return [action for action in parser._actions if action.option_strings]


def parameter_name(action: argparse.Action) -> str:
    """The option without its dashes: the launcher passes parameters back as ``--name=value``."""
    long = [s for s in action.option_strings if s.startswith("--")]
    if len(long) != 1 or long[0][2:] != action.dest:
        raise ValueError(f"option {action.option_strings} must be one --{action.dest} flag")
    return action.dest


def choice_regex(choices: Sequence[str]) -> str:
    """Exactly one of ``choices``: Dataflow refuses anything else before launching."""
    return "^(" + "|".join(re.escape(c) for c in choices) + ")$"


def parameter(
    name: str,
    help_text: str,
    kind: type | None,
    required: bool,
    choices: Sequence[str] | None = None,
    boolean: bool = False,
) -> dict[str, Any]:
    """One console parameter; a boolean is ``true``/``false``, a choice one of its values."""
    param: dict[str, Any] = {
        "name": name,
        "label": LABELS.get(name, name.replace("_", " ").capitalize()),
        "helpText": help_text,
        "isOptional": not required,
    }
    if boolean:
        regexes = [BOOLEAN]
    elif choices:
        regexes = [choice_regex(choices)]
    else:
        regexes = REGEXES.get(name) or TYPE_REGEXES.get(kind, [])
    if regexes:
        param["regexes"] = list(regexes)
    if kind in (int, float):
        param["paramType"] = "NUMBER"
    elif boolean:
        param["paramType"] = "BOOLEAN"
    else:
        param["paramType"] = "TEXT"
    return param


def build_metadata() -> dict[str, Any]:
    """The whole metadata document: one parameter per option, then ``dry_run``."""
    params = []
    for action in option_actions():
        name = parameter_name(action)
        if not action.help:
            raise ValueError(f"--{name} has no help text; the console would show nothing")
        params.append(
            parameter(
                name,
                action.help,
                action.type,
                action.required or name in REQUIRED,
                choices=action.choices,
                # A flag's default is a bool whatever parses it (``--flag=false`` too).
                boolean=isinstance(action.default, bool),
            )
        )
    params.append(parameter(DRY_RUN, DRY_RUN_HELP, None, False, boolean=True))
    return {
        "name": TEMPLATE_NAME,
        "description": TEMPLATE_DESCRIPTION,
        "streaming": False,
        "parameters": params,
    }


def render(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=METADATA_PATH, help="file to write")
    args = parser.parse_args(argv)
    wanted = render(build_metadata())
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if args.check:
        if current == wanted:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            f"{args.output} (committed)",
            f"{args.output} (from SyncOptions)",
        )
        sys.stderr.writelines(diff)
        print(
            f"error: {args.output} is out of date; run python scripts/gen_template_metadata.py",
            file=sys.stderr,
        )
        return 1
    if current != wanted:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(wanted, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
