"""Unit tests of the nightly's windows, modes and watermarks (pipelines.plan.windows)."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from pipelines.plan.windows import (
    CLOCK_SKEW,
    ONE_DAY,
    CatchUpTooLong,
    IntradayRefused,
    TableState,
    plan_intraday,
    plan_windows,
)
from pipelines.state import run_log
from tests.support.planning import (
    INTERACTIONS,
    TASKS,
    TODAY,
    UTC,
    WATERMARK,
    YESTERDAY,
    days_ago,
    synced,
)


def test_a_table_never_synced_gets_a_full_rebuild() -> None:
    (window,) = plan_windows([TASKS], {}, today=TODAY)
    assert window.mode == "full" and window.all_days and window.end == YESTERDAY


def test_nightly_runs_from_the_day_after_the_newest_replaced_day_to_yesterday() -> None:
    (window,) = plan_windows([TASKS], {"tasks": synced("tasks", days_ago(4))}, today=TODAY)
    assert window.incremental
    assert window.days == [days_ago(3), days_ago(2), days_ago(1)]
    assert window.watermark == WATERMARK - CLOCK_SKEW
    assert window.horizon == YESTERDAY


def test_a_caught_up_table_has_an_empty_window_but_still_verifies_and_reads_changes() -> None:
    (window,) = plan_windows(
        [TASKS], {"tasks": synced("tasks", YESTERDAY)}, today=TODAY, verify_days=3
    )
    assert window.days == [] and window.watermark is not None
    assert window.verify == (days_ago(3), days_ago(2), days_ago(1))


def test_verified_days_leave_out_the_window() -> None:
    (window,) = plan_windows(
        [TASKS], {"tasks": synced("tasks", days_ago(2))}, today=TODAY, verify_days=4
    )
    assert window.days == [YESTERDAY]
    assert window.verify == (days_ago(4), days_ago(3), days_ago(2))


def test_a_table_without_change_field_has_no_watermark() -> None:
    states = {"user_interactions": synced("user_interactions", days_ago(2))}
    (window,) = plan_windows([INTERACTIONS], states, today=TODAY)
    assert window.incremental and window.watermark is None


def test_too_far_behind_fails_and_names_the_backfill() -> None:
    states = {"tasks": synced("tasks", days_ago(10)), "user_interactions": synced("x", days_ago(2))}
    with pytest.raises(CatchUpTooLong) as caught:
        plan_windows([TASKS, INTERACTIONS], states, today=TODAY, backfill_hint="--project p ")
    message = str(caught.value)
    assert "tasks (last replaced 2026-11-15) more than 7 day(s) behind" in message
    assert message.endswith(
        "backfill first: firestore-to-bq backfill --start_date 2026-11-16 --end_date 2026-11-24 "
        "-- --project p --collections tasks (or raise --max_catchup_days)"
    )
    assert caught.value.instead == (
        "firestore-to-bq backfill --start_date 2026-11-16 --end_date 2026-11-24 "
        "-- --project p --collections tasks"
    )


def test_dates_mean_full_mode_unless_asked_and_exactly_those_days() -> None:
    dates = (days_ago(10), days_ago(8))
    states = {"tasks": synced("tasks", YESTERDAY)}
    (full,) = plan_windows([TASKS], states, today=TODAY, dates=dates)
    assert full.mode == "full" and not full.all_days
    assert full.days == [days_ago(10), days_ago(9), days_ago(8)]
    (inc,) = plan_windows([TASKS], states, today=TODAY, dates=dates, mode="incremental")
    assert inc.incremental and inc.verify == () and inc.watermark is not None
    assert not full.advances_watermark and inc.advances_watermark


def test_mode_full_without_dates_rebuilds_every_table() -> None:
    states = {"tasks": synced("tasks", days_ago(2))}
    (window,) = plan_windows([TASKS], states, today=TODAY, mode="full")
    assert window.all_days and window.advances_watermark


def test_a_table_replaced_only_by_dated_runs_gets_a_full_rebuild() -> None:
    """A backfill records no watermark: the next nightly must still see every edit."""
    states = {"tasks": TableState("tasks", newest_day=days_ago(1), watermark=None)}
    (window,) = plan_windows([TASKS], states, today=TODAY)
    assert window.mode == "full" and window.all_days and window.advances_watermark


def test_a_table_without_change_field_needs_no_watermark() -> None:
    states = {"user_interactions": TableState("user_interactions", newest_day=days_ago(2))}
    (window,) = plan_windows([INTERACTIONS], states, today=TODAY)
    assert window.incremental and not window.advances_watermark


def test_a_dated_incremental_run_without_watermark_does_not_advance_it() -> None:
    states = {"tasks": TableState("tasks", newest_day=days_ago(3))}
    (window,) = plan_windows(
        [TASKS], states, today=TODAY, mode="incremental", dates=(days_ago(2), days_ago(2))
    )
    assert window.incremental and window.watermark is None
    assert not window.advances_watermark


def test_an_up_to_date_nightly_says_there_is_nothing_to_replace() -> None:
    plan = plan_windows([TASKS], {"tasks": synced("tasks", YESTERDAY)}, today=TODAY)
    assert plan.window("tasks").empty
    assert plan.describe() == f"window: nothing to replace (up to date through {YESTERDAY})"


# -- intraday -------------------------------------------------------------------------

NIGHTLY = datetime.datetime(2026, 11, 25, 2, tzinfo=UTC)
MORNING = datetime.datetime(2026, 11, 25, 1, tzinfo=UTC)


def test_an_intraday_run_replaces_no_day_upserts_through_today_and_verifies_today() -> None:
    states = {"tasks": TableState("tasks", newest_day=YESTERDAY, watermark=NIGHTLY)}
    plan = plan_intraday([TASKS], states, today=TODAY, verify_days=2)
    (window,) = plan
    assert plan.intraday and window.intraday and window.incremental
    assert window.days == [] and window.horizon == TODAY
    assert window.verify == (days_ago(2), days_ago(1), TODAY)
    assert window.watermark == NIGHTLY - CLOCK_SKEW and window.advances_watermark
    assert plan.describe() == f"intraday: {TODAY} (UTC) up to the snapshot"


def test_after_a_nightly_the_change_query_starts_at_todays_last_intraday_run() -> None:
    """The nightly read today's changes but wrote none of them."""
    state = TableState("tasks", newest_day=YESTERDAY, watermark=NIGHTLY, intraday_read_time=MORNING)
    (window,) = plan_intraday([TASKS], {"tasks": state}, today=TODAY)
    assert window.watermark == MORNING - CLOCK_SKEW
    yesterdays = dataclasses.replace(state, intraday_read_time=MORNING - ONE_DAY)
    (window,) = plan_intraday([TASKS], {"tasks": yesterdays}, today=TODAY)
    assert window.watermark == NIGHTLY - CLOCK_SKEW


