"""Helpers for the integration tests: seed Firestore, run a sync, read tables back."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

from google.cloud import bigquery

from pipelines import firestore_to_bq
from pipelines.summary import RunSummary
from pipelines.table_spec import RUN_METADATA_COLUMNS

UTC = datetime.UTC
PROJECT = "demo-project"
_datasets = itertools.count()


def unique_dataset(prefix: str) -> str:
    return f"{prefix}_{next(_datasets)}_{datetime.datetime.now(UTC):%H%M%S%f}"


def at(day: str, hour: int = 12, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00+00:00")


def task(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    data = {
        "description": "Water the plants",
        "date": day,
        "time": "09:30",
        "duration_minutes": 15,
        "completed": False,
        "origin": "user_added",
        "created_at": at(day, hour),
        "updated_at": at(day, hour),
    }
    data.update(fields)
    return data


def interaction(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    data = {
        "timestamp": at(day, hour),
        "message_in": "What's on today?",
        "message_out": "Two tasks and a call.",
        "intent": "plan_day",
        "language": "en",
        "duration_ms": 420,
        "model_used": "gemini-2.5-flash",
        "tokens_in": 12,
        "tokens_out": 30,
        "error_code": None,
    }
    data.update(fields)
    return data


def memory(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    data = {
        "description": "Nervous before the interview",
        "emotional_valence": -0.4,
        "trigger": "interview",
        "context": "Morning",
        "timestamp": at(day, hour),
    }
    data.update(fields)
    return data


def seed(db, docs: dict[str, dict[str, Any]]) -> None:
    batch = db.batch()
    for i, (path, data) in enumerate(docs.items(), 1):
        batch.set(db.document(path), data)
        if i % 500 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()


def sync(dataset: str | None, *args: str, dry_run: bool = False) -> RunSummary:
    argv = ["--project", PROJECT, *args]
    if dataset:
        argv += ["--dataset", dataset]
    if dry_run:
        argv.append("--dry_run")
    summary = firestore_to_bq.run(argv)
    assert summary.reconciles, summary.render()
    return summary


def table_rows(
    client: bigquery.Client, dataset: str, table: str, keep_run_metadata: bool = False
) -> list[dict[str, Any]]:
    """Every row of a table, ordered by document path, run metadata dropped."""
    sql = f"SELECT * FROM `{client.project}.{dataset}.{table}`"
    rows = [dict(r) for r in client.query(sql, timeout=60).result(timeout=60)]
    if not keep_run_metadata:
        for row in rows:
            for column in RUN_METADATA_COLUMNS:
                row.pop(column, None)
    keys = {"_dead_letters": "document_path", "_sync_runs": "started_at"}
    key = keys.get(table, "_document_path")
    return sorted(rows, key=lambda r: (str(r.get(key) or ""), str(r)))


def rows_by_day(client: bigquery.Client, dataset: str, table: str, column: str) -> dict[str, int]:
    sql = (
        f"SELECT CAST(DATE({column}) AS STRING) AS day, COUNT(*) AS n "
        f"FROM `{client.project}.{dataset}.{table}` GROUP BY day"
    )
    return {r["day"]: r["n"] for r in client.query(sql, timeout=60).result(timeout=60)}
