"""Sequences of runs a user mixes, each against the emulators: the tables end equal
to a full rebuild and the audit says what is true.

The findings of issue 14, one test each; ``tests/test_sequence_machine.py`` explores
the sequences nobody thought of.
"""

from __future__ import annotations

import datetime

import pytest

from pipelines import firestore_to_bq
from tests.documents import task
from tests.sync_helpers import PROJECT, seed, table_rows, unique_dataset

pytestmark = pytest.mark.integration
UTC = datetime.UTC


def _day(offset: int) -> str:
    return (datetime.datetime.now(UTC).date() + datetime.timedelta(days=offset)).isoformat()


def _run(dataset: str, *args: str):
    argv = ["--project", PROJECT, "--dataset", dataset, "--collections", "tasks", *args]
    summary = firestore_to_bq.run(argv)
    assert summary.reconciles, summary.render()
    return summary


@pytest.mark.parametrize(
    "dated",
    [
        ("--start_date", _day(-5), "--end_date", _day(-1)),
        ("--date", _day(-3)),
    ],
    ids=["backfill", "one-date"],
)
def test_an_edit_after_a_dated_run_reaches_the_table_by_the_next_nightly(
    firestore_db, bq_client, dated
) -> None:
    """Dated runs record no change watermark; the nightly after them rebuilds whole."""
    seed(firestore_db, {f"users/u/tasks/t{i}": task(_day(-i), hour=8) for i in range(1, 6)})
    dataset = unique_dataset("seq_backfill")
    _run(dataset, *dated)
    now = datetime.datetime.now(UTC)
    firestore_db.document("users/u/tasks/t5").update({"completed": True, "updated_at": now})
    nightly = _run(dataset)
    rows = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert rows["users/u/tasks/t5"]["completed"] is True
    (entry,) = nightly.tables
    assert entry.status == "succeeded"
    # ...and the one after it is incremental again, from the watermark it recorded.
    firestore_db.document("users/u/tasks/t4").update({"completed": True, "updated_at": now})
    _run(dataset)
    rows = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert rows["users/u/tasks/t4"]["completed"] is True
    audit = table_rows(bq_client, dataset, "_sync_runs")
    assert [t["mode"] for row in audit for t in row["tables"]][-2:] == ["full", "incremental"]