def test_a_table_without_change_field_is_read_by_partition_from_todays_last_run() -> None:
    state = TableState("user_interactions", newest_day=YESTERDAY, last_success_read_time=NIGHTLY)
    (window,) = plan_intraday([INTERACTIONS], {"user_interactions": state}, today=TODAY)
    assert window.change_by_partition and not window.advances_watermark
    assert window.watermark == datetime.datetime(2026, 11, 25, tzinfo=UTC)  # midnight
    recent = dataclasses.replace(state, intraday_read_time=NIGHTLY)
    (window,) = plan_intraday([INTERACTIONS], {"user_interactions": recent}, today=TODAY)
    assert window.watermark == NIGHTLY - CLOCK_SKEW


def test_a_nightly_after_intraday_runs_today_brings_today_up_to_its_snapshot_too() -> None:
    """Issue 23, finding 4: the nightly deletes a changed document's old row wherever
    it is; one now on today that it did not upsert lost the row an intraday run wrote."""
    state = TableState(
        "tasks", newest_day=YESTERDAY, watermark=NIGHTLY, last_success_read_time=NIGHTLY,
        intraday_read_time=NIGHTLY,
    )  # fmt: skip
    (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY, verify_days=2)
    assert window.incremental and not window.intraday and window.days == []
    assert window.horizon == TODAY
    assert window.verify == (days_ago(2), days_ago(1), TODAY)
    (window,) = plan_windows(
        [TASKS], {"tasks": state}, today=TODAY, mode="reconcile",
        first_days={"tasks": days_ago(3)},
    )  # fmt: skip
    assert window.horizon == TODAY and window.verify == (*window.verify[:-1], TODAY)
    (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY, mode="full")
    assert window.all_days and window.end == YESTERDAY and window.horizon == TODAY
    # Without a change field: today's new documents by partition, as intraday runs.
    states = {"user_interactions": dataclasses.replace(state, table="user_interactions")}
    (window,) = plan_windows([INTERACTIONS], states, today=TODAY, verify_days=1)
    assert window.change_by_partition and window.watermark == NIGHTLY - CLOCK_SKEW
    assert window.verify == (YESTERDAY, TODAY) and not window.advances_watermark


