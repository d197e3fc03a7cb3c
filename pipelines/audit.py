"""The audit table: one row per sync run, so "did last night's run work?" is a query.

Defined here, next to the pipeline, so the run that writes these rows and
``scripts/setup_bigquery.py`` that creates the table share one schema.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from pipelines import bigquery as bq
from pipelines.windows import TableState

if TYPE_CHECKING:
    from pipelines.options import SyncConfig

TABLE = "_sync_runs"
PARTITION_COLUMN = "started_at"
CLUSTERING: tuple[str, ...] = ()
DESCRIPTION = "One row per Firestore-to-BigQuery sync run: window, outcome and per-table counts."
SCHEMA: list[dict[str, str]] = [
    {"name": "run_id", "type": "STRING", "mode": "REQUIRED", "description": "Sync run."},
    {
        "name": "runner",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Beam runner, e.g. DataflowRunner.",
    },
    {
        "name": "window_start",
        "type": "DATE",
        "mode": "NULLABLE",
        "description": "First day of the window (UTC).",
    },
    {
        "name": "window_end",
        "type": "DATE",
        "mode": "NULLABLE",
        "description": "Last day of the window, inclusive (UTC).",
    },
    {
        "name": "read_time",
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "Firestore snapshot time.",
    },
    {
        "name": PARTITION_COLUMN,
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "Run start (partition column).",
    },
    {
        "name": "finished_at",
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "Run end.",
    },
    {
        "name": "status",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "succeeded, failed or not_reconciled.",
    },
    {
        "name": "error",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Why the run failed, if it did.",
    },
    {
        "name": "tables",
        "type": "JSON",
        "mode": "NULLABLE",
        "description": "Per table: table, mode, status, replaced, replaced_days, "
        "advances_watermark, documents_read, documents_returned, rows_written, "
        "dead_lettered, outside_window, late_edits, drift_days, shrink, rows_per_day, error.",
    },
]


#: How far back ``table_states`` looks (the partition filter); a table last
#: synced before that is treated as never synced, i.e. gets a full run.
HISTORY = datetime.timedelta(days=400)
SUCCEEDED = "succeeded"


def entries(tables: Any) -> list[dict[str, Any]]:
    """The ``tables`` JSON cell, which clients return parsed or as text."""
    if isinstance(tables, str):
        tables = json.loads(tables or "[]")
    return [t for t in tables or [] if isinstance(t, dict)]


def _days(entry: Mapping[str, Any]) -> list[datetime.date]:
    days = entry.get("replaced_days")
    if days is None:  # rows written before per-table statuses: the days it counted
        days = list(entry.get("rows_per_day") or {}) if entry.get("replaced") else []
    return [datetime.date.fromisoformat(str(d)[:10]) for d in days]


def table_states(
    client: bigquery.Client,
    dataset: str,
    tables: Iterable[str],
    now: datetime.datetime | None = None,
) -> dict[str, TableState]:
    """Each table's newest replaced day, last success, watermark and last failure."""
    now = now or datetime.datetime.now(datetime.UTC)
    wanted = list(tables)
    job = bq.run_query(
        client,
        "SELECT run_id, read_time, started_at, status, error, tables "
        f"FROM {bq.table_sql(client.project, dataset, TABLE)} "
        f"WHERE {PARTITION_COLUMN} >= @since ORDER BY {PARTITION_COLUMN}",
        query_parameters=[bigquery.ScalarQueryParameter("since", "TIMESTAMP", now - HISTORY)],
    )
    facts: dict[str, dict[str, Any]] = {t: {} for t in wanted}
    for row in job.result():
        by_table = {e.get("table"): e for e in entries(row["tables"])}
        for table in wanted:
            entry = by_table.get(table)
            if entry is None:
                if row["status"] != SUCCEEDED and not by_table:  # failed before any commit
                    facts[table].update(
                        last_failure_run_id=row["run_id"],
                        last_failure_at=row["started_at"],
                        last_failure_error=row["error"],
                    )
                continue
            status = entry.get("status") or (
                SUCCEEDED if row["status"] == SUCCEEDED and entry.get("replaced") else "failed"
            )
            fact = facts[table]
            if status != SUCCEEDED:
                fact.update(
                    last_failure_run_id=row["run_id"],
                    last_failure_at=row["started_at"],
                    last_failure_error=entry.get("error") or row["error"],
                )
                continue
            fact.update(last_success_run_id=row["run_id"], last_success_read_time=row["read_time"])
            if entry.get("advances_watermark"):
                fact["watermark"] = row["read_time"]
            days = _days(entry)
            if days and (fact.get("newest_day") is None or max(days) > fact["newest_day"]):
                fact["newest_day"] = max(days)
    return {table: TableState(table, **fact) for table, fact in facts.items()}


