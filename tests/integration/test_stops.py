"""Issue 23: how a run that stops gives back what it took, against the emulators.

A run stopped at any phase from its first lease to its last commit (SIGTERM from a
scheduler, a bad runner option, a process killed outright, BigQuery lost) leaves no
lease that outlives it by more than ``--lease_minutes``, no staging table once it
or the next run is done, and a ``_sync_runs`` row saying how it ended; a commit of
a run whose lease was taken over changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import signal
import subprocess
import sys
import time

import pytest
from google.api_core import exceptions as api_exceptions

from devtools import REPO_ROOT
from pipelines import firestore_to_bq
from pipelines.cli import status
from pipelines.services import bigquery as bq
from pipelines.state import leases, leftovers
from pipelines.state.verdict import RunStatus
from tests.support.documents import task
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset, verdicts

UTC = datetime.UTC


def _day(offset: int) -> str:
    return (datetime.datetime.now(UTC).date() + datetime.timedelta(days=offset)).isoformat()


def _seed(db) -> None:
    seed(db, {f"users/u{i % 3}/tasks/stop{i}": task(_day(-(i % 4) - 1), hour=8) for i in range(24)})


def _argv(dataset: str, *args: str) -> list[str]:
    return ["--project", PROJECT, "--dataset", dataset, "--collections", "tasks", *args]


def _staging(bq_client, dataset: str) -> list[str]:
    try:
        names = [t.table_id for t in bq_client.list_tables(dataset)]
    except api_exceptions.NotFound:
        return []
    return [name for name in names if name.startswith("_staging_")]


def _leases(bq_client, dataset: str) -> list[dict]:
    try:
        rows = table_rows(bq_client, dataset, leases.TABLE, keep_run_metadata=True)
    except api_exceptions.NotFound:
        return []
    return [r for r in rows if r["run_id"] is not None]


#: The phases of the launcher a signal can arrive in, as (object, attribute): the
#: signal is sent just after that call returns.
PHASES = {
    "leased": (leases.Holder, "take"),
    "settled": (leftovers, "settle"),
    "running_row": (firestore_to_bq, "write_audit_row"),
    "staging_created": (firestore_to_bq, "create_staging_tables"),
}


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_sigterm_just_after_a_launcher_phase_gives_everything_back_and_records_the_run(
    firestore_db, bq_client, monkeypatch, capsys, phase: str
) -> None:
    """Finding 1: SIGTERM in the second after the run leased its tables and created
    its staging tables left them, its leases (six hours) and no ``_sync_runs`` row."""
    _seed(firestore_db)
    dataset = unique_dataset(f"stop_{phase}")
    owner, name = PHASES[phase]
    original = getattr(owner, name)
    sent = []

    def then_terminate(*args, **kwargs):
        result = original(*args, **kwargs)
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(owner, name, then_terminate)
    code = firestore_to_bq.main(_argv(dataset, "--date", _day(-2), "--run_id", "stopped"))
    monkeypatch.setattr(owner, name, original)
    err = capsys.readouterr().err
    assert sent, "the phase was never reached: the test proved nothing"
    assert code == 130, err
    assert "Traceback" not in err
    assert _leases(bq_client, dataset) == [], "a stopped run kept its leases"
    assert _staging(bq_client, dataset) == []
    ended = [r for r in verdicts(bq_client, dataset) if r["run_id"] == "stopped"]
    assert [r["status"] for r in ended] == [RunStatus.INTERRUPTED], ended
    # The nightly right after it neither waits nor fails on a lease.
    assert firestore_to_bq.main(_argv(dataset, "--lease_wait_seconds", "0")) == 0


@pytest.mark.parametrize(
    ("runner", "expected"),
    [
        (["--runner", "FooRunner"], "error: --runner FooRunner: not a Beam runner"),
        (
            ["--runner", "DataflowRunner"],
            "error: --runner DataflowRunner: Missing GCS path option: temp_location",
        ),
    ],
    ids=["unknown", "dataflow-without-its-options"],
)
def test_a_bad_runner_is_refused_before_anything_is_leased(
    bq_client, capsys, runner: list[str], expected: str
) -> None:
    """Finding 2: a bad runner option printed a traceback after taking the leases."""
    dataset = unique_dataset("bad_runner")
    code = firestore_to_bq.main(_argv(dataset, "--date", _day(-2), *runner))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith(expected), err
    assert _leases(bq_client, dataset) == []


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_run_killed_outright_blocks_the_next_for_its_lease_minutes_only_and_is_recorded(
    emulators, firestore_db, bq_client
) -> None:
    """Finding 3: a run that cannot give its lease back (killed, or BigQuery lost)
    held it for six hours and left no trace in ``_sync_runs``. Now its lease lapses
    within ``--lease_minutes``, and the run that finds it lapsed writes its verdict,
    drops its staging tables and takes over."""
    _seed(firestore_db)
    dataset = unique_dataset("stop_killed")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.firestore_to_bq",
         *_argv(dataset, "--date", _day(-2), "--run_id", "killed", "--lease_minutes", "1")],
        cwd=REPO_ROOT, env={**os.environ, **emulators.env()}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(lambda: _staging(bq_client, dataset) or process.poll() is not None)
        killed_at = datetime.datetime.now(UTC)
        process.kill()
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    held = _leases(bq_client, dataset)
    assert [r["run_id"] for r in held] == ["killed"]
    assert held[0]["expires_at"] <= killed_at + datetime.timedelta(minutes=1, seconds=5)
    assert _staging(bq_client, dataset)
    # status shows the lapsing lease, its holder and when it lapses.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status.main(["--project", PROJECT, "--dataset", dataset])
    assert "  lease: held by run killed since " in printed.getvalue(), printed.getvalue()
    # A run within the minute is refused on the lease (nothing written) ...
    assert firestore_to_bq.main(_argv(dataset, "--lease_wait_seconds", "0")) == 1
    # ... and one after it settles what the dead run left, then runs.
    later = datetime.datetime.now(UTC) + datetime.timedelta(minutes=2)
    code = firestore_to_bq.main(
        _argv(dataset, "--date", _day(-2), "--lease_wait_seconds", "0"), now=later
    )
    assert code == 0
    assert _staging(bq_client, dataset) == []
    assert _leases(bq_client, dataset) == []
    ended = [r for r in verdicts(bq_client, dataset) if r["run_id"] == "killed"]
    assert [r["status"] for r in ended] == [RunStatus.INTERRUPTED], ended
    assert "lease lapsed" in ended[0]["error"], ended
    # Settling is idempotent: nothing is left to find.
    assert leases.lapsed(bq_client, dataset, later) == {}


def test_a_commit_of_a_run_whose_lease_was_taken_over_changes_nothing(
    firestore_db, bq_client
) -> None:
    """The fence: a run whose lease lapsed and was taken by a newer run (or was given
    back by ``status --release_leases``) cannot commit over the newer holder."""
    _seed(firestore_db)
    dataset = unique_dataset("stop_fence")
    firestore_to_bq.main(_argv(dataset, "--date", _day(-2)))
    before = table_rows(bq_client, dataset, "tasks")
    now = datetime.datetime.now(UTC)
    hour = datetime.timedelta(hours=1)
    bq.run_query(bq_client, leases.take_sql(PROJECT, dataset, "newer", ["tasks"], now, now + hour))

    def commit(run_id: str) -> None:
        fence = leases.fence_sql(PROJECT, dataset, run_id, "tasks")
        sql = bq.replace_days_sql(
            PROJECT, dataset, "tasks", "tasks", ["_document_path"], "created_at",
            [datetime.date.fromisoformat(_day(-2))], ["_document_path"], fence=fence,
        )  # fmt: skip
        bq.run_query(bq_client, sql)

    with pytest.raises(api_exceptions.BadRequest, match=leases.FENCED.split(":")[0]):
        commit("older")
    assert table_rows(bq_client, dataset, "tasks") == before
    commit("newer")  # the holder's own commit goes through (here: a no-op refill)


def test_the_heartbeat_renews_a_live_run_and_never_a_lease_given_back(bq_client) -> None:
    dataset = unique_dataset("stop_heartbeat")
    bq.ensure_dataset(bq_client, dataset, None)
    from pipelines.state.tables import definitions, ensure

    lease_table = next(t for t in definitions([]) if t.name == leases.TABLE)
    ensure(bq_client, dataset, lease_table)
    start = datetime.datetime.now(UTC)
    ticks = iter(start + datetime.timedelta(minutes=i) for i in range(1_000))
    holder = leases.Holder(
        bq_client, dataset, "alive", ["tasks"], datetime.timedelta(minutes=3), lambda: next(ticks)
    )
    holder.take(0)
    first = _leases(bq_client, dataset)[0]["expires_at"]
    holder.ttl = datetime.timedelta(seconds=0.6)  # beats every 0.2 s, renewing by the clock
    with holder.heartbeat():
        _wait_for(lambda: _leases(bq_client, dataset)[0]["expires_at"] > first, timeout=60)
    holder.release()
    holder.renew()  # after the release: renews nothing
    assert _leases(bq_client, dataset) == []
