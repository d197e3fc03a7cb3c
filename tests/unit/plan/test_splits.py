"""Splitting a collection into name ranges: every document in exactly one range.

Property tests (*unit*) check the pure module against an independent model of
Firestore's ``__name__`` order, for any split points however they arrive
(shuffled, duplicated, in pages out of order). The integration tests check
that model against the emulator itself, and that range queries built from the
ranges read each document once.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.convert.table_spec import load_specs
from pipelines.plan.splits import (
    ID_ALPHABET,
    MAX_NAME_BANDS,
    NameRange,
    name_bands,
    name_boundaries,
    name_key,
    ranges_from_boundaries,
    sorted_boundaries,
)
from pipelines.transforms.read_firestore import _SplitQueryFn

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


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(names, max_size=40),
    cursors=st.lists(cursors, max_size=12),
    duplicates=st.lists(st.integers(0, 11), max_size=6),
    page_size=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_ranges_hold_every_name_exactly_once(
    names: list[str], cursors: list[str], duplicates: list[int], page_size: int, seed: int
) -> None:
    rnd = random.Random(seed)
    arrived = cursors + [cursors[i] for i in duplicates if i < len(cursors)]
    pages = [arrived[i : i + page_size] for i in range(0, len(arrived), page_size)]
    ranges = ranges_from_boundaries("tasks", paged(pages, rnd))

    for name in names:
        holding = [r for r in ranges if contains(r, name)]
        assert len(holding) == 1, (name, holding)
    # No empty or backwards range: each ends above where it starts.
    for r in ranges:
        if r.start is not None and r.end is not None:
            assert firestore_compare(r.start, r.end) < 0, r
    assert len(ranges) == len(set(cursors)) + 1


@settings(max_examples=300, deadline=None)
@given(st.lists(cursors, max_size=20))
def test_sorted_boundaries_follow_firestore_order(cursors: list[str]) -> None:
    ordered = sorted_boundaries(cursors)
    expected = sorted(set(cursors), key=functools.cmp_to_key(firestore_compare))
    assert ordered == expected


def test_names_compare_by_segment_not_as_strings() -> None:
    # '-' sorts before '/' as a character, but segment "a" sorts before "a-b".
    shuffled = ["users/a-b/tasks/t1", "users/a/tasks/t9", "users/a", "users/__id7__/tasks/x"]
    assert sorted(shuffled) != sorted(shuffled, key=name_key)
    assert sorted_boundaries(shuffled) == [
        "users/__id7__/tasks/x",
        "users/a",
        "users/a/tasks/t9",
        "users/a-b/tasks/t1",
    ]
    # UTF-8 byte order, not UTF-16 code units: U+FFFF sorts before an emoji.
    assert sorted_boundaries(["users/😀", "users/\uffff"]) == ["users/\uffff", "users/😀"]
    # Numeric ids by value, before every other id.
    assert sorted_boundaries(["a/__id10__", "a/__id9__", "a/0", "a/__id-1__"]) == [
        "a/__id-1__",
        "a/__id9__",
        "a/__id10__",
        "a/0",
    ]


def test_cursors_out_of_page_order_give_disjoint_ranges() -> None:
    ranges = ranges_from_boundaries("tasks", ["users/m", "users/c", "users/m", "users/x"])
    assert [(r.start, r.end) for r in ranges] == [
        (None, "users/c"),
        ("users/c", "users/m"),
        ("users/m", "users/x"),
        ("users/x", None),
    ]


# --------------------------------------------------------------------------------------
# The name-band fallback and its ceiling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_splits", "ranges"), [(1, 1), (2, 2), (8, 8), (62, 62), (63, 62), (1000, 62)]
)
def test_name_bands_cut_at_most_one_band_per_id_character(num_splits: int, ranges: int) -> None:
    bands = name_bands("users", num_splits)
    assert len(ranges_from_boundaries("tasks", bands)) == ranges
    assert bands == sorted_boundaries(bands)
    assert MAX_NAME_BANDS == len(ID_ALPHABET) == 62


def test_name_boundaries_cut_the_parent_or_the_collection() -> None:
    specs = load_specs()
    assert name_boundaries(specs["tasks"], 2) == ["users/V"]
    top_level = dataclasses.replace(specs["tasks"], layout="top_level", collection="chat_log")
    assert name_boundaries(top_level, 2) == ["chat_log/V"]


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


def test_partition_query_cursors_are_sorted_before_they_become_ranges() -> None:
    fn = _SplitQueryFn("p", "(default)", None, 4, 5.0)  # type: ignore[arg-type]
    fn._client = _Client(["users/m/tasks/1", "users/a-b/tasks/1", "users/a/tasks/9"])
    fn._retry = None
    ranges = list(fn.process(load_specs()["tasks"]))
    assert [(r.start, r.end) for r in ranges] == [
        (None, "users/a/tasks/9"),
        ("users/a/tasks/9", "users/a-b/tasks/1"),
        ("users/a-b/tasks/1", "users/m/tasks/1"),
        ("users/m/tasks/1", None),
    ]


def test_partition_query_asks_one_split_point_fewer_than_ranges() -> None:
    """``partition_count`` counts split points: ``--num_splits`` N is N - 1 of them."""
    fn = _SplitQueryFn("p", "(default)", None, 3, 5.0)  # type: ignore[arg-type]
    fn._client = _Client(["users/a/tasks/1", "users/b/tasks/1", "users/c/tasks/1"])
    fn._retry = None
    ranges = list(fn.process(load_specs()["tasks"]))
    assert fn._client.asked == [2]
    assert len(ranges) == 3


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


