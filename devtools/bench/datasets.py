"""The benchmark's BigQuery datasets: created empty for a measurement, dropped after it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipelines.convert.table_spec import DOCUMENT_PATH_COLUMN, RUN_METADATA_COLUMNS, TableSpec
from pipelines.services import bigquery as bq
from pipelines.state.tables import definition, ensure


def create_tables(client: Any, dataset: str, specs: Iterable[TableSpec]) -> None:
    bq.ensure_dataset(client, dataset, None)
    for spec in specs:
        ensure(client, dataset, definition(spec))


def drop_dataset(client: Any, dataset: str) -> None:
    client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def rows_per_table_day(
    client: Any, dataset: str, specs: list[TableSpec]
) -> dict[str, dict[str, int]]:
    """What each table holds, per day (``YYYY-MM-DD``), to compare with Firestore."""
    out = {}
    for spec in specs:
        sql = (
            f"SELECT CAST(DATE({spec.partition_column}) AS STRING) AS day, COUNT(*) AS n "
            f"FROM {bq.table_sql(client.project, dataset, spec.name)} GROUP BY day"
        )
        out[spec.name] = {r["day"]: r["n"] for r in bq.run_query(client, sql).result()}
    return out


def table_rows(
    client: Any, dataset: str, table: str, keep_run_metadata: bool = False
) -> list[dict[str, Any]]:
    """Every row of a table in key order (document path; a run's start for
    ``_sync_runs``), the run's own columns dropped unless kept: two datasets
    synced from the same snapshot by different runs compare equal."""
    sql = f"SELECT * FROM {bq.table_sql(client.project, dataset, table)}"
    rows = [dict(r) for r in bq.run_query(client, sql).result()]
    if not keep_run_metadata:
        for row in rows:
            for column in RUN_METADATA_COLUMNS:
                row.pop(column, None)
    key = ROW_KEYS.get(table, DOCUMENT_PATH_COLUMN)
    return sorted(rows, key=lambda r: (str(r.get(key) or ""), str(r)))


#: The column that orders the rows of the sync's own tables.
ROW_KEYS = {"_dead_letters": "document_path", "_sync_runs": "started_at"}
