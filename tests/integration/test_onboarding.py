"""Issue 26: onboarding a history at about one read per document, against the emulators.

A chunked backfill (the commands ``scripts/backfill.py`` runs: dated chunks in
incremental mode) reads each chunk's own days, and the first nightly after chunks
that cover a table from its oldest document reads one night, not the history,
while edits and moves made between the chunks still reach the table.
"""

from __future__ import annotations

import datetime

from pipelines import firestore_to_bq
from pipelines.cli import backfill
from tests.support.documents import task
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset

UTC = datetime.UTC
PER_DAY = 6
HISTORY = 18  # days, the oldest 18 days ago
#: Reads a range-read chunk may take beyond its own documents (a retried page, the
#: count of a day): "plus a few per chunk".
SLACK = 3


def _day(offset: int) -> str:
    return (datetime.datetime.now(UTC).date() + datetime.timedelta(days=offset)).isoformat()


def _chunk(dataset: str, first: int, last: int) -> int:
    """One chunk as ``backfill.py`` runs it; the documents Firestore returned."""
    base = ["--project", PROJECT, "--dataset", dataset, "--collections", "tasks"]
    argv = backfill.chunk_command([], (datetime.date.fromisoformat(_day(first)),
                                       datetime.date.fromisoformat(_day(last))), base)  # fmt: skip
    summary = firestore_to_bq.run(argv)
    assert summary.reconciles, summary.render()
    return summary.documents_returned


def test_a_chunked_backfill_reads_each_document_once_and_the_next_nightly_one_night(
    firestore_db, bq_client
) -> None:
    db = firestore_db
    seed(db, {f"users/u{i}/tasks/d{d}_{i}": task(_day(-d), hour=8)
              for d in range(1, HISTORY + 1) for i in range(PER_DAY)})  # fmt: skip
    dataset = unique_dataset("onboard")
    now = datetime.datetime.now(UTC)

    def edit(path: str, **fields) -> None:
        db.document(path).update({**fields, "updated_at": datetime.datetime.now(UTC)})

    # Finding 1: each chunk reads its own days (at most 1.1x their documents plus a few).
    returned = [_chunk(dataset, -18, -13)]
    edit("users/u0/tasks/d16_0", completed=True)  # an edit on a chunk already done
    moved_at = datetime.datetime.combine(datetime.date.fromisoformat(_day(-8)),
                                         datetime.time(9), UTC)  # fmt: skip
    edit("users/u1/tasks/d17_1", created_at=moved_at)  # moved into the next chunk's days
    returned.append(_chunk(dataset, -12, -7))
    edit("users/u2/tasks/d9_2", created_at=now - datetime.timedelta(days=16))  # moved back
    returned.append(_chunk(dataset, -6, -2))
    expected = [6 * PER_DAY + 1, 6 * PER_DAY + 1, 5 * PER_DAY]  # the moved documents
    print("onboarding reads per chunk:", returned, "documents:", expected)
    for got, docs in zip(returned, expected, strict=True):
        assert got <= 1.10 * docs + SLACK, (returned, expected)

    # Finding 2: the nightly reads yesterday's documents and the three changed ones,
    # not the history (18 x 6 = 108 documents).
    nightly = firestore_to_bq.run(["--project", PROJECT, "--dataset", dataset,
                                   "--collections", "tasks"])  # fmt: skip
    assert nightly.reconciles, nightly.render()
    print("onboarding nightly reads:", nightly.documents_returned)
    assert nightly.documents_returned <= 1.10 * (PER_DAY + 3) + SLACK, nightly.render()

    # ... and the table equals a full rebuild at the nightly's snapshot.
    rebuilt = unique_dataset("onboard_rebuild")
    assert firestore_to_bq.main(["--project", PROJECT, "--dataset", rebuilt, "--collections",
                                 "tasks", "--mode", "full", "--read_time",
                                 nightly.config.read_time_text]) == 0  # fmt: skip
    assert table_rows(bq_client, dataset, "tasks") == table_rows(bq_client, rebuilt, "tasks")


def test_chunks_that_miss_the_oldest_days_leave_the_nightly_a_full_rebuild(
    firestore_db, bq_client
) -> None:
    """Days before the backfill's first day hold documents: no watermark from the
    chunks, and the nightly rebuilds the whole table as before (it equals a rebuild)."""
    seed(firestore_db, {f"users/u{i}/tasks/d{d}_{i}": task(_day(-d), hour=8)
                        for d in range(1, 9) for i in range(2)})  # fmt: skip
    dataset = unique_dataset("onboard_gap")
    _chunk(dataset, -5, -2)
    nightly = firestore_to_bq.run(["--project", PROJECT, "--dataset", dataset,
                                   "--collections", "tasks"])  # fmt: skip
    assert nightly.documents_returned >= 16, nightly.render()  # the whole collection
    rows = table_rows(bq_client, dataset, "tasks")
    assert len(rows) == 16


def test_a_history_too_large_for_one_snapshot_is_onboarded_in_chunks_then_nightlies(
    firestore_db, bq_client
) -> None:
    """Without point-in-time recovery a read must end within the hour Firestore serves
    its snapshot. At 0.02 documents/s an hour reads 72: the 96-document history is
    refused whole, yet its chunks fit, and so does the nightly after them (before,
    that nightly was a whole-history rebuild and was refused the same way)."""
    seed(firestore_db, {f"users/u{i}/tasks/d{d}_{i}": task(_day(-d), hour=8)
                        for d in range(1, 17) for i in range(PER_DAY)})  # fmt: skip
    dataset = unique_dataset("onboard_horizon")
    slow = ["--read_docs_per_second", "0.02"]
    base = ["--project", PROJECT, "--dataset", dataset, "--collections", "tasks", *slow]
    assert firestore_to_bq.main([*base, "--mode", "full"]) == 2  # refused, nothing read
    for first, last in backfill.chunks(datetime.date.fromisoformat(_day(-16)),
                                       datetime.date.fromisoformat(_day(-2)), 5):  # fmt: skip
        assert firestore_to_bq.main(backfill.chunk_command([], (first, last), base)) == 0
    assert firestore_to_bq.main(base) == 0  # the nightly: one night, within the hour
    assert len(table_rows(bq_client, dataset, "tasks")) == 16 * PER_DAY
