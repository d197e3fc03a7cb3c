"""The stop trial's own logic (``devtools/stop_trial.py``), without servers: its
options, the runs it plans and the invariants it checks after each, so the tool
that backs issue 23's guarantee cannot rot unnoticed between trials."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from devtools import stop_trial
from devtools.stop_trial import Observed, check

YESTERDAY = datetime.date(2026, 12, 6)


def _observed(**changes) -> Observed:
    """A run that leased, was stopped and cleaned up after itself."""
    clean = Observed(
        run_id="stop7",
        exit_code=130,
        stderr="error: run stop7 interrupted\n",
        held=(),
        staging=(),
        statuses=("running", "interrupted"),
    )
    return dataclasses.replace(clean, **changes)


def test_options_and_their_defaults() -> None:
    args = stop_trial.parse_args([])
    assert (args.runs, args.keep, args.max_delay) == (200, False, None)
    assert isinstance(args.seed, int)  # a fresh one, printed so it can be replayed
    args = stop_trial.parse_args(["--runs", "5", "--seed", "42", "--keep"])
    assert (args.runs, args.seed, args.keep) == (5, 42, True)
    with pytest.raises(SystemExit):
        stop_trial.parse_args(["--runs", "0"])


def test_a_run_that_gave_everything_back_passes() -> None:
    checked = check(_observed())
    assert checked.ok and checked.leased


@pytest.mark.parametrize("code", [0, 1, 2, 130])
def test_every_documented_exit_code_passes(code: int) -> None:
    assert check(_observed(exit_code=code)).ok


def test_a_run_stopped_before_leasing_writes_nothing_and_passes() -> None:
    for code in (130, stop_trial.KILLED_WHILE_STARTING):  # the handler set, or not yet
        checked = check(_observed(exit_code=code, statuses=()))
        assert checked.ok and not checked.leased


def test_killed_by_sigterms_default_action_after_leasing_fails() -> None:
    """The handler is set for the whole of ``main``: a run that leased and then
    died of the signal itself was not stopped the documented way."""
    checked = check(_observed(exit_code=stop_trial.KILLED_WHILE_STARTING, stderr=""))
    assert [invariant for invariant, _ in checked.problems] == ["exit code"]
    assert "after main returned" not in checked.text()
    # Its summary printed: the signal landed as the interpreter shut down.
    done = _observed(exit_code=stop_trial.KILLED_WHILE_STARTING, stdout="run stop7: ...\n")
    assert "after main returned" in check(done).text()


def test_each_leftover_is_a_failure_whoever_left_it() -> None:
    held = check(_observed(held=(("tasks", "stop3"),)))
    assert [i for i, _ in held.problems] == ["leases"] and "tasks by stop3" in held.text()
    staged = check(_observed(staging=("_staging_stop3_tasks",)))
    assert [i for i, _ in staged.problems] == ["staging"]
    traced = check(_observed(stderr="Traceback (most recent call last):\n", exit_code=-9))
    assert [i for i, _ in traced.problems] == ["exit code", "traceback"]


def test_a_run_that_leased_needs_a_verdict_row() -> None:
    """Only ``running``, or no row at all but a trace in the leases or staging."""
    assert [i for i, _ in check(_observed(statuses=("running",))).problems] == ["verdict"]
    traces = {"held": (("tasks", "stop7"),), "staging": ("_staging_stop7_user_interactions",)}
    for field, value in traces.items():
        checked = check(_observed(statuses=(), **{field: value}))
        assert checked.leased and "verdict" in [i for i, _ in checked.problems], field


def test_another_runs_staging_table_is_not_this_runs_lease() -> None:
    assert stop_trial.owns_staging("stop1", "_staging_stop1_tasks")
    assert not stop_trial.owns_staging("stop1", "_staging_stop10_tasks")
    checked = check(_observed(statuses=(), staging=("_staging_stop70_tasks",)))
    assert not checked.leased and [i for i, _ in checked.problems] == ["staging"]


def test_planned_runs_are_replayable_and_stay_within_the_seeded_days() -> None:
    first_day = YESTERDAY - datetime.timedelta(days=stop_trial.SEED_DAYS - 1)
    planned = [stop_trial.plan(11, i, YESTERDAY) for i in range(1, 201)]
    assert planned == [stop_trial.plan(11, i, YESTERDAY) for i in range(1, 201)]
    assert {p.kind for p in planned} == set(stop_trial.KINDS)
    for p in planned:
        assert p.run_id == f"stop{p.index}" and 0 <= p.fraction < 1
        days = [datetime.date.fromisoformat(a) for a in p.args if a[:1].isdigit()]
        assert all(first_day <= day <= YESTERDAY for day in days), p
        if p.kind == "range":
            assert 1 <= (days[1] - days[0]).days + 1 <= 5, p
        assert p.args[-2:][0] == "--collections"


def test_the_summary_counts_runs_exit_codes_and_failures() -> None:
    tally = stop_trial.Tally()
    ended = stop_trial.Ended(exit_code=130, signalled_at=1.5, exited_at=2.0, stderr="")
    tally.add(_observed(), check(_observed()), ended, "ok")
    early = _observed(exit_code=stop_trial.KILLED_WHILE_STARTING, statuses=())
    tally.add(early, check(early), ended, "early")
    held = _observed(held=(("tasks", "stop7"),))
    tally.add(held, check(held), ended, "held")
    lines = tally.lines(seed=3)
    assert lines[0].startswith("runs: 3 (seed 3)")
    assert lines[1] == "exit codes: -15 x1, 130 x2"
    assert lines[2].startswith("stopped before leasing: 1 (1 killed while starting")
    assert lines[-1].startswith("failures: 1 (leases 1, staging 0, verdict 0,")
    assert tally.failures == ["held"]
