"""Paths of the write and the snapshot that a plain sync does not take.

Spilling a staging batch to disk, several load jobs per table, a load retried
after it had landed (staged twice), the Secret Manager key, and one snapshot
pinned across two tables.
"""

from __future__ import annotations

import datetime

import pytest

from pipelines.services import bigquery as bq
from tests.support.documents import interaction, task
from tests.support.sync_helpers import seed, sync, table_rows, unique_dataset

DAYS = ("2026-11-01", "2026-11-02")
WINDOW = ("--start_date", DAYS[0], "--end_date", DAYS[1])


def _seed_days(db) -> dict:
    docs = {}
    for i, day in enumerate(DAYS):
        for user in ("alice", "bob"):
            for n in range(3):
                docs[f"users/{user}/tasks/t{i}{n}"] = task(day, hour=8 + n)
                docs[f"users/{user}/interactions/i{i}{n}"] = interaction(day, hour=9 + n)
    seed(db, docs)
    return docs


@pytest.mark.integration
def test_several_load_batches_per_table_and_a_batch_staged_twice(
    emulators, firestore_db, bq_client, monkeypatch
) -> None:
    """``--load_batch_rows 2`` cuts each table's rows into several load jobs; the
    first batch of tasks is loaded twice, as a retried bundle would after its
    load had landed. The commit keeps one row per document."""
    _seed_days(firestore_db)
    clean = unique_dataset("batches_clean")
    sync(clean, *WINDOW)

    real_load = bq.load_file
    loads: list[str] = []

    def load_twice_the_first(client, dataset, table, schema, source, job_id=None):
        loads.append(table)
        real_load(client, dataset, table, schema, source, job_id=job_id)
        if table.endswith("_tasks") and loads.count(table) == 1:
            real_load(client, dataset, table, schema, source, job_id=job_id)

    monkeypatch.setattr(bq, "load_file", load_twice_the_first)
    batched = unique_dataset("batches")
    summary = sync(batched, *WINDOW, "--collections", "tasks,interactions",
                   "--load_batch_rows", "2")  # fmt: skip
    staged_tasks = [t for t in loads if t.endswith("_tasks")]
    assert len(staged_tasks) >= 6, loads  # 12 rows in batches of 2
    assert summary.reconciles
    for table in ("tasks", "user_interactions"):
        assert table_rows(bq_client, batched, table) == table_rows(bq_client, clean, table)


@pytest.mark.integration
def test_one_snapshot_is_pinned_across_two_tables(emulators, firestore_db, bq_client) -> None:
    _seed_days(firestore_db)
    pinned = datetime.datetime.now(datetime.UTC)
    # Written after the snapshot: invisible to a run reading at it, in both tables.
    firestore_db.document("users/alice/tasks/t00").update({"completed": True})
    firestore_db.document("users/alice/interactions/i00").update({"intent": "later"})
    firestore_db.document("users/alice/tasks/new").set(task(DAYS[0]))
    firestore_db.document("users/bob/interactions/i10").delete()

    dataset = unique_dataset("pinned")
    sync(dataset, *WINDOW, "--collections", "tasks,interactions",
         "--read_time", pinned.isoformat())  # fmt: skip
    tasks = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    chats = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "user_interactions")}
    assert len(tasks) == 12 and "users/alice/tasks/new" not in tasks
    assert tasks["users/alice/tasks/t00"]["completed"] is False
    assert len(chats) == 12 and "users/bob/interactions/i10" in chats
    assert chats["users/alice/interactions/i00"]["intent"] == "plan_day"
