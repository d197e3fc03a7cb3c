"""Unit tests of ``--mode reconcile``: the nightly's drift check over each table's
whole history (pipelines.plan.windows, pipelines.plan.read_plan), no server."""

from __future__ import annotations

import datetime
import math

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.cli.options import UsageError, resolve
from pipelines.clock import day_bounds
from pipelines.plan.read_plan import plan_incremental
from pipelines.plan.windows import plan_windows, reconcile_verify
from tests.support.planning import (
    INTERACTIONS,
    TASKS,
    TODAY,
    UTC,
    YESTERDAY,
    days_ago,
    synced,
)


def test_reconcile_verifies_every_day_from_the_first_to_yesterday_outside_the_window() -> None:
    states = {"tasks": synced("tasks", days_ago(3))}
    first = {"tasks": days_ago(400)}
    (nightly,) = plan_windows([TASKS], states, today=TODAY, verify_days=35)
    (weekly,) = plan_windows(
        [TASKS], states, today=TODAY, verify_days=35, mode="reconcile", first_days=first
    )
    assert weekly.incremental and weekly.reconcile and not nightly.reconcile
    # The same window and watermark as the nightly: only the check is wider.
    assert (weekly.days, weekly.watermark) == (nightly.days, nightly.watermark)
    assert weekly.days == [days_ago(2), days_ago(1)]
    assert weekly.verify[0] == days_ago(400) and weekly.verify[-1] == days_ago(3)
    assert len(weekly.verify) == 398 and len(nightly.verify) == 33
    assert set(nightly.verify) < set(weekly.verify)


def test_reconcile_of_a_table_without_history_or_first_day() -> None:
    # Never synced: a full rebuild, as for the nightly.
    (window,) = plan_windows([TASKS], {}, today=TODAY, mode="reconcile", first_days={})
    assert window.mode == "full" and window.all_days
    # Synced, but no day anywhere (empty table and collection): the nightly's check.
    states = {"user_interactions": synced("user_interactions", YESTERDAY)}
    (window,) = plan_windows(
        [INTERACTIONS], states, today=TODAY, verify_days=3, mode="reconcile", first_days={}
    )
    assert window.verify == (days_ago(3), days_ago(2), days_ago(1))


def test_reconcile_verify_is_empty_when_history_starts_after_yesterday() -> None:
    assert reconcile_verify(TODAY, YESTERDAY, []) == ()
    assert reconcile_verify(days_ago(3), YESTERDAY, [YESTERDAY]) == (days_ago(3), days_ago(2))


def test_reconcile_takes_no_dates() -> None:
    options = PipelineOptions(
        ["--project", "p", "--dataset", "d", "--mode", "reconcile", "--date", "2026-11-20"]
    )
    with pytest.raises(UsageError, match="reconcile takes no dates"):
        resolve(options, now=datetime.datetime(2026, 11, 25, 3, tzinfo=UTC))
    options = PipelineOptions(["--project", "p", "--dataset", "d", "--mode", "reconcile"])
    assert resolve(options).mode == "reconcile"


def count_reads(counted: int) -> int:
    """Firestore bills a count() one read per 1,000 documents counted, at least one."""
    return max(1, math.ceil(counted / 1000))


def reconcile_vs_full(days: int, per_day: int, drifted: int) -> dict[str, int]:
    """The reads of a reconcile and of a full run over ``days`` of history holding
    ``per_day`` documents each, ``drifted`` of them (spread out) missing one
    document in Firestore that BigQuery still holds (a hard delete)."""
    history = [days_ago(days - i) for i in range(days)]
    stride = max(1, days // max(1, drifted))
    deleted = {history[i] for i in range(stride // 2, days, stride)[:drifted]}
    firestore = {day: per_day - (day in deleted) for day in history}
    states = {"user_interactions": synced("user_interactions", YESTERDAY)}
    (window,) = plan_windows(
        [INTERACTIONS],
        states,
        today=TODAY,
        mode="reconcile",
        first_days={"user_interactions": history[0]},
    )
    billed = []

    def count(ranges):
        found = []
        for lo, hi in ranges:
            n = sum(v for day, v in firestore.items() if lo <= day_bounds(day)[0] < hi)
            billed.append(count_reads(n))
            found.append(n)
        return found

    plan = plan_incremental(
        "user_interactions",
        "timestamp",
        window.days,
        window.verify,
        None,
        [],
        count,
        lambda asked: {day: per_day for day in asked},  # BigQuery still holds every row
        lambda asked: {},
        parts=8,
    )
    read = sum(firestore[day] for day in plan.drift_days)
    return {
        "drift_days": len(plan.drift_days),
        "deleted_days": len(deleted),
        "count_reads": sum(billed),
        "documents_read": read,
        "reconcile_reads": sum(billed) + read,
        "full_reads": sum(firestore.values()),
    }


def test_reconcile_at_365_days_with_1_percent_drifted_costs_under_5_percent_of_full() -> None:
    # 100M documents over 365 days: about 274,000 a day; 4 days (~1 %) drifted.
    result = reconcile_vs_full(days=365, per_day=274_000, drifted=4)
    assert result["drift_days"] == result["deleted_days"] == 4
    # Re-read: the 4 drifted days (each once). Counted: 365 days, 274 reads each,
    # counted again for sizing the 4 re-reads.
    assert result["documents_read"] == 4 * (274_000 - 1)
    assert result["reconcile_reads"] <= 0.05 * result["full_reads"]
