"""Create the Firestore indexes that incremental runs need, or write them as a Firebase file.

    python scripts/create_firestore_indexes.py --project P [--database "(default)"] \\
        [--schemas_dir schemas] [--async] [--dry_run]
    python scripts/create_firestore_indexes.py --write_file  # rewrite deploy/firestore.indexes.json
    python scripts/create_firestore_indexes.py --check_file  # exit 1 if that file is stale

Incremental runs query each collection group by ranges of its partition and
change fields; Firestore serves those only from collection-group indexes, which
it does not create by default (the query fails with FAILED_PRECONDITION). One
``gcloud firestore indexes fields update`` per field sets them, keeping the
field's default indexes; rerunning it changes nothing. Teams that deploy indexes
with the Firebase CLI merge ``deploy/firestore.indexes.json`` instead.
``--dry_run`` prints the commands and runs nothing.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from devtools import REPO_ROOT
from devtools.deploy_args import DATABASE, UsageError, checked, deploy_main, run_step
from devtools.firestore_indexes import index_config, render, update_command
from pipelines.convert.table_spec import SchemaError, load_specs
from pipelines.services.bigquery import PROJECT_ID

INDEX_FILE = REPO_ROOT / "deploy" / "firestore.indexes.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", help="Google Cloud project id.")
    parser.add_argument("--database", default="(default)", help="Firestore database id.")
    parser.add_argument(
        "--schemas_dir",
        help="Table schemas (default: $F2BQ_SCHEMAS_DIR, else the packaged schemas/).",
    )
    parser.add_argument(
        "--async", dest="run_async", action="store_true", help="Do not wait for index builds."
    )
    parser.add_argument("--dry_run", action="store_true", help="Print, run nothing.")
    files = parser.add_mutually_exclusive_group()
    files.add_argument("--write_file", action="store_true", help="Rewrite the index file.")
    files.add_argument("--check_file", action="store_true", help="Exit 1 if it is stale.")
    parser.add_argument("--output", type=Path, default=INDEX_FILE, help="The index file.")
    args = parser.parse_args(argv)
    if not (args.write_file or args.check_file):
        if not args.project:
            raise UsageError("--project is required")
        checked(args.project, PROJECT_ID, "--project")
        checked(args.database, DATABASE, "--database")
    else:
        args.dry_run = False  # the file modes write or check a file, nothing else
    try:
        args.specs = list(load_specs(args.schemas_dir).values())
    except (SchemaError, OSError) as exc:
        raise UsageError(str(exc)) from None
    return args


def commands(args: argparse.Namespace) -> list[list[str]]:
    """One ``fields update`` per range field, in the index file's order."""
    return [
        update_command(override, args.project, args.database, args.run_async)
        for override in index_config(args.specs)["fieldOverrides"]
    ]


def sync_file(args: argparse.Namespace) -> int:
    """``--write_file`` / ``--check_file``: the committed file must be the generator's output."""
    wanted = render(index_config(args.specs))
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if current == wanted:
        return 0
    if args.check_file:
        sys.stderr.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                f"{args.output} (committed)",
                f"{args.output} (from schemas)",
            )
        )
        print(
            f"error: {args.output} is out of date; "
            "run python scripts/create_firestore_indexes.py --write_file",
            file=sys.stderr,
        )
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(wanted, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def apply(args: argparse.Namespace) -> int:
    """Run the commands in order; stop at the first that fails."""
    planned = commands(args)
    for command in planned:
        if not run_step(command, what=shlex.join(command[:7])):
            return 1
    print(f"indexed {len(planned)} fields in {args.project} database {args.database}")
    return 0


def print_commands(args: argparse.Namespace) -> None:
    for command in commands(args):
        print(shlex.join(command))


def run(args: argparse.Namespace) -> int:
    return sync_file(args) if args.write_file or args.check_file else apply(args)


def main(argv: Sequence[str] | None = None) -> int:
    return deploy_main(argv, parse_args, print_commands, run)


if __name__ == "__main__":
    sys.exit(main())
