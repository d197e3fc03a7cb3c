"""``firestore-to-bq schema suggest``: a schema file proposed from a sample of a collection.

    firestore-to-bq schema suggest --project P --path 'users/{user_id}/workouts'
        [--table NAME] [--sample N] [--out FILE] [--update FILE]
        [--firestore_database DB]

Reads about N documents (default 500) spread over the collection group's whole
key range (:mod:`pipelines.services.sampling`), proposes a schema file that
``schema check`` accepts and a sync runs with unedited
(:mod:`pipelines.convert.suggestion`), writes it to ``--out`` (stdout without
it) and reports on stderr how many documents it read and, per field, the kinds
seen with counts and null share, the type chosen and why; then the partition
column, the change field and the fields that look personal. ``--update FILE``
adds to FILE (or writes to ``--out``) what the sample has that FILE lacks,
changing nothing already declared. Exit 0; 2 for bad arguments; 1 when
Firestore cannot be read or the collection is empty.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.api_core.exceptions import GoogleAPICallError, RetryError

from pipelines.cli.usage import Parser, UsageError
from pipelines.convert.suggestion import CollectionPath, parse_path, problems, suggest, update
from pipelines.convert.table_spec import IDENTIFIER, TableSpec

PROG = "firestore-to-bq schema suggest"
DEFAULT_SAMPLE = 500
MAX_SAMPLE = 100_000


def parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--project", required=True, help="Google Cloud project of the database.")
    p.add_argument(
        "--path",
        required=True,
        help="The documents: 'PARENT/{user_id}/COLLECTION' (a collection group under owner "
        "documents) or 'COLLECTION' (a top-level collection).",
    )
    p.add_argument("--table", help="BigQuery table name (default: the collection id).")
    p.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help=f"Documents to read, spread over the key range (default {DEFAULT_SAMPLE}).",
    )
    p.add_argument("--out", help="Write the schema file here (default: stdout).")
    p.add_argument(
        "--update",
        help="An existing schema file: add what the sample has that it lacks, change nothing "
        "declared; written back to it unless --out is given.",
    )
    p.add_argument("--firestore_database", default="(default)", help="Firestore database id.")
    p.add_argument("--seed", type=int, help="Seed of the random sample points (to repeat one).")
    return p


def _spec_for(path: CollectionPath, table: str) -> TableSpec:
    """The smallest spec the Firestore helpers need to query the collection."""
    return TableSpec(
        name=table,
        collection=path.collection,
        layout=path.layout,
        parent_collection=path.parent_collection,
        id_column="id",
        partition_column="",
        columns=(),
    )


def _existing(update_file: str) -> dict[str, Any]:
    try:
        raw = json.loads(Path(update_file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--update: cannot read {exc.filename or update_file}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--update: {update_file} is not a JSON schema file ({exc})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"--update: {update_file} holds no schema object")
    return raw


def run(options: Any) -> int:
    from pipelines.services import firestore as fs
    from pipelines.services import sampling

    try:
        path = parse_path(options.path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= options.sample <= MAX_SAMPLE:
        raise UsageError(f"--sample must be between 1 and {MAX_SAMPLE}, got {options.sample}")
    if options.table is not None and not IDENTIFIER.match(options.table):
        raise UsageError(f"--table {options.table!r} is not a BigQuery table name")
    existing = _existing(options.update) if options.update else None
    if existing is not None:
        source = existing.get("source") if isinstance(existing.get("source"), dict) else {}
        declared = source.get("collection", existing.get("table"))
        if declared != path.collection:
            raise UsageError(
                f"--update: {options.update} reads collection {declared!r}, not "
                f"{path.collection!r} of --path"
            )
    table = options.table or (existing or {}).get("table")
    client = fs.make_client(options.project, options.firestore_database)
    retry = fs.read_retry(120.0)
    # One snapshot for every query of the sample, as the sync reads: the clock's now.
    read_time = datetime.datetime.now(datetime.UTC)
    found = sampling.sample(
        client, _spec_for(path, "sample"), options.sample, read_time, retry, options.seed
    )
    print(f"schema suggest: {found.describe(path.pattern)}", file=sys.stderr)
    if not found.documents:
        print(f"error: no documents in {path.pattern}: nothing to suggest from", file=sys.stderr)
        return 1
    result = suggest(path, found.documents, table if isinstance(table, str) else None)
    if existing is not None:
        result = update(existing, result)
    for line in result.report:
        print(line, file=sys.stderr)
    origin = Path(options.out or options.update or "suggested.json").name
    wrong = problems(result.schema, origin)
    if wrong:  # a rule of suggest's own is wrong: say so rather than write a broken file
        for line in wrong:
            print(f"error: {line}", file=sys.stderr)
        return 1
    text = json.dumps(result.schema, indent=2, ensure_ascii=False) + "\n"
    target = options.out or options.update
    if target:
        Path(target).write_text(text, encoding="utf-8")
        print(
            f"wrote {target}; next: firestore-to-bq schema check --schemas_dir "
            f"{Path(target).parent or '.'}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str]) -> int:
    """``schema suggest …``: 0 written, 1 unreadable or empty, 2 bad arguments."""
    try:
        try:
            options = parser().parse_args(list(argv))
        except SystemExit as done:  # --help
            return int(done.code or 0)
        return run(options)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (GoogleAPICallError, RetryError) as exc:
        text = exc.message if isinstance(exc, GoogleAPICallError) else str(exc)
        print(f"error: reading {options.path}: {type(exc).__name__}: {text}", file=sys.stderr)
        return 1
