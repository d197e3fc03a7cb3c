"""Sequences the model state machine found, replayed by name (no hypothesis, no server).

Each replays the steps of a failing example on ``tests/support/sequence_model.Model`` and
checks its invariants after every step, as ``run_state_machine_as_test`` does, so
a sequence stays covered whatever the derandomized search of
``tests/unit/plan/test_sequence_model.py`` happens to draw next.
"""

from __future__ import annotations

import pytest

from pipelines.state import run_log
from tests.support.sequence_model import TABLES, Model


def _step(state: Model, **step) -> None:
    defaults = {"ops": [], "nights": 0, "kind": "nightly", "back": 1, "span": 0,
                "tables": TABLES, "fault": None}  # fmt: skip
    state.step(**{**defaults, **step})
    state.fresh_as_of_is_true()


@pytest.mark.parametrize("nightlies", [1, 26])
@pytest.mark.parametrize("fault", [None, "lost_after_one", "interrupted_after_one"])
def test_a_dated_incremental_run_does_not_make_the_table_fresh(nightlies, fault) -> None:
    """A task created on today's day before the nightly: the nightly replaces every
    day up to yesterday, so the task waits for the next night's window. Next day a
    dated incremental run of the day before yesterday (with the nightly's watermark)
    reads the changes since (none) and replaces its one day: yesterday, the task's
    day, is not replaced. It must not make the table "fresh as of" its snapshot
    (``status``; it did: a dated run that advanced the watermark counted as fresh,
    also from its commit alone when the run was lost or interrupted after it).
    Found with 26 nightlies; one is enough."""
    state = Model()
    state.history(ops=[("create_task", 0, 0)])
    state.fresh_as_of_is_true()
    for _ in range(nightlies):
        _step(state, kind="nightly")
    nightly = run_log.fold_states(state.runs, state.commits, TABLES)["tasks"].fresh_read_time
    assert nightly is not None
    _step(state, kind="range_incremental", back=2, nights=1, fault=fault)
    after = run_log.fold_states(state.runs, state.commits, TABLES)["tasks"]
    assert after.fresh_read_time == nightly
    # The next nightly replaces the task's day whole: the table equals a rebuild.
    _step(state, kind="nightly")
    assert set(state.tables["tasks"]) == {"tasks/d1"}


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="open: a dated run moves newest_day over days no run replaced whole, so the "
    "nightly's window skips them and only the drift check's counts are left",
)
def test_a_dated_run_of_a_later_day_does_not_hide_a_day_from_the_nightly() -> None:
    """user_interactions (no change field): the nightly of 2026-03-01 replaces up to
    02-28; an intraday run writes turn d3 (03-01); then turn d5 is created and d3
    deleted, the same day. The next nightly would replace 03-01 whole; but two
    days later a ``--date 2026-03-02`` run comes first and moves the newest
    replaced day to 03-02, so the nightly's window is empty and 03-01 is only
    counted: one row (d3) against one document (d5). The table keeps the deleted
    turn and lacks the new one (a reconcile counts the same; the full run repairs
    it). Found by the model at 2,500 random examples."""
    state = Model()
    state.history(ops=[("create_task", 0, 0)])
    _step(state, kind="nightly")
    _step(state, kind="intraday", ops=[("create_interaction", 0, 0)])
    ops = [("create_interaction", 0, 0), ("delete", 1, 0)]  # d5 created, d3 deleted
    _step(state, kind="date", nights=2, ops=ops, tables=("user_interactions",))
    _step(state, kind="nightly", tables=("user_interactions",))
