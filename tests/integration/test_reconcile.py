"""``--mode reconcile`` against the emulators: a hard delete on an old day, outside
the nightly's ``--verify_days``, is found by the reconcile and not by the nightly,
for a small share of a full run's Firestore reads, and leaves the tables equal to
a full rebuild."""

from __future__ import annotations

import datetime
import math

from pipelines import firestore_to_bq
from tests.support.documents import interaction, task
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset, verdicts

UTC = datetime.UTC
TABLES = ("tasks", "user_interactions")
DAYS, USERS = 30, 60


def _day(offset: int) -> str:
    return (datetime.datetime.now(UTC).date() + datetime.timedelta(days=offset)).isoformat()


def _run(bq_client, dataset: str, *args: str):
    """One run with 3 verified days; its summary and its tables' ``_sync_runs`` entries."""
    argv = ["--project", PROJECT, "--dataset", dataset, "--collections", ",".join(TABLES)]
    summary = firestore_to_bq.run([*argv, "--verify_days", "3", *args])
    assert summary.reconciles, summary.render()
    (row,) = [r for r in verdicts(bq_client, dataset) if r["run_id"] == summary.config.run_id]
    return summary, {t["table"]: t for t in row["tables"]}


def firestore_reads(audit: dict[str, dict], launcher_counts: int) -> int:
    """Documents returned, plus one read per count() of the run (each counts at
    most 1,000 documents here), plus ``launcher_counts``: the reads of the
    launcher's count()s for the horizon (and a reconcile's oldest-document query)."""
    return sum(t["documents_returned"] + t["count_queries"] for t in audit.values()) + (
        launcher_counts
    )


def test_reconcile_finds_an_old_hard_delete_the_nightly_cannot_see(firestore_db, bq_client):
    docs = {}
    for i in range(1, DAYS + 1):
        for u in range(USERS):
            docs[f"users/u{u}/tasks/t{i}"] = task(_day(-i), hour=8)
            docs[f"users/u{u}/interactions/i{i}"] = interaction(_day(-i), hour=9)
    seed(firestore_db, docs)
    dataset = unique_dataset("reconcile")
    _, first = _run(bq_client, dataset)
    assert first["user_interactions"]["mode"] == "full"
    per_table = DAYS * USERS

    # A hard delete 20 days back: interactions have no change field, and the
    # day is outside the nightly's 3 verified days.
    old = _day(-20)
    firestore_db.document("users/u7/interactions/i20").delete()
    _, nightly = _run(bq_client, dataset)
    assert nightly["user_interactions"]["drift_days"] == []
    paths = {r["_document_path"] for r in table_rows(bq_client, dataset, "user_interactions")}
    assert "users/u7/interactions/i20" in paths  # the nightly cannot see it

    summary, weekly = _run(bq_client, dataset, "--mode", "reconcile")
    interactions, tasks = weekly["user_interactions"], weekly["tasks"]
    assert interactions["mode"] == tasks["mode"] == "incremental"
    assert interactions["drift_days"] == [old] and tasks["drift_days"] == []
    assert interactions["documents_read"] == USERS - 1  # the drifted day, re-read once
    assert tasks["documents_read"] == 0
    # Every day of the history was counted once (the count also sizes the re-read),
    # and the tasks' change query once.
    assert interactions["count_queries"] == DAYS and tasks["count_queries"] == DAYS + 1
    paths = {r["_document_path"] for r in table_rows(bq_client, dataset, "user_interactions")}
    assert "users/u7/interactions/i20" not in paths and len(paths) == per_table - 1

    # Equal to a full rebuild at the same snapshot, which reads every document.
    fresh = unique_dataset("rebuild")
    snapshot = summary.config.read_time.isoformat()
    _, full = _run(bq_client, fresh, "--mode", "full", "--read_time", snapshot)
    for table in TABLES:
        assert table_rows(bq_client, dataset, table) == table_rows(bq_client, fresh, table)
    full_reads = firestore_reads(full, len(TABLES) * math.ceil(per_table / 1000))
    reconcile_reads = firestore_reads(weekly, len(TABLES) * 3)
    print(f"Firestore reads: reconcile {reconcile_reads}, full {full_reads}")
    assert full_reads >= 2 * per_table - 1
    assert reconcile_reads <= 0.05 * full_reads
