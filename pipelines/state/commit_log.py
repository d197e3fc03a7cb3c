"""``_sync_commits``: one row per table a run replaced, written inside that replacement.

The row is inserted by the same BigQuery transaction that replaces the table's
days (see ``bigquery.replace_days_sql``), so the two are one atomic unit: after
any interruption (Ctrl-C, SIGTERM, a launcher killed outright, a server lost
mid-commit) this table says exactly which tables a run replaced, even when the
run never reached its ``_sync_runs`` verdict. ``run_log.table_states`` reads it
beside ``_sync_runs``.

Inserting only (no UPDATE or DELETE) keeps concurrent commits of different
tables from conflicting: BigQuery cancels concurrent transactions only when
they mutate (update or delete) rows of the same table
(https://cloud.google.com/bigquery/docs/transactions#transaction_concurrency).
Values are literals built from typed values, because the emulator takes no
query parameters inside multi-statement scripts.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

from pipelines.services.bigquery import UnsafeIdentifier, check_identifier, date_literals, table_sql

TABLE = "_sync_commits"
PARTITION_COLUMN = "committed_at"
CLUSTERING: tuple[str, ...] = ("table_name",)
DESCRIPTION = (
    "One row per table replaced by a sync run, inserted in the same transaction as the "
    "replacement: the atomic record of which run wrote which table."
)
SCHEMA: list[dict[str, str]] = [
    {"name": "run_id", "type": "STRING", "mode": "REQUIRED", "description": "Sync run."},
    {"name": "table_name", "type": "STRING", "mode": "REQUIRED", "description": "Table."},
    {
        "name": PARTITION_COLUMN,
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "When the replacement was committed (partition column).",
    },
    {
        "name": "read_time",
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "Firestore snapshot the rows were read at.",
    },
    {"name": "mode", "type": "STRING", "mode": "REQUIRED", "description": "full or incremental."},
    {
        "name": "newest_day",
        "type": "DATE",
        "mode": "NULLABLE",
        "description": "Newest day replaced whole (NULL: only upserts, or an intraday run, "
        "which declares no day complete).",
    },
    {
        "name": "days_replaced",
        "type": "INT64",
        "mode": "REQUIRED",
        "description": "Days replaced whole.",
    },
    {
        "name": "advances_watermark",
        "type": "BOOL",
        "mode": "REQUIRED",
        "description": "Whether the run saw every change up to read_time (the change watermark).",
    },
]


#: What ``--run_id`` allows, and what may reach SQL as a run id: letters, digits,
#: underscores (``options.resolve`` refuses any other, ``check_run_id`` guards SQL).
RUN_ID = re.compile(r"^[A-Za-z0-9_]{1,64}\Z")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is safe as a SQL string literal (letters, digits, underscores)."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise UnsafeIdentifier(f"run id {run_id!r} is not letters, digits and underscores")
    return run_id


def timestamp_literal(value: datetime.datetime) -> str:
    """``TIMESTAMP '2026-11-25 02:00:00.000000+00:00'`` from a real aware datetime."""
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise TypeError(f"expected an aware datetime, got {value!r}")
    text = value.astimezone(datetime.UTC).isoformat(sep=" ", timespec="microseconds")
    return f"TIMESTAMP '{text}'"


def insert_sql(
    project: str,
    dataset: str,
    *,
    run_id: str,
    table: str,
    committed_at: datetime.datetime,
    read_time: datetime.datetime,
    mode: str,
    days: Sequence[datetime.date],
    advances_watermark: bool,
    complete: bool = True,
) -> str:
    """The statement a commit's transaction runs just before ``COMMIT TRANSACTION``.

    ``complete``: whether ``days`` count as done (an intraday run's do not: its
    row's ``newest_day`` is NULL, so the nightly still replaces yesterday whole)."""
    if mode not in ("full", "incremental"):
        raise ValueError(f"unknown mode {mode!r}")
    check_run_id(run_id)
    newest = date_literals([max(days)]) if days and complete else "NULL"
    columns = ", ".join(f"`{f['name']}`" for f in SCHEMA)
    return (
        f"INSERT INTO {table_sql(project, dataset, TABLE)} ({columns}) VALUES ("
        f"'{run_id}', '{check_identifier(table, 'table')}', "
        f"{timestamp_literal(committed_at)}, {timestamp_literal(read_time)}, "
        f"'{mode}', {newest}, {len(days)}, {'TRUE' if advances_watermark else 'FALSE'});"
    )