def audit_row(
    config: SyncConfig,
    runner: str,
    status: str,
    tables: Sequence[Mapping[str, Any]],
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "run_id": config.run_id,
        "runner": runner,
        "window_start": config.start_date.isoformat(),
        "window_end": config.end_date.isoformat(),
        "read_time": config.read_time_text,
        "started_at": config.started_text,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "status": status,
        "error": error,
        "tables": list(tables),
    }


def write_audit_row(config: SyncConfig, row: Mapping[str, Any]) -> None:
    """Append ``row``; a retried attempt of the same run and status is a no-op."""
    client = bq.make_client(config.project, config.location)
    try:
        bq.load_rows(
            client,
            config.dataset,
            TABLE,
            SCHEMA,
            [row],
            job_id=f"f2bq_audit_{config.run_id}_{row['status']}",
        )
    except api_exceptions.Conflict:
        pass  # this exact row was written by an earlier attempt


def read_audit_row(config: SyncConfig) -> dict[str, Any] | None:
    """The run's audit row, if the pipeline got as far as writing it."""
    client = bq.make_client(config.project, config.location)
    job = bq.run_query(
        client,
        f"SELECT * FROM {bq.table_sql(config.project, config.dataset, TABLE)} "
        "WHERE run_id = @run_id ORDER BY finished_at DESC LIMIT 1",
        query_parameters=[bigquery.ScalarQueryParameter("run_id", "STRING", config.run_id)],
    )
    rows = [dict(r) for r in job.result()]
    return rows[0] if rows else None


def succeeded_windows(
    client: bigquery.Client,
    dataset: str,
    since: datetime.datetime,
    tables: Iterable[str],
) -> list[tuple[datetime.date, datetime.date]]:
    """Windows of runs since ``since`` that replaced every one of ``tables`` successfully.

    A run counts when its row says ``succeeded`` and its ``tables`` entries hold
    each of ``tables`` with status ``succeeded`` and ``replaced`` true: a run of
    fewer tables (``--collections``) did not do another run's work. ``since``
    bounds the scan by the partition column. A dataset or ``_sync_runs`` that
    does not exist yet means no run has replaced anything: ``[]``. This is what
    ``scripts/backfill.py`` resumes from, so every machine sees the same progress.
    """
    wanted = set(tables)
    try:
        job = bq.run_query(
            client,
            "SELECT window_start, window_end, tables "
            f"FROM {bq.table_sql(client.project, dataset, TABLE)} "
            f"WHERE {PARTITION_COLUMN} >= @since AND status = @succeeded "
            "AND window_start IS NOT NULL AND window_end IS NOT NULL "
            f"ORDER BY {PARTITION_COLUMN}",
            query_parameters=[
                bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
                bigquery.ScalarQueryParameter("succeeded", "STRING", SUCCEEDED),
            ],
        )
    except api_exceptions.NotFound:
        return []
    windows = []
    for row in job.result():
        replaced = {
            e.get("table")
            for e in entries(row["tables"])
            if e.get("status") == SUCCEEDED and e.get("replaced") is True
        }
        if wanted <= replaced:
            windows.append((row["window_start"], row["window_end"]))
    return windows
