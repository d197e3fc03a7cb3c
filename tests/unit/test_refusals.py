"""The refusal family (pipelines.refusals): one exit code per kind, one spelling of what to
run instead, and one place on the command line that turns a refusal into its exit.

Each refusal here is raised by the code that raises it in a run (the planners, the
snapshot check, the lease), not built by hand, so its text is the one a user sees.
"""

from __future__ import annotations

import datetime
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import firestore_to_bq, refusals
from pipelines.cli import backfill
from pipelines.plan import quotas, snapshot
from pipelines.plan.windows import plan_intraday, plan_windows
from pipelines.refusals import (
    BadSetting,
    CatchUpTooLong,
    IntradayRefused,
    LeaseHeld,
    OverQuota,
    Refusal,
    SnapshotTooShort,
)
from pipelines.state import leases
from tests.support.planning import TASKS, TODAY, UTC, days_ago, synced

TARGET = "--project p --dataset d "

#: Each refusal's exit code, as the command line gave it before they were one family:
#: 2 where the run as asked cannot be done (it was reported as a usage error), 1 for a
#: held lease (the same command works once the other run is over).
EXIT_CODES = {
    CatchUpTooLong: 2,
    IntradayRefused: 2,
    OverQuota: 2,
    SnapshotTooShort: 2,
    BadSetting: 2,
    LeaseHeld: 1,
}


def _caught(action) -> Refusal:
    with pytest.raises(Refusal) as caught:
        action()
    return caught.value


def _catch_up_too_long() -> Refusal:
    behind = {"tasks": synced("tasks", days_ago(10))}
    return _caught(lambda: plan_windows([TASKS], behind, today=TODAY, backfill_hint=TARGET))


def _intraday_refused() -> Refusal:
    return _caught(lambda: plan_intraday([TASKS], {}, today=TODAY, nightly_hint=TARGET))


def _over_quota() -> Refusal:
    dates = (datetime.date(2015, 12, 12), datetime.date(2026, 11, 24))  # 4,001 days
    plan = plan_windows([TASKS], {}, today=TODAY, dates=dates)
    return _caught(
        lambda: quotas.check(plan, load_batch_rows=500_000, num_splits=8, target=TARGET)
    )


def _snapshot_too_short(dated: bool) -> Refusal:
    days = (datetime.date(2026, 1, 1), datetime.date(2026, 10, 27)) if dated else None
    start = datetime.datetime(2026, 11, 25, 3, tzinfo=UTC)

    def remedy(fraction: float) -> str:
        return snapshot.remedy("p", "d", "(default)", days, fraction, "tasks")

    def instead(fraction: float) -> str | None:
        return snapshot.chunked_backfill("p", "d", days, fraction, "tasks")

    horizon = snapshot.Horizon()
    return _caught(
        lambda: snapshot.check_fits(10_000_000, 2000, start, start, horizon, remedy, instead)
    )


def _lease_held() -> Refusal:
    now = datetime.datetime(2026, 11, 25, 3, tzinfo=UTC)
    lease = leases.Lease("tasks", "nightly_1", now, now + datetime.timedelta(minutes=10))
    return LeaseHeld(leases.refusal([lease], 0))


def _bad_setting(monkeypatch: pytest.MonkeyPatch) -> Refusal:
    monkeypatch.setenv(snapshot.ASSUMED_HORIZON_ENV, "an hour")
    return _caught(lambda: snapshot.assumed_horizon("no Admin API"))


#: Every refusal a run can meet, by the code that raises it.
RAISED = {
    "catch-up too long": _catch_up_too_long,
    "intraday without history": _intraday_refused,
    "over quota": _over_quota,
    "snapshot too short, dated": lambda: _snapshot_too_short(dated=True),
    "snapshot too short, whole history": lambda: _snapshot_too_short(dated=False),
    "lease held": _lease_held,
}


def test_every_refusal_keeps_its_exit_code() -> None:
    found = set(Refusal.__subclasses__())
    assert found == set(EXIT_CODES), "a new refusal needs its exit code pinned here"
    for kind, code in EXIT_CODES.items():
        assert "exit_code" in vars(kind), f"{kind.__name__} must set its own exit code"
        assert kind.exit_code == code, kind


