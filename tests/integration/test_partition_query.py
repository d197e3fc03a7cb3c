"""The production split path end to end: PartitionQuery cursors, paged, shuffled, repeated.

The emulator answers PartitionQuery with UNIMPLEMENTED, so a run against it
splits on name bands and the cursors path Dataflow takes against Firestore is
never run. :class:`PartitionQueryProxy` answers it from the emulator's own
documents, adversarially (several pages, out of order, cursors repeated), and
relays everything else; the full sync through it must hold every document once.
"""

from __future__ import annotations

import collections
import datetime

import pytest

from devtools import sample_data
from pipelines.convert.table_spec import load_specs
from pipelines.plan.splits import name_key
from tests.support.fault_proxy import PartitionQueryProxy
from tests.support.sync_helpers import seed, sync, table_rows, unique_dataset

START, END = "2026-11-02", "2026-11-05"


def _documents() -> dict[str, dict]:
    """About 150 documents over the window's 4 days, in all five collections."""
    end = datetime.date.fromisoformat(END)
    return dict(sample_data.documents(users=5, days=4, end=end, per_user_per_day=8, seed=5))


def _paths_by_table(paths) -> dict[str, list[str]]:
    table_of = {spec.collection: name for name, spec in load_specs().items()}
    by_table = collections.defaultdict(list)
    for path in paths:
        by_table[table_of[path.split("/")[2]]].append(path)
    return {table: sorted(p) for table, p in by_table.items()}


@pytest.mark.parametrize("num_splits", [1, 7, 64])
def test_full_sync_over_partition_query_cursors_holds_every_document_once(
    emulators, firestore_db, bq_client, monkeypatch, num_splits
):
    docs = _documents()
    assert 140 <= len(docs) <= 200
    seed(firestore_db, docs)
    proxy = PartitionQueryProxy(emulators.firestore_port, default_page_size=3)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.host)
    dataset = unique_dataset(f"partitions{num_splits}")
    try:
        summary = sync(
            dataset, "--mode", "full", "--start_date", START, "--end_date", END,
            "--num_splits", str(num_splits),
        )  # fmt: skip
    finally:
        proxy.close()

    expected = _paths_by_table(docs)
    for table in load_specs():
        paths = [row["_document_path"] for row in table_rows(bq_client, dataset, table)]
        assert paths == expected[table], table  # sorted: a repeat or a gap shows here
    assert summary.documents_read == len(docs)
    assert sum(t.read for t in summary.tables) == len(docs)

    groups = {spec.collection for spec in load_specs().values()}
    if num_splits == 1:
        assert proxy.calls == []  # one range per table: nothing to split
        return
    pages = collections.Counter(collection for collection, *_ in proxy.calls)
    assert set(pages) == groups, "some table did not ask for partitions"
    # PartitionQuery counts split points: --num_splits ranges are one point fewer.
    assert all(count == num_splits - 1 for _, count, *_ in proxy.calls)
    # Each table's cursors came over several pages, out of name order, some twice.
    assert min(pages.values()) >= 2, pages
    for group in groups:
        served = [c for collection, *_, page in proxy.calls if collection == group for c in page]
        assert len(served) > len(set(served)), f"{group}: no cursor was repeated"
        assert served != sorted(served, key=name_key), f"{group}: pages came in order"
        assert len(set(served)) <= num_splits - 1
