"""``firestore-to-bq schema check``: every problem of every schema file at once, with its key.

    firestore-to-bq schema check [--schemas_dir DIR]
    firestore-to-bq schema drift --project P --dataset D [...]   (pipelines/cli/schema_drift.py)

Validates each ``.json`` file of the folder (the packaged ``schemas/`` by
default) the way the sync, ``status`` and ``setup_bigquery.py`` load it, and
prints every problem of every file on stderr, one per line, ``file: key path:
what is wrong`` with what is allowed and, for a misspelt key, the closest
known one; exits 2 if there is any. Otherwise prints one line per table (its
columns, source, partition column, clustering and change field) and exits 0.
The format is in ``docs/schemas.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipelines.cli.usage import Parser, UsageError
from pipelines.convert.table_spec import SYNC_COLUMNS, TableSpec, check_specs, did_you_mean

PROG = "firestore-to-bq schema"
#: The ``schema`` commands.
COMMANDS = {
    "check": "validate the schema files and list their tables",
    "suggest": "propose a schema file from a sample of a collection",
    "drift": "what the synced rows hold that the schema files do not declare",
}
USAGE = {
    "check": "check [--schemas_dir DIR]",
    "suggest": "suggest --project P --path PATH [--out FILE] …",
    "drift": "drift --project P --dataset D [--schemas_dir DIR] [--days N] [--fail_on_drift]",
}


def parser() -> Parser:
    p = Parser(prog=f"{PROG} check", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--schemas_dir",
        help="Folder of table schemas to check (default: the packaged schemas/).",
    )
    return p


def describe(spec: TableSpec) -> str:
    """One line: what the sync will do with the table."""
    if spec.layout == "per_user":
        source = f"{spec.parent_collection}/{{{spec.user_id_column}}}/{spec.collection}"
    else:
        source = spec.collection
    partition = spec.partition
    kind = partition.type
    if partition.timestamp_source:
        kind += f" from {partition.timestamp_source}"
    parts = [
        f"{len(spec.columns)} columns (+{len(SYNC_COLUMNS)} sync columns)",
        f"from {source}",
        f"partitioned by DAY({partition.name}) ({kind})",
        "clustered by " + ", ".join(spec.clustering) if spec.clustering else "not clustered",
        f"change field {spec.change_field}" if spec.change_field else "no change field",
    ]
    if partition.from_create_time:
        # Said here so no one expects nightly runs to read one day of it.
        parts.append("read whole every run (Firestore cannot query a document's create time)")
    return f"{spec.name}: " + ", ".join(parts)


def check(schemas_dir: str | None) -> int:
    """Print the folder's problems (exit 2) or its tables (exit 0)."""
    try:
        specs, problems = check_specs(schemas_dir)
    except OSError as exc:
        raise UsageError(f"--schemas_dir: cannot read {exc.filename or schemas_dir}") from None
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        files = len({p.origin for p in problems if p.origin})
        where = f" in {files} file{'s' if files != 1 else ''}" if files else ""
        count = f"{len(problems)} error{'s' if len(problems) != 1 else ''}"
        print(f"schema check: {count}{where}; see docs/schemas.md", file=sys.stderr)
        return 2
    for spec in specs.values():
        print(describe(spec))
    return 0


def main(argv: Sequence[str]) -> int:
    """``schema COMMAND …``: 0 valid, 2 schema errors or bad arguments."""
    args = list(argv)
    commands = ", ".join(COMMANDS)
    try:
        if not args or args[0] in ("-h", "--help"):
            if not args:
                raise UsageError(f"{PROG} needs a command: {commands}")
            print("usage: " + "\n       ".join(f"{PROG} {u}" for u in USAGE.values()) + "\n")
            for name, about in COMMANDS.items():
                print(f"  {name:8} {about}")
            return 0
        if args[0] not in COMMANDS:
            close = did_you_mean(args[0], COMMANDS)
            raise UsageError(
                f"unknown command {PROG} {args[0]}: " + (close or f"the commands are {commands}")
            )
        if args[0] == "suggest":
            from pipelines.cli import schema_suggest

            return schema_suggest.main(args[1:])
        if args[0] == "drift":
            from pipelines.cli import schema_drift

            return schema_drift.main(args[1:])
        try:
            options = parser().parse_args(args[1:])
        except SystemExit as done:  # --help
            return int(done.code or 0)
        return check(options.schemas_dir)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
