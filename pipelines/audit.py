"""The audit table: one row per sync run, so "did last night's run work?" is a query.

Defined here, next to the pipeline, so the run that writes these rows and
``scripts/setup_bigquery.py`` that creates the table share one schema.
"""

from __future__ import annotations

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
        "description": "succeeded or failed.",
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
        "description": "Per table: table, documents_read, rows_written, dead_lettered, "
        "outside_window, days_replaced, late_edit_days, replaced, rows_per_day, error.",
    },
]
