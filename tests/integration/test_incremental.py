"""Nightly incremental runs against the emulators: watermark, catch-up, late edits,
drift check, and equality with a full rebuild at the same snapshot."""

from __future__ import annotations

import datetime

import pytest

from pipelines import firestore_to_bq
from pipelines.refusals import CatchUpTooLong
from tests.support.documents import interaction, task
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset, verdicts

UTC = datetime.UTC
TABLES = ("tasks", "user_interactions")


def _day(offset: int) -> str:
    return (datetime.datetime.now(UTC).date() + datetime.timedelta(days=offset)).isoformat()


def _nightly(dataset: str, *args: str, now: datetime.datetime | None = None):
    argv = ["--project", PROJECT, "--dataset", dataset, "--collections", ",".join(TABLES)]
    summary = firestore_to_bq.run([*argv, *args], now=now)
    assert summary.reconciles, summary.render()
    return summary


def _audit(bq_client, dataset: str, run_id: str) -> dict:
    rows = [r for r in verdicts(bq_client, dataset) if r["run_id"] == run_id]
    assert len(rows) == 1
    return {t["table"]: t for t in rows[0]["tables"]} | {"_row": rows[0]}


def _assert_equals_full_rebuild(bq_client, dataset: str, read_time: datetime.datetime) -> None:
    """Every table equals a fresh full run at the same snapshot (run metadata aside)."""
    fresh = unique_dataset("rebuild")
    _nightly(fresh, "--mode", "full", "--read_time", read_time.isoformat())
    for table in TABLES:
        assert table_rows(bq_client, dataset, table) == table_rows(bq_client, fresh, table), table


def _week(db) -> dict:
    docs = {}
    for i in range(1, 6):
        day = _day(-i)
        for user in ("alice", "bob"):
            docs[f"users/{user}/tasks/t{i}"] = task(day, hour=8)
            docs[f"users/{user}/interactions/i{i}"] = interaction(day, hour=9)
    seed(db, docs)
    return docs


def test_first_nightly_is_a_full_rebuild_then_nightlies_read_what_changed(
    firestore_db, bq_client
) -> None:
    _week(firestore_db)
    dataset = unique_dataset("nightly")
    first = _nightly(dataset)
    audit = _audit(bq_client, dataset, first.config.run_id)
    assert audit["tasks"]["mode"] == "full" and audit["tasks"]["status"] == "succeeded"
    assert len(table_rows(bq_client, dataset, "tasks")) == 10

    now = datetime.datetime.now(UTC)
    # An edit of an old task, a task moved to another day, a new late task for
    # yesterday, and a hard delete of an interaction (which has no change field).
    firestore_db.document("users/alice/tasks/t4").update({"completed": True, "updated_at": now})
    firestore_db.document("users/bob/tasks/t3").update(
        {
            "created_at": datetime.datetime.fromisoformat(f"{_day(-2)}T07:00:00+00:00"),
            "updated_at": now,
        }
    )
    firestore_db.document("users/bob/tasks/late").set(task(_day(-1), hour=23, updated_at=now))
    firestore_db.document("users/alice/interactions/i2").delete()

    second = _nightly(dataset)
    audit = _audit(bq_client, dataset, second.config.run_id)
    tasks, interactions = audit["tasks"], audit["user_interactions"]
    assert tasks["mode"] == interactions["mode"] == "incremental"
    assert tasks["status"] == interactions["status"] == "succeeded"
    # Only what changed was read: the three changed tasks, and the drifted day.
    assert tasks["documents_read"] == 3 and tasks["late_edits"] == 3
    assert interactions["drift_days"] == [_day(-2)]
    assert interactions["documents_read"] == 1  # bob's i2, the day's one remaining row
    rows = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert rows["users/alice/tasks/t4"]["completed"] is True
    assert rows["users/bob/tasks/t3"]["created_at"].date().isoformat() == _day(-2)
    assert "users/bob/tasks/late" in rows and len(rows) == 11
    assert "users/alice/interactions/i2" not in {
        r["_document_path"] for r in table_rows(bq_client, dataset, "user_interactions")
    }
    _assert_equals_full_rebuild(bq_client, dataset, second.config.read_time)

    # Nothing changed since: a third run replaces no day. It re-reads the edits
    # of the last few minutes before its watermark (the allowance for the app's
    # clock), and writes them again unchanged.
    third = _nightly(dataset)
    audit = _audit(bq_client, dataset, third.config.run_id)
    assert audit["tasks"]["replaced_days"] == [] and audit["user_interactions"]["drift_days"] == []
    assert audit["tasks"]["documents_read"] == audit["tasks"]["late_edits"] <= 3
    assert audit["user_interactions"]["documents_read"] == 0
    _assert_equals_full_rebuild(bq_client, dataset, third.config.read_time)


def test_missed_nights_are_caught_up_and_too_many_name_the_backfill(
    firestore_db, bq_client
) -> None:
    _week(firestore_db)
    dataset = unique_dataset("catchup")
    _nightly(dataset)
    today = _day(0)
    seed(
        firestore_db,
        {
            "users/alice/tasks/today": task(today, hour=0, updated_at=datetime.datetime.now(UTC)),
            "users/alice/interactions/today": interaction(today, hour=0),
        },
    )
    # Two nights later (the clock is moved, the snapshot is now): today is caught up.
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=2)
    summary = _nightly(dataset, now=later)
    audit = _audit(bq_client, dataset, summary.config.run_id)
    assert audit["user_interactions"]["replaced_days"] == [_day(0), _day(1)]
    assert audit["tasks"]["replaced_days"] == [_day(0), _day(1)]
    paths = {r["_document_path"] for r in table_rows(bq_client, dataset, "user_interactions")}
    assert "users/alice/interactions/today" in paths

    with pytest.raises(
        CatchUpTooLong,
        match=r"more than 7 day\(s\) behind; backfill first: "
        r"firestore-to-bq backfill --start_date .* --end_date .* -- --project ",
    ):
        _nightly(dataset, now=later + datetime.timedelta(days=9))


def test_an_empty_read_leaves_the_tables_alone(firestore_db, bq_client) -> None:
    _week(firestore_db)
    dataset = unique_dataset("shrink")
    _nightly(dataset, "--start_date", _day(-5), "--end_date", _day(-1))
    before = table_rows(bq_client, dataset, "tasks")
    with pytest.raises(firestore_to_bq.RunFailed, match="--allow_shrink"):
        _nightly(
            dataset,
            "--start_date", _day(-5), "--end_date", _day(-1),
            "--firestore_database", "nosuchdb",
        )  # fmt: skip
    assert table_rows(bq_client, dataset, "tasks") == before
    runs = verdicts(bq_client, dataset)
    assert runs[-1]["status"] == "failed"
    assert {t["status"] for t in runs[-1]["tables"]} == {"refused"}
