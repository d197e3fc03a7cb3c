"""The nightly's delete of old rows names days instead of scanning the table.

A changed document's old row is on its day now or, if it moved, on its day at
the snapshot the table's rows hold; the run looks for it in BigQuery on the days
that cost nothing more, reads the previous version of the rest (one read each)
and the delete names those days,
so BigQuery prunes to them. Where that snapshot is past Firestore's horizon,
the delete scans the table as before, and the tables are right either way.
"""

from __future__ import annotations

import datetime
import time

import pytest

from pipelines import firestore_to_bq
from pipelines.plan.snapshot import ASSUMED_HORIZON_ENV
from tests.support.documents import task
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset, verdicts

UTC = datetime.UTC


#: Verify only days -3..-1, so that a moved task's old day (-6) is beyond them.
VERIFY_3 = ("--verify_days", "3")


def _day(offset: int) -> datetime.date:
    return datetime.datetime.now(UTC).date() + datetime.timedelta(days=offset)


def _run(dataset: str, *args: str):
    summary = firestore_to_bq.run(
        ["--project", PROJECT, "--dataset", dataset, "--collections", "tasks", *args]
    )
    assert summary.reconciles, summary.render()
    return summary


def _tasks_entry(bq_client, dataset: str, run_id: str) -> dict:
    (row,) = [r for r in verdicts(bq_client, dataset) if r["run_id"] == run_id]
    return {t["table"]: t for t in row["tables"]}["tasks"]


def _history(db) -> None:
    seed(db, {f"users/u/tasks/t{i}": task(_day(-i).isoformat(), hour=8) for i in range(1, 9)})


def _move_and_edit(db) -> None:
    now = datetime.datetime.now(UTC)
    moved_to = datetime.datetime.combine(_day(-2), datetime.time(7), UTC)
    db.document("users/u/tasks/t6").update({"created_at": moved_to, "updated_at": now})
    db.document("users/u/tasks/t4").update({"completed": True, "updated_at": now})
    db.document("users/u/tasks/new").set(task(_day(-1).isoformat(), hour=9, updated_at=now))


def _assert_equals_full_rebuild(bq_client, dataset: str, read_time: datetime.datetime) -> None:
    fresh = unique_dataset("rebuild")
    _run(fresh, "--mode", "full", "--read_time", read_time.isoformat())
    assert table_rows(bq_client, dataset, "tasks") == table_rows(bq_client, fresh, "tasks")


def test_the_nightly_delete_names_the_days_changed_documents_were_and_are_on(
    firestore_db, bq_client
) -> None:
    _history(firestore_db)
    dataset = unique_dataset("scope")
    _run(dataset)
    _move_and_edit(firestore_db)

    second = _run(dataset, *VERIFY_3)
    entry = _tasks_entry(bq_client, dataset, second.config.run_id)
    # t6 was on day -6 and is now on -2; t4 stays on -4; the new task is on -1.
    assert entry["delete_days"] == [d.isoformat() for d in (_day(-6), _day(-4), _day(-2), _day(-1))]
    # The table is under BigQuery's 10 MB floor, so the plan looked for the changed
    # tasks' rows on their days now too: t4 was found on -4; t6's old day, -6, is
    # neither a verified day nor a changed task's day, so its previous version was
    # read; the new task did not exist then.
    assert entry["previous_reads"] == 1
    assert "1 previous versions" in second.render()
    paths = [r["_document_path"] for r in table_rows(bq_client, dataset, "tasks")]
    assert sorted(paths) == sorted(set(paths)) and len(paths) == 9  # t6 once, on its new day
    _assert_equals_full_rebuild(bq_client, dataset, second.config.read_time)


def test_above_the_billing_floor_only_the_verified_days_are_looked_up_in_bigquery(
    emulators, firestore_db, bq_client, monkeypatch
) -> None:
    """The same run against a table BigQuery says holds 100 million rows (the
    proxy rewrites ``numRows``): scanning a changed task's day would cost more
    than reading its previous version, so t4 (on -4, not verified) is read too."""
    from tests.support.bigquery_fault_proxy import AbortingBigQueryProxy

    _history(firestore_db)
    dataset = unique_dataset("scope_big")
    _run(dataset)
    _move_and_edit(firestore_db)
    proxy = AbortingBigQueryProxy(emulators.bigquery_endpoint, table_rows={"tasks": 10**8})
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.endpoint)
    try:
        second = _run(dataset, *VERIFY_3)
    finally:
        proxy.close()
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulators.bigquery_endpoint)
    assert proxy.rewritten, "the proxy never answered a table's metadata: the test proved nothing"
    entry = _tasks_entry(bq_client, dataset, second.config.run_id)
    assert entry["previous_reads"] == 2  # t6 and t4
    assert entry["delete_days"] == [d.isoformat() for d in (_day(-6), _day(-4), _day(-2), _day(-1))]
    _assert_equals_full_rebuild(bq_client, dataset, second.config.read_time)


def test_past_the_snapshot_horizon_the_delete_scans_the_table_and_is_still_right(
    firestore_db, bq_client, monkeypatch
) -> None:
    _history(firestore_db)
    dataset = unique_dataset("scope_far")
    _run(dataset)
    # A scaled-down one-hour horizon, which the first run's snapshot is now past (long
    # enough that the second run's own read, planned within it, fits under load).
    monkeypatch.setenv(ASSUMED_HORIZON_ENV, "6")
    time.sleep(6.5)
    _move_and_edit(firestore_db)

    second = _run(dataset)
    entry = _tasks_entry(bq_client, dataset, second.config.run_id)
    assert entry["delete_days"] is None and entry["previous_reads"] == 0
    monkeypatch.delenv(ASSUMED_HORIZON_ENV)
    _assert_equals_full_rebuild(bq_client, dataset, second.config.read_time)


def test_a_previous_snapshot_firestore_no_longer_serves_fails_the_run_and_changes_nothing(
    emulators, firestore_db, bq_client, monkeypatch
) -> None:
    """The guard assumes a longer horizon than Firestore (the proxy) keeps: the
    previous versions' batched get meets Firestore's real error, and the run fails
    with every table as it was, rather than deleting on days it could not know."""
    from tests.support.snapshot_proxy import TOO_OLD, SnapshotHorizonProxy

    _history(firestore_db)
    dataset = unique_dataset("scope_gone")
    _run(dataset)
    before = table_rows(bq_client, dataset, "tasks")
    time.sleep(2.5)
    _move_and_edit(firestore_db)
    proxy = SnapshotHorizonProxy(emulators.firestore_host, horizon=2, docs_per_second=1e9)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.host)
    try:
        with pytest.raises(firestore_to_bq.RunFailed, match="snapshot version is too old"):
            firestore_to_bq.run(
                ["--project", PROJECT, "--dataset", dataset, "--collections=tasks", *VERIFY_3]
            )
        assert "BatchGetDocuments" in proxy.calls and proxy.refused > 0
    finally:
        proxy.close()
    assert table_rows(bq_client, dataset, "tasks") == before
    assert verdicts(bq_client, dataset)[-1]["status"] == "failed"
    assert TOO_OLD.rstrip(".") in (verdicts(bq_client, dataset)[-1]["error"] or "")
