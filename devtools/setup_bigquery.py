"""Create or migrate the sync's BigQuery dataset and tables, additively and idempotently.

    python scripts/setup_bigquery.py --project P --dataset D [--location US] \\
        [--schemas_dir DIR] [--dry_run]

Creates the dataset, one day-partitioned, clustered table per schema in
``schemas/``, the dead-letter table, the ``_sync_runs`` audit table and the
dashboard views of ``f2bq_analytics/analytics.py`` (rewritten when their SQL changes). On
existing tables it applies only what cannot lose data: new NULLABLE (or
REPEATED) columns, REQUIRED columns relaxed to NULLABLE, and descriptions.
Anything else (a removed column, a type change, a column made REQUIRED,
different partitioning or clustering, another location) needs a deliberate
migration, so the script refuses it, names the table and column, exits 1 and
changes nothing at all: every table is checked before the first change.
``--dry_run`` prints the same plan and changes nothing either.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery

from f2bq_analytics import analytics
from pipelines.convert.table_spec import TYPE_ALIASES, SchemaError, load_specs
from pipelines.services import bigquery as bq
from pipelines.state.tables import TableDefinition, definitions, ensure

#: Deadline of any one call, retries included: the emulator's 500s would
#: otherwise be retried by the client for ten minutes.
TIMEOUT = 30.0
RETRY = bigquery.DEFAULT_RETRY.with_timeout(60.0)
TYPES = {
    **TYPE_ALIASES,
    "RECORD": "STRUCT",
    "STRUCT": "STRUCT",
    "NUMERIC": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "BYTES": "BYTES",
    "DATETIME": "DATETIME",
    "GEOGRAPHY": "GEOGRAPHY",
}
#: Label holding a hash of a view's SQL. Views are compared by it because
#: bqemulator does not return a view's query; where BigQuery does, the query is
#: compared too, so a view edited by hand is put back.
VIEW_SQL_LABEL = "f2bq_sql_sha256"


class Refused(Exception):
    """A change that could lose data or needs a migration; the message says which."""


@dataclass
class TableMigration:
    """What to do to one table; ``create`` or a list of in-place changes."""

    desired: TableDefinition
    create: bool = False
    changes: list[str] = field(default_factory=list)
    schema: list[bigquery.SchemaField] | None = None
    description_changed: bool = False
    existing: bigquery.Table | None = None


def desired_tables(schemas_dir: str | None) -> list[TableDefinition]:
    """The synced tables from ``schemas/``, then the dead-letter and audit tables."""
    return definitions(load_specs(schemas_dir).values())


@dataclass
class ViewPlan:
    """One dashboard view: its SQL and whether to create or update it."""

    name: str
    sql: str
    description: str
    action: str = ""
    existing: bigquery.Table | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:32]


def plan_view(
    client: bigquery.Client, dataset: str, view: analytics.Sql, description: str
) -> ViewPlan:
    plan = ViewPlan(view.name, view.text(client.project, dataset), description)
    try:
        existing = client.get_table(
            f"{client.project}.{dataset}.{view.name}", retry=RETRY, timeout=TIMEOUT
        )
    except api_exceptions.NotFound:
        plan.action = "create"
        return plan
    if existing.table_type != "VIEW":
        raise Refused(f"{dataset}.{view.name} is a {existing.table_type}, not a view")
    same = (
        (existing.labels or {}).get(VIEW_SQL_LABEL) == plan.digest
        and existing.view_query in (None, plan.sql)
        and (existing.description or "") == description
    )
    plan.action, plan.existing = ("" if same else "update"), existing
    return plan


def apply_view(client: bigquery.Client, dataset: str, plan: ViewPlan) -> None:
    view = plan.existing or bigquery.Table(f"{client.project}.{dataset}.{plan.name}")
    view.view_query = plan.sql
    view.description = plan.description
    view.labels = {VIEW_SQL_LABEL: plan.digest}
    if plan.existing is None:
        client.create_table(view, retry=RETRY, timeout=TIMEOUT)
    else:
        client.update_table(
            view, ["view_query", "description", "labels"], retry=RETRY, timeout=TIMEOUT
        )


def normal_type(name: str | None) -> str:
    upper = str(name or "").upper()
    return TYPES.get(upper, upper)


def normal_mode(mode: str | None) -> str:
    return str(mode or "NULLABLE").upper()


def plan_schema(
    table: str, existing: Sequence[bigquery.SchemaField], desired: Sequence[Mapping[str, str]]
) -> tuple[list[bigquery.SchemaField], list[str]]:
    """The migrated schema (existing columns first, in order) and the changes it makes.

    Raises :class:`Refused` for anything that is not additive.
    """
    wanted = {f["name"].lower(): f for f in desired}
    schema: list[bigquery.SchemaField] = []
    changes: list[str] = []
    for old in existing:
        new = wanted.pop(old.name.lower(), None)
        if new is None:
            raise Refused(
                f"table {table}: column {old.name} is no longer in the schema; removing a "
                "column is not automatic (it drops data)"
            )
        old_type, new_type = normal_type(old.field_type), normal_type(new["type"])
        if old_type != new_type:
            raise Refused(
                f"table {table}: column {old.name} would change type {old_type} -> {new_type}"
            )
        if old_type == "STRUCT":
            _same_sub_fields(table, old.name, old.fields, new.get("fields") or [])
        old_mode, new_mode = normal_mode(old.mode), normal_mode(new.get("mode"))
        mode = old_mode
        if old_mode != new_mode:
            if (old_mode, new_mode) != ("REQUIRED", "NULLABLE"):
                raise Refused(
                    f"table {table}: column {old.name} would change mode {old_mode} -> "
                    f"{new_mode}; only REQUIRED -> NULLABLE is safe"
                )
            mode = new_mode
            changes.append(f"relax column {table}.{old.name} REQUIRED -> NULLABLE")
        description = new.get("description") or None
        if (old.description or None) != description:
            changes.append(f"update description of column {table}.{old.name}")
        # A RECORD's sub-fields are the same but for descriptions: take the new ones.
        api = dict(new) if old_type == "STRUCT" else old.to_api_repr()
        api["mode"] = mode
        if description is None:
            api.pop("description", None)
        else:
            api["description"] = description
        schema.append(bigquery.SchemaField.from_api_repr(api))
    for new in wanted.values():
        mode = normal_mode(new.get("mode"))
        if mode == "REQUIRED":
            raise Refused(
                f"table {table}: new column {new['name']} is REQUIRED; existing rows have no "
                "value for it (add it as NULLABLE)"
            )
        schema.append(bigquery.SchemaField.from_api_repr(dict(new)))
        changes.append(f"add column {table}.{new['name']} {new['type']} {mode}")
    return schema, changes


def _same_sub_fields(
    table: str,
    path: str,
    existing: Sequence[bigquery.SchemaField],
    desired: Sequence[Mapping[str, object]],
) -> None:
    """Refuse any change to an existing RECORD's sub-fields but descriptions.

    Even an added NULLABLE sub-field: BigQuery takes it by a schema patch, but
    ``ALTER TABLE … ADD COLUMN`` cannot name a nested field and bqemulator applies
    patches to its metadata only, so no one code path adds it on both."""
    have = [(f.name.lower(), normal_type(f.field_type), normal_mode(f.mode)) for f in existing]
    want = [
        (str(f["name"]).lower(), normal_type(str(f["type"])), normal_mode(f.get("mode")))  # type: ignore[arg-type]
        for f in desired
    ]
    if have != want:
        raise Refused(
            f"table {table}: RECORD column {path} would change its sub-fields "
            f"({', '.join(n + ' ' + t for n, t, _ in have)} -> "
            f"{', '.join(n + ' ' + t for n, t, _ in want)}); add a new column instead, or "
            "migrate the table by hand"
        )
    by_name = {str(f["name"]).lower(): f for f in desired}
    for old in existing:
        if normal_type(old.field_type) == "STRUCT":
            new = by_name[old.name.lower()]
            _same_sub_fields(table, f"{path}.{old.name}", old.fields, new.get("fields") or [])  # type: ignore[arg-type]


def plan_table(client: bigquery.Client, dataset: str, desired: TableDefinition) -> TableMigration:
    name = f"{dataset}.{desired.name}"
    ref = f"{client.project}.{name}"
    try:
        existing = client.get_table(ref, retry=RETRY, timeout=TIMEOUT)
    except api_exceptions.NotFound:
        return TableMigration(desired, create=True)
    partitioning = existing.time_partitioning
    have = (partitioning.type_, partitioning.field) if partitioning else None
    if have != ("DAY", desired.partition_column):
        shown = f"{have[0]} on {have[1]}" if have else "none"
        raise Refused(
            f"table {name}: partitioning would change from {shown} to DAY on "
            f"{desired.partition_column}"
        )
    clustering = tuple(existing.clustering_fields or ())
    if clustering != desired.clustering:
        raise Refused(
            f"table {name}: clustering would change from {list(clustering)} to "
            f"{list(desired.clustering)}"
        )
    schema, changes = plan_schema(name, existing.schema, desired.schema)
    plan = TableMigration(desired, existing=existing, changes=changes)
    if changes:
        plan.schema = schema
    if (existing.description or "") != desired.description:
        plan.description_changed = True
        plan.changes.append(f"update description of table {name}")
    return plan


def plan_dataset(client: bigquery.Client, dataset: str, location: str) -> bool:
    """True if the dataset must be created; refuses one that lives elsewhere."""
    try:
        found = client.get_dataset(f"{client.project}.{dataset}", retry=RETRY, timeout=TIMEOUT)
    except api_exceptions.NotFound:
        return True
    if found.location and found.location.upper() != location.upper():
        raise Refused(
            f"dataset {dataset} is in {found.location}, not {location}; a dataset cannot move"
        )
    return False


def add_column_sql(project: str, dataset: str, table: str, column: bigquery.SchemaField) -> str:
    """The DDL that adds one column (BigQuery's ``ALTER TABLE … ADD COLUMN IF NOT
    EXISTS``; one column a statement, as bqemulator takes only one ALTER each)."""
    return (
        f"ALTER TABLE {bq.table_sql(project, dataset, table)} ADD COLUMN IF NOT EXISTS "
        f"{bq.column_list([bq.check_identifier(column.name, 'column')])} {column_type_sql(column)}"
    )


def column_type_sql(column: bigquery.SchemaField) -> str:
    """A column's type in DDL: ``ARRAY<…>`` for REPEATED, ``STRUCT<`a` INT64 NOT NULL, …>``
    for RECORD (a REQUIRED sub-field says so here: a patch may not tighten it later)."""
    kind = normal_type(column.field_type)
    if kind == "STRUCT":
        inner = []
        for sub in column.fields:
            text = f"{bq.column_list([sub.name])} {column_type_sql(sub)}"
            inner.append(text + (" NOT NULL" if normal_mode(sub.mode) == "REQUIRED" else ""))
        kind = f"STRUCT<{', '.join(inner)}>"
    if normal_mode(column.mode) == "REPEATED":
        kind = f"ARRAY<{kind}>"
    return kind


def apply_table(client: bigquery.Client, dataset: str, plan: TableMigration) -> None:
    """Create the table, or change it in place. A new column is added by DDL
    first: bqemulator applies a schema patch to the table's metadata only, so a
    later ``INSERT`` naming the column failed there ("Binder Error"), while
    ``ALTER TABLE ADD COLUMN`` reaches its stored rows; BigQuery takes both. The
    patch then sets descriptions and relaxed modes, and the emulator's metadata."""
    d = plan.desired
    if plan.create:
        ensure(client, dataset, d)
        return
    assert plan.existing is not None
    table, fields = plan.existing, []
    if plan.schema is not None:
        have = {f.name.lower() for f in table.schema}
        added = [c for c in plan.schema if c.name.lower() not in have]
        for column in added:
            bq.run_query(client, add_column_sql(client.project, dataset, d.name, column))
        if added:  # the DDL changed the table's etag: patch the current version
            table = client.get_table(table.reference, retry=RETRY, timeout=TIMEOUT)
        table.schema = plan.schema
        fields.append("schema")
    if plan.description_changed:
        table.description = d.description or None
        fields.append("description")
    if fields:
        client.update_table(table, fields, retry=RETRY, timeout=TIMEOUT)


