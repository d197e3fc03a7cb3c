"""Helpers for the integration tests: seed Firestore, run a sync, read tables back."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

from google.cloud import bigquery

from devtools.bench.data import table_rows
from pipelines import firestore_to_bq
from pipelines.cli.summary import RunSummary

UTC = datetime.UTC
PROJECT = "demo-project"
_datasets = itertools.count()


def unique_dataset(prefix: str) -> str:
    return f"{prefix}_{next(_datasets)}_{datetime.datetime.now(UTC):%H%M%S%f}"


def seed(db, docs: dict[str, dict[str, Any]]) -> None:
    batch = db.batch()
    for i, (path, data) in enumerate(docs.items(), 1):
        batch.set(db.document(path), data)
        if i % 500 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()


def sync(
    dataset: str | None, *args: str, dry_run: bool = False, now: datetime.datetime | None = None
) -> RunSummary:
    """One run; ``now``: the moment it acts as of (e.g. tomorrow, to sync today)."""
    argv = ["--project", PROJECT, *args]
    if dataset:
        argv += ["--dataset", dataset]
    if dry_run:
        argv.append("--dry_run")
    summary = firestore_to_bq.run(argv, now=now)
    assert summary.reconciles, summary.render()
    return summary


def verdicts(client: bigquery.Client, dataset: str) -> list[dict[str, Any]]:
    """``_sync_runs`` rows of finished runs (each run also writes a ``running`` row first)."""
    rows = table_rows(client, dataset, "_sync_runs", keep_run_metadata=True)
    return [r for r in rows if r["status"] != "running"]


def rows_by_day(client: bigquery.Client, dataset: str, table: str, column: str) -> dict[str, int]:
    sql = (
        f"SELECT CAST(DATE({column}) AS STRING) AS day, COUNT(*) AS n "
        f"FROM `{client.project}.{dataset}.{table}` GROUP BY day"
    )
    return {r["day"]: r["n"] for r in client.query(sql, timeout=60).result(timeout=60)}