def test_the_old_homes_still_name_the_refusals() -> None:
    """``except windows.CatchUpTooLong`` (or ``quotas.OverQuota``…) still catches them."""
    from pipelines.plan import windows

    assert windows.CatchUpTooLong is CatchUpTooLong
    assert windows.IntradayRefused is IntradayRefused
    assert quotas.OverQuota is OverQuota
    assert snapshot.SnapshotTooShort is SnapshotTooShort
    assert leases.LeaseHeld is LeaseHeld


@pytest.mark.parametrize("name", RAISED)
def test_a_refusal_is_one_line_and_names_its_command_instead(name: str) -> None:
    refusal = RAISED[name]()
    message = str(refusal)
    assert message and "\n" not in message
    if refusal.instead is not None:
        assert refusal.instead in message
        assert refusal.instead.startswith(f"{refusals.COMMAND} ")


@pytest.mark.parametrize("name", RAISED)
def test_every_backfill_a_refusal_names_is_firestore_to_bq_backfill(name: str) -> None:
    """One spelling, the installed command's: not ``python scripts/backfill.py``, not
    ``python -m devtools.backfill``, not a single dated sync run."""
    message = str(RAISED[name]())
    assert "scripts/backfill" not in message and "devtools" not in message
    if "backfill" not in message:
        return
    commands = re.findall(r"firestore-to-bq \S+", message)
    assert commands and all(c == "firestore-to-bq backfill" for c in commands), message


@pytest.mark.parametrize("name", ["over quota", "snapshot too short, dated"])
def test_the_backfill_named_instead_is_one_the_backfill_command_accepts(name: str) -> None:
    refusal = RAISED[name]()
    assert refusal.instead is not None
    argv = shlex.split(refusal.instead)
    assert argv[:2] == ["firestore-to-bq", "backfill"]
    args, extra = backfill.parse_args(argv[2:])
    assert args.start_date <= args.end_date and args.chunk_days >= 1
    assert extra[:4] == ["--project", "p", "--dataset", "d"]
    assert "--collections" in extra


def test_the_backfill_builder_leaves_the_chunk_length_to_the_backfill_unless_given() -> None:
    start, end = datetime.date(2026, 11, 1), datetime.date(2026, 11, 9)
    assert refusals.backfill_command(start, end, "--project p --dataset d") == (
        "firestore-to-bq backfill --start_date 2026-11-01 --end_date 2026-11-09 "
        "-- --project p --dataset d"
    )
    assert refusals.backfill_command(start, end, "--project p", 3) == (
        "firestore-to-bq backfill --start_date 2026-11-01 --end_date 2026-11-09 "
        "--chunk_days 3 -- --project p"
    )


def test_a_bad_assumed_horizon_is_refused_like_a_bad_argument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusal = _bad_setting(monkeypatch)
    assert isinstance(refusal, BadSetting) and refusal.exit_code == 2
    assert str(refusal) == f"${snapshot.ASSUMED_HORIZON_ENV} must be a number of seconds"


@pytest.mark.parametrize("name", RAISED)
def test_the_command_line_prints_a_refusal_as_one_line_and_exits_with_its_code(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = RAISED[name]()

    def refused(*_args, **_kwargs):
        raise refusal

    monkeypatch.setattr(firestore_to_bq, "run", refused)
    code = firestore_to_bq.main(["--project", "p", "--dataset", "d"])
    captured = capsys.readouterr()
    assert code == EXIT_CODES[type(refusal)]
    assert captured.out == ""
    assert captured.err.splitlines() == [f"error: {refusal}"]


def test_the_refusals_and_the_planners_import_neither_beam_nor_the_command_line() -> None:
    """``plan/`` and ``state/`` raise refusals without importing ``pipelines.cli``, and
    the family is Beam-free like the calendar it sits beside."""
    code = (
        "import sys\n"
        "import pipelines.refusals, pipelines.clock\n"
        "assert not [m for m in sys.modules if m.startswith('apache_beam')]\n"
        "import pipelines.plan.windows, pipelines.plan.quotas, pipelines.plan.snapshot\n"
        "import pipelines.state.leases\n"
        "print(sorted(m for m in sys.modules if m.startswith('pipelines.cli')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],  # this checkout's pipelines, not an install's
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]"
