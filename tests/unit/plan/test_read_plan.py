"""Unit tests of what an incremental run reads (pipelines.plan.read_plan): no server."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from pipelines.clock import ONE_DAY, day_bounds
from pipelines.plan import read_plan
from pipelines.plan.read_plan import change_ranges, plan_incremental, time_slices

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


def test_old_rows_are_looked_up_only_on_the_verified_days_with_room_for_one() -> None:
    """The lookup scans ``_document_path`` on the days it is asked; a verified
    day whose count BigQuery + changed-now already matches cannot hold a
    changed document's row (each adds one to the excess), so it is not asked."""
    moved_from, quiet, deleted = (DAY - ONE_DAY * i for i in (2, 3, 4))
    asked = []
    firestore = [
        day_bounds(moved_from)[0],  # one left of 2: the other moved to DAY - 1
        day_bounds(DAY - ONE_DAY)[0],  # the moved one, now here
        *[day_bounds(quiet)[0]] * 3,  # untouched
        day_bounds(deleted)[0],  # one of 2 hard-deleted
    ]

    def leaving(days):
        asked.append(sorted(days))
        return {moved_from: 1}

    plan, _ = _plan(
        firestore,
        changed=[day_bounds(DAY - ONE_DAY)[0]],
        window=[],
        verify=[DAY - ONE_DAY, moved_from, quiet, deleted],
        bigquery_rows=lambda days: {moved_from: 2, quiet: 3, deleted: 2},
        changed_rows_before=leaving,
    )
    assert asked == [[deleted, moved_from]]  # not the quiet day, nor where the move went
    assert plan.drift_days == (deleted,)


def test_a_move_and_an_untracked_arrival_on_one_day_cancel_out() -> None:
    """The documented blind spot of looking only where the count leaves room: a
    changed document leaves a day and a write that did not set the change field
    brings another onto it; the day's count matches and it is not re-read this
    run (the move's old row is deleted all the same, so the next run's counts
    differ and re-read it)."""
    old = DAY - ONE_DAY * 2
    plan, _ = _plan(
        [day_bounds(old)[0], day_bounds(old)[0], day_bounds(DAY - ONE_DAY)[0]],
        changed=[day_bounds(DAY - ONE_DAY)[0]],
        window=[],
        verify=[DAY - ONE_DAY, old],
        bigquery_rows=lambda days: {old: 2},
        changed_rows_before=lambda days: {old: 1} if old in days else {},
    )
    assert plan.drift_days == ()


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
