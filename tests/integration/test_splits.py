"""Splitting a collection into name ranges: every document in exactly one range.

Property tests (*unit*) check the pure module against an independent model of
Firestore's ``__name__`` order, for any split points however they arrive
(shuffled, duplicated, in pages out of order). The integration tests check
that model against the emulator itself, and that range queries built from the
ranges read each document once.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
from hypothesis import strategies as st

from pipelines.convert.table_spec import load_specs
from pipelines.plan.splits import (
    NameRange,
    name_key,
    ranges_from_boundaries,
)
from pipelines.services import firestore as fs

# --------------------------------------------------------------------------------------
# An independent model of Firestore's name order (the emulator test checks it)
# --------------------------------------------------------------------------------------


def _compare_segments(a: str, b: str) -> int:
    def numeric(s: str) -> int | None:
        if s.startswith("__id") and s.endswith("__"):
            body = s[4:-2]
            if body.lstrip("-").isdigit() and -(2**63) <= int(body) < 2**63:
                return int(body)
        return None

    na, nb = numeric(a), numeric(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    if na is not None or nb is not None:
        return -1 if na is not None else 1
    ba, bb = a.encode("utf-8"), b.encode("utf-8")
    return (ba > bb) - (ba < bb)


def firestore_compare(a: str, b: str) -> int:
    """Segment by segment; a path sorts before the paths below it."""
    sa, sb = a.split("/"), b.split("/")
    for x, y in zip(sa, sb, strict=False):
        c = _compare_segments(x, y)
        if c:
            return c
    return (len(sa) > len(sb)) - (len(sa) < len(sb))


def contains(rng: NameRange, name: str) -> bool:
    above = rng.start is None or firestore_compare(rng.start, name) <= 0
    below = rng.end is None or firestore_compare(name, rng.end) < 0
    return above and below


# --------------------------------------------------------------------------------------
# Strategies: ids with the characters that break plain string order
# --------------------------------------------------------------------------------------

_ID_CHARS = st.sampled_from(list("aAb0z-._ ~") + ["é", "ä", "😀", "\uffff", "\x7f"])
ids = st.one_of(
    st.text(_ID_CHARS, min_size=1, max_size=4).filter(lambda s: s not in (".", "..")),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: f"__id{n}__"),
)
names = st.builds(lambda user, doc: f"users/{user}/tasks/{doc}", ids, ids)
# Cursors are document names too, in the collection group or above it.
cursors = st.one_of(names, ids.map(lambda user: f"users/{user}"))


def paged(draw_pages: list[list[str]], rnd: random.Random) -> list[str]:
    """Pages of cursors concatenated in arrival order, which may be any order."""
    rnd.shuffle(draw_pages)
    return [c for page in draw_pages for c in page]


# --------------------------------------------------------------------------------------
# The name-band fallback and its ceiling
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# PartitionQuery cursors as the client yields them
# --------------------------------------------------------------------------------------


class _Ref:
    def __init__(self, path: str) -> None:
        self.path = path


class _Partition:
    def __init__(self, end: str | None) -> None:
        self.end_at = _Ref(end) if end else None


class _Group:
    def __init__(self, ends: list[str], asked: list[int]) -> None:
        self._ends = ends
        self._asked = asked

    def get_partitions(self, count: int, **_: Any):
        # As google-cloud-firestore does: one partition per cursor, in page order.
        self._asked.append(count)
        yield from (_Partition(end) for end in self._ends[:count])
        yield _Partition(None)


class _Client:
    def __init__(self, ends: list[str]) -> None:
        self._ends = ends
        self.asked: list[int] = []

    def collection_group(self, _collection: str) -> _Group:
        return _Group(self._ends, self.asked)


# --------------------------------------------------------------------------------------
# Against the emulator: its order is the model's, and range queries read each doc once
# --------------------------------------------------------------------------------------

TRICKY_IDS = ["a", "a-b", "a.b", "a b", "a~", "A", "0", "é", "ä", "😀", "\uffff", "z", "a-", "ab"]


@pytest.fixture
def tricky_tasks(firestore_db) -> list[str]:
    paths = [f"users/{u}/tasks/{t}" for u in TRICKY_IDS for t in ("a", "a-b", "😀", "0")]
    batch = firestore_db.batch()
    for path in paths:
        batch.set(firestore_db.document(path), {"n": 1})
    batch.commit()
    return paths


def test_emulator_orders_names_as_the_model_does(firestore_db, tricky_tasks) -> None:
    query = firestore_db.collection_group("tasks").order_by("__name__")
    served = [snap.reference.path for snap in query.stream()]
    assert served == sorted(tricky_tasks, key=name_key)
    assert served != sorted(tricky_tasks), "the ids no longer tell string order from name order"


def test_range_queries_read_each_document_once(firestore_db, tricky_tasks) -> None:
    spec = load_specs()["tasks"]
    rnd = random.Random(7)
    cursors = rnd.sample(tricky_tasks, 12) + [f"users/{u}" for u in rnd.sample(TRICKY_IDS, 5)]
    cursors += cursors[:4]  # duplicates, as paged responses may repeat
    rnd.shuffle(cursors)
    read: list[str] = []
    for rng in ranges_from_boundaries("tasks", cursors):
        query = fs.range_query(firestore_db, spec, rng.start, rng.end)
        read += [snap.reference.path for snap in query.stream()]
    assert sorted(read) == sorted(tricky_tasks)
    assert len(read) == len(set(read))


def test_no_partition_query_is_said_once_at_debug_level_on_the_emulator(
    firestore_db, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pipelines.transforms import read_firestore
    from tests.support.documents import task
    from tests.support.sync_helpers import sync

    firestore_db.document("users/u1/tasks/t1").set(task("2026-11-20"))
    monkeypatch.setattr(read_firestore, "_partition_query_noted", False)
    caplog.set_level(logging.DEBUG, logger="pipelines")
    sync(None, "--date", "2026-11-20", dry_run=True)
    notes = [r for r in caplog.records if "PartitionQuery unavailable" in r.getMessage()]
    assert [r.levelno for r in notes] == [logging.DEBUG]
