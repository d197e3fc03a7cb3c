"""Unit tests of what an incremental run reads (pipelines.read_plan): no server."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from pipelines import read_plan
from pipelines.read_plan import ONE_DAY, change_ranges, day_bounds, plan_incremental, time_slices

UTC = datetime.UTC
DAY = datetime.date(2026, 11, 24)
LO, HI = day_bounds(DAY)
WATERMARK = LO + datetime.timedelta(hours=3)


def _at(hour: float) -> datetime.datetime:
    return LO + datetime.timedelta(hours=hour)


def _plan(firestore: list[datetime.datetime], changed: list[datetime.datetime], **kw):
    counted = []

    def count(ranges):
        counted.extend(ranges)
        return [sum(lo <= t < hi for t in firestore) for lo, hi in ranges]

    args = {
        "window": [DAY],
        "verify": [],
        "watermark": WATERMARK,
        "bigquery_rows": lambda days: {},
        "changed_rows_before": lambda days: {},
        "parts": 1,
    } | kw
    plan = plan_incremental(
        "tasks", "created_at", changed_times=changed, count_firestore=count, **args
    )
    return plan, counted


def test_a_day_covered_after_the_watermark_reads_only_the_part_before() -> None:
    firestore = [_at(1), _at(5), _at(20)]
    plan, counted = _plan(firestore, changed=[_at(5), _at(20)])
    assert counted == [(WATERMARK, HI), (LO, WATERMARK)]  # coverage, then sizing the read
    assert [(r.start, r.end) for r in plan.reads] == [(LO, WATERMARK)]
    assert plan.days == (DAY,) and plan.count_queries == 2


def test_a_day_not_covered_is_read_whole() -> None:
    firestore = [_at(1), _at(5), _at(20)]  # _at(20) has no change field newer than the watermark
    plan, _ = _plan(firestore, changed=[_at(5)])
    assert [(r.start, r.end) for r in plan.reads] == [(LO, HI)]


def test_a_day_wholly_after_the_watermark_and_covered_needs_no_read() -> None:
    plan, _ = _plan([_at(30 - 24)], changed=[_at(6)], watermark=LO - datetime.timedelta(days=1))
    assert plan.reads == () and plan.covered_days == (DAY,)


def test_without_a_watermark_window_days_are_read_whole() -> None:
    plan, counted = _plan([], changed=[], watermark=None)
    assert counted == [(LO, HI)]  # only to size the read
    assert [(r.start, r.end) for r in plan.reads] == [(LO, HI)]


def test_reads_are_sliced_by_what_they_will_return(monkeypatch) -> None:
    monkeypatch.setattr(read_plan, "DOCS_PER_SLICE", 4)
    ten = [_at(h) for h in range(10)]
    plan, _ = _plan(ten, changed=[], watermark=None, parts=8)
    assert len(plan.reads) == 3  # ceil(10 / 4)
    assert plan.reads[0].start == LO and plan.reads[-1].end == HI
    plan, _ = _plan([], changed=[], watermark=None, parts=8)
    assert len(plan.reads) == 1  # an empty day is one query, not eight
    plan, _ = _plan(ten * 10, changed=[], watermark=None, parts=8)
    assert len(plan.reads) == 8  # capped by --num_splits


def test_drift_is_what_firestore_counts_against_bigquery_after_this_runs_moves() -> None:
    old = DAY - datetime.timedelta(days=3)
    old_lo, old_hi = day_bounds(old)
    # BigQuery holds 3 rows on `old`; one of them belongs to a document that moved
    # away (changed), and Firestore now counts 2 there: no drift.
    plan, _ = _plan(
        [old_lo, old_lo + datetime.timedelta(hours=1)],
        changed=[],
        window=[],
        verify=[old],
        bigquery_rows=lambda days: {old: 3},
        changed_rows_before=lambda days: {old: 1},
    )
    assert plan.drift_days == () and plan.reads == ()
    # A hard delete: BigQuery 3, Firestore 2, nothing moved: the day is re-read.
    plan, _ = _plan(
        [old_lo, old_lo + datetime.timedelta(hours=1)],
        changed=[],
        window=[],
        verify=[old],
        bigquery_rows=lambda days: {old: 3},
    )
    assert plan.drift_days == (old,) and plan.days == (old,)
    assert [(r.start, r.end) for r in plan.reads] == [(old_lo, old_hi)]


@given(st.integers(1, 64), st.integers(1, 10_000))
def test_time_slices_cover_the_range_exactly(parts: int, minutes: int) -> None:
    end = LO + datetime.timedelta(minutes=minutes)
    slices = time_slices(LO, end, parts)
    assert slices[0][0] == LO and slices[-1][1] == end
    assert all(a < b for a, b in slices)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(slices, slices[1:], strict=False))


def test_change_ranges_end_open_for_clocks_ahead_of_firestore() -> None:
    ranges = change_ranges("tasks", "updated_at", WATERMARK, _at(9), 3)
    assert [r.start for r in ranges] == [WATERMARK, _at(5), _at(7)]
    assert ranges[-1].end is None and all(r.changed for r in ranges)


def test_the_plan_names_every_span_it_counted() -> None:
    firestore = [_at(1), _at(5), _at(20)]
    for changed in ([_at(5), _at(20)], [_at(5)]):  # covered after the watermark, and not
        plan, counted = _plan(firestore, changed=changed, verify=[DAY - ONE_DAY])
        assert list(plan.count_spans) == counted and plan.count_queries == len(counted)
    assert plan.count_spans[-1] == (LO, HI)  # not covered: the whole day is sized


def test_old_rows_are_looked_up_on_their_days_now_only_under_bigquerys_billing_floor() -> None:
    verify = [DAY - ONE_DAY * i for i in (1, 2)]
    current = [DAY - ONE_DAY * 40, DAY - ONE_DAY]
    path = "users/u1/tasks/" + "t" * 50  # 65 bytes: 75 a row with the partition column
    small = read_plan.old_row_days(verify, current, 133_333, [path])  # 9.99 MB
    assert small == tuple(sorted({*verify, DAY - ONE_DAY * 40}))
    large = read_plan.old_row_days(verify, current, 133_334, [path])  # just over 10 MB
    assert large == tuple(sorted(verify))  # the drift check's days, paid anyway
    assert read_plan.old_row_days([], [], 0, []) == ()