def test_a_nightly_with_no_intraday_run_today_leaves_today_out_as_before() -> None:
    last_night = datetime.datetime(2026, 11, 24, 23, tzinfo=UTC)
    state = TableState(
        "tasks", newest_day=days_ago(2), watermark=last_night, intraday_read_time=last_night
    )
    (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY, verify_days=2)
    assert window.horizon == YESTERDAY and TODAY not in window.verify
    (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY, mode="full")
    assert window.horizon == YESTERDAY


def test_a_nightly_that_replaced_today_does_not_declare_it_complete() -> None:
    """A nightly after intraday runs may replace today whole (its drift check): the
    next nightly must still replace it whole once it is yesterday."""
    started = datetime.datetime(2026, 11, 25, 2, tzinfo=UTC)
    entry = {
        "table": "tasks", "mode": "incremental", "status": "succeeded", "replaced": True,
        "replaced_days": [YESTERDAY.isoformat(), TODAY.isoformat()],
        "advances_watermark": True, "fresh": True,
    }  # fmt: skip
    run = {"run_id": "n", "started_at": started, "read_time": started, "status": "succeeded",
           "error": None, "tables": [entry]}  # fmt: skip
    commit = {"newest_day": TODAY, "advances_watermark": True}
    (state,) = run_log.fold_states([run], {"n": {"tasks": commit}}, ["tasks"]).values()
    assert state.newest_day == YESTERDAY
    (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY + ONE_DAY)
    assert window.days == [TODAY]


def test_intraday_is_refused_for_a_table_the_nightly_never_synced() -> None:
    with pytest.raises(IntradayRefused, match=r"tasks \(no run without dates has synced it"):
        plan_intraday([TASKS], {}, today=TODAY, nightly_hint="--project p --dataset d")


# --------------------------------------------------------------------------------------
# located_at: the snapshot a changed document's old row is found from
# --------------------------------------------------------------------------------------


def test_after_a_run_that_saw_every_change_old_rows_are_located_at_its_snapshot() -> None:
    state = dataclasses.replace(synced("tasks", days_ago(1)), last_success_read_time=WATERMARK)
    (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY)
    assert window.located_at == WATERMARK
    (window,) = plan_intraday([TASKS], {"tasks": state}, today=TODAY)
    assert window.located_at == WATERMARK


def test_after_a_dated_run_old_rows_are_not_located_the_delete_scans_the_table() -> None:
    later = WATERMARK + datetime.timedelta(hours=5)  # a dated run: it did not see every change
    state = dataclasses.replace(synced("tasks", days_ago(1)), last_success_read_time=later)
    (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY)
    assert window.incremental and window.located_at is None


def test_a_table_without_change_field_is_located_at_its_last_snapshot() -> None:
    later = WATERMARK + datetime.timedelta(hours=5)
    state = TableState("user_interactions", newest_day=days_ago(1), last_success_read_time=later)
    (window,) = plan_windows([INTERACTIONS], {"user_interactions": state}, today=TODAY)
    assert window.located_at == later


def test_full_windows_are_never_located() -> None:
    (window,) = plan_windows([TASKS], {}, today=TODAY)
    assert window.located_at is None


# --------------------------------------------------------------------------------------
# A watermark from backfill chunks (issue 26)
# --------------------------------------------------------------------------------------


def _at(day: datetime.date, hour: int = 3) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), UTC)