def describe_create(dataset: str, d: TableDefinition) -> str:
    extra = f", clustered by {', '.join(d.clustering)}" if d.clustering else ""
    return f"create table {dataset}.{d.name} (partitioned by day on {d.partition_column}{extra})"


def run(args: argparse.Namespace) -> int:
    bq.check_project(args.project)
    bq.check_identifier(args.dataset, "--dataset")
    tables = desired_tables(args.schemas_dir)
    client = bq.make_client(args.project, args.location)
    target = f"{args.project}.{args.dataset}"

    refusals: list[str] = []
    plans: list[TableMigration] = []
    try:
        create_dataset = plan_dataset(client, args.dataset, args.location)
    except Refused as exc:
        create_dataset, refusals = False, [str(exc)]
    for desired in tables if not refusals else ():
        try:
            plans.append(
                TableMigration(desired, create=True)
                if create_dataset
                else plan_table(client, args.dataset, desired)
            )
        except Refused as exc:
            refusals.append(str(exc))
    views: list[ViewPlan] = []
    declared = {t.name for t in tables}
    # A dashboard view reads one of the example app's tables: made only where the
    # schemas declare that table (an adopter's own schemas get none over nothing).
    skipped = [v for v in analytics.VIEWS if v.table not in declared]
    for view, description in analytics.VIEWS.items() if not refusals else ():
        if view in skipped:
            continue
        try:
            views.append(plan_view(client, args.dataset, view, description))
        except Refused as exc:
            refusals.append(str(exc))
    if refusals:
        for refusal in refusals:
            print(f"refused: {refusal}", file=sys.stderr)
        print(f"nothing was changed in {target}", file=sys.stderr)
        return 1

    if create_dataset:
        print(f"create dataset {target} in {args.location}")
    for plan in plans:
        if plan.create:
            print(describe_create(args.dataset, plan.desired))
        elif plan.changes:
            for change in plan.changes:
                print(change)
        else:
            print(f"unchanged table {args.dataset}.{plan.desired.name}")
    for view in views:
        if view.action:
            print(f"{view.action} view {args.dataset}.{view.name}")
    for view in skipped:
        print(f"no view {args.dataset}.{view.name}: the schemas declare no table {view.table}")
    if args.dry_run:
        print(f"dry run: nothing changed in {target}")
        return 0

    if create_dataset:
        bq.ensure_dataset(client, args.dataset, args.location)
    for plan in plans:
        apply_table(client, args.dataset, plan)
    for view in views:
        if view.action:
            apply_view(client, args.dataset, view)
    changed = (
        create_dataset or any(p.create or p.changes for p in plans) or any(v.action for v in views)
    )
    print(f"{target}: {'done' if changed else 'already up to date'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="Google Cloud project id.")
    parser.add_argument("--dataset", required=True, help="Dataset to create or migrate.")
    parser.add_argument("--location", default="US", help="Location of a new dataset.")
    parser.add_argument(
        "--schemas_dir",
        help="Read table schemas from this folder (default: $F2BQ_SCHEMAS_DIR, else schemas/).",
    )
    parser.add_argument("--dry_run", action="store_true", help="Print the plan, change nothing.")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (bq.UnsafeIdentifier, SchemaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except api_exceptions.GoogleAPICallError as exc:
        print(f"error: {type(exc).__name__}: {exc.message}", file=sys.stderr)
        return 1
    except auth_exceptions.DefaultCredentialsError:
        # One line, as the sync and status say it (--dry_run reads the dataset too).
        from pipelines.services.reachability import NO_CREDENTIALS

        print(f"error: {NO_CREDENTIALS}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