def _backfilled(*windows: tuple[int, int, int]) -> TableState:
    """A table only dated runs replaced: (first, last) days ago, snapshot on day ago."""
    dated = tuple((days_ago(a), days_ago(b), _at(days_ago(s))) for a, b, s in windows)
    newest = max(end for _, end, _ in dated)
    return TableState("tasks", newest_day=newest, dated_windows=dated,
                      last_success_read_time=max(t for *_, t in dated))  # fmt: skip


def test_chunks_that_cover_the_table_from_its_first_day_give_the_nightly_a_watermark() -> None:
    """Finding 2: the first nightly after a backfill re-read the whole history."""
    from pipelines.plan.windows import backfill_watermark

    state = _backfilled((30, 21, 1), (20, 11, 0), (10, 2, 0))  # chunks run over two days
    (window,) = plan_windows(
        [TASKS], {"tasks": state}, today=TODAY, first_days={"tasks": days_ago(30)}
    )
    assert window.incremental and not window.all_days
    assert window.watermark == _at(days_ago(1)) - CLOCK_SKEW  # the oldest chunk snapshot
    assert window.days == [YESTERDAY]  # one night, not the history
    assert window.advances_watermark and window.located_at is None  # old rows: scanned
    assert backfill_watermark(state.dated_windows, days_ago(30)) == (_at(days_ago(1)), YESTERDAY)


@pytest.mark.parametrize(
    ("first", "windows", "expected_start"),
    [
        (31, [(30, 2, 0)], None),  # documents on a day before the backfill's first
        (30, [(28, 2, 0)], None),  # the chunks start after the first day
        (30, [(30, 20, 0), (18, 2, 0)], 19),  # a gap: re-read from it (too far: refused)
        (30, [(30, 20, 0), (19, 2, 0), (25, 24, 0)], 1),  # overlaps and re-runs are fine
    ],
)
def test_chunks_with_a_gap_or_missing_the_first_day_cost_those_days_or_a_full_run(
    first: int, windows: list[tuple[int, int, int]], expected_start: int | None
) -> None:
    from pipelines.plan.windows import backfill_watermark

    state = _backfilled(*windows)
    found = backfill_watermark(state.dated_windows, days_ago(first))
    if expected_start is None:
        assert found is None
        (window,) = plan_windows([TASKS], {"tasks": state}, today=TODAY,
                                 first_days={"tasks": days_ago(first)})  # fmt: skip
        assert window.mode == "full" and window.all_days  # as before: the whole table
        return
    assert found is not None and found[1] == days_ago(expected_start)
    if expected_start > 7:
        with pytest.raises(CatchUpTooLong, match=f"--start_date {days_ago(expected_start)}"):
            plan_windows([TASKS], {"tasks": state}, today=TODAY,
                         first_days={"tasks": days_ago(first)})  # fmt: skip


def test_without_the_tables_first_day_or_with_a_full_mode_the_backfill_gives_no_watermark() -> None:
    state = _backfilled((30, 2, 0))
    (full,) = plan_windows([TASKS], {"tasks": state}, today=TODAY, mode="full",
                           first_days={"tasks": days_ago(30)})  # fmt: skip
    assert full.mode == "full"
    (unknown,) = plan_windows([TASKS], {"tasks": state}, today=TODAY)  # no first day known
    assert unknown.mode == "full" and unknown.all_days


def test_the_audit_fold_keeps_each_dated_success_and_not_the_rest() -> None:
    def run(run_id: str, start: int, end: int, fresh: bool, status: str = "succeeded") -> dict:
        entry = {"table": "tasks", "status": status, "replaced": status == "succeeded",
                 "fresh": fresh, "intraday": False, "replaced_days": []}  # fmt: skip
        return {"run_id": run_id, "status": status, "error": None, "started_at": _at(TODAY),
                "read_time": _at(days_ago(start)), "window_start": days_ago(start).isoformat(),
                "window_end": days_ago(end), "tables": [entry]}  # fmt: skip

    rows = [run("a", 9, 5, False), run("b", 4, 2, False, "failed"), run("c", 1, 1, True)]
    state = run_log.fold_states(rows, {}, ["tasks"])["tasks"]
    assert state.dated_windows == ((days_ago(9), days_ago(5), _at(days_ago(9))),)
