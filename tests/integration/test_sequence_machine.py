"""The sequences users mix, explored by a state machine against the emulators.

Rules are what the app and its users do: the app writes (create, edit with
``updated_at`` = now, move to another day, hard delete, a malformed task and its
fix); people run the sync (the nightly, ``--intraday``, ``--date``, a dated range in either mode,
``--mode full``, ``--collections`` subsets, a chunked backfill); nights are missed
(the clock moves 1 to 3 days); and runs meet faults (BigQuery unreachable at the
start, lost mid-stage or mid-commit, Firestore lost mid-read), each through the
loopback fault proxy, and a real SIGTERM at every phase the launcher goes through:
after planning, leasing, the ``running`` row or staging-table creation, as the
pipeline starts, and as its first query, a staging upload, the first or second
commit, the verdict or the lease release leaves for the server.

Invariants after every run:

(a) a run that succeeded leaves every table it synced equal to a fresh full
    rebuild at its snapshot, over the days it is responsible for (every day up to
    yesterday for a run without dates, up to today for an ``--intraday`` run, whose
    rebuild acts as of tomorrow at the same snapshot, and up to today too for a
    nightly once an intraday run wrote today; its window for a dated run);
(b) a run that failed leaves each table as it was or replaced (never mixed), and
    its verdict, if it wrote one, claims no table it did not commit;
(c) every ``_run_id`` found in a table has a ``_sync_commits`` row saying that run
    replaced that table, and ``status`` names the newest such run and its day;
(d) no staging table of a run that recorded a verdict outlives the next run;
(e) no lease is held by a run whose process has ended beyond the lease's time to
    live, none at all by one that could reach BigQuery as it ended, and such a run
    that wrote its ``running`` row wrote a verdict.

Fixed seeds in CI (``derandomize``); ``F2BQ_MACHINE_EXAMPLES=20`` explores more
with random seeds. The same rules, with the services replaced by a model, run in
the unit tier (``tests/unit/plan/test_sequence_model.py``). ``F2BQ_MACHINE_TRACE=1``
prints each run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import os
import signal
import subprocess
import sys
from typing import Any

import apache_beam as beam
import pytest
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from devtools import REPO_ROOT
from pipelines import firestore_to_bq
from pipelines.cli import backfill
from pipelines.convert.table_spec import load_specs
from pipelines.plan.windows import wrote_today
from pipelines.services import bigquery as bq
from pipelines.services import reachability
from pipelines.state import leases, run_log
from pipelines.state.verdict import RunStatus, entries, is_verdict
from tests.support.fault_proxy import FaultProxy
from tests.support.sync_helpers import PROJECT, table_rows, unique_dataset
from tests.support.world import World

UTC = datetime.UTC
ONE_DAY = datetime.timedelta(days=1)
#: Hypothesis tries the simplest machine (no steps) first: 3 examples are 2 real ones.
EXAMPLES = int(os.environ.get("F2BQ_MACHINE_EXAMPLES", "3"))
STEPS = int(os.environ.get("F2BQ_MACHINE_STEPS", "6"))
TABLES = ("tasks", "user_interactions")
SPECS = load_specs()
PARTITION = {t: SPECS[t].partition_column for t in TABLES}

operation = st.one_of(
    st.tuples(st.just("create_task"), st.integers(0, 2), st.integers(-6, 0)),
    # Interactions are logged as they happen (a back-dated one that a same-day
    # delete cancels out is invisible to counts: see tests/unit/plan/test_sequence_model.py).
    st.tuples(st.just("create_interaction"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("edit_task"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("move_task"), st.integers(0, 50), st.integers(-6, 0)),
    st.tuples(st.just("delete"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("malformed_task"), st.integers(0, 2), st.integers(-6, 0)),
    st.tuples(st.just("fix_task"), st.integers(0, 50), st.just(0)),
)
RUNS = (
    "nightly", "nightly", "full", "date", "range_full", "range_incremental", "backfill",
    "history_backfill", "intraday", "intraday",
)  # fmt: skip
FAULTS = (
    None, None, None, "bq_start", "bq_stage", "bq_commit", "fs_read",
    "sigterm_planning", "sigterm_leased", "sigterm_running_row", "sigterm_staging_created",
    "sigterm_pipeline_start", "sigterm_reading", "sigterm_staging", "sigterm_commit",
    "sigterm_second_commit", "sigterm_verdict", "sigterm_release",
)  # fmt: skip
#: SIGTERM just after a launcher step returns: (object, attribute).
AFTER_STEP = {
    "sigterm_planning": (firestore_to_bq, "plan_run"),
    "sigterm_leased": (leases.Holder, "take"),
    "sigterm_running_row": (firestore_to_bq, "write_audit_row"),
    "sigterm_staging_created": (firestore_to_bq, "create_staging_tables"),
}
#: SIGTERM just before a step starts.
BEFORE_STEP = {"sigterm_pipeline_start": (beam.Pipeline, "run")}
#: SIGTERM as the n-th request holding these bytes leaves for a server (in flight):
#: (server, bytes, n).
IN_FLIGHT = {
    "sigterm_reading": ("firestore", b"RunQuery", 1),
    "sigterm_staging": ("bigquery", b"/upload/", 3),  # the running row is 2 requests
    "sigterm_commit": ("bigquery", b"BEGIN TRANSACTION", 1),
    "sigterm_second_commit": ("bigquery", b"BEGIN TRANSACTION", 2),
    "sigterm_verdict": ("bigquery", b"f2bq_audit_", 2),  # after the running row's
    "sigterm_release": ("bigquery", b"SET `run_id` = NULL", 1),
}
#: A lease outlives the process of the run holding it by at most its time to live.
LEASE_TTL = datetime.timedelta(minutes=leases.DEFAULT_TTL_MINUTES)


@dataclasses.dataclass
class Outcome:
    run_id: str
    kind: str
    tables: tuple[str, ...]
    code: int
    now: datetime.datetime
    days: tuple[datetime.date, ...] | None  # None: every day up to yesterday
    before: dict[str, list[dict[str, Any]]]
    fault: str | None = None


def _day_of(table: str, row: dict[str, Any]) -> datetime.date:
    return row[PARTITION[table]].astimezone(UTC).date()


class Sequences(RuleBasedStateMachine):
    def __init__(self, emulators, bq_client) -> None:
        super().__init__()
        from google.cloud import firestore

        emulators.reset_firestore()
        self.emulators, self.bq = emulators, bq_client
        self.world = World(firestore.Client(project=emulators.project))
        self.dataset = unique_dataset("machine")
        self.offset = datetime.timedelta(0)  # the simulated clock, ahead of the real one
        self.serial = 0
        self.outcome: Outcome | None = None

    @property
    def now(self) -> datetime.datetime:
        return datetime.datetime.now(UTC) + self.offset

    @property
    def yesterday(self) -> datetime.date:
        return self.now.date() - datetime.timedelta(days=1)

    @initialize(ops=st.lists(operation, min_size=2, max_size=6))
    def history(self, ops) -> None:
        """The app has been in use before the sync's first run."""
        for op in ops:
            self.world.apply(op, self.now.date())

    # -- one step: the app writes, nights may pass, somebody runs the sync -----------
    # One rule, not three: Hypothesis's swarm testing switches whole rules off per
    # example, and with the few examples CI affords it would often leave no runs.

    @rule(
        ops=st.lists(operation, max_size=4),
        nights=st.sampled_from([0, 0, 1, 1, 2, 3]),
        kind=st.sampled_from(RUNS),
        back=st.integers(1, 5),
        span=st.integers(0, 2),
        tables=st.sampled_from([TABLES, TABLES, ("tasks",), ("user_interactions",)]),
        fault=st.sampled_from(FAULTS),
        between=st.lists(operation, max_size=3),
    )
    def step(
        self, ops, nights: int, kind: str, back: int, span: int, tables, fault, between
    ) -> None:
        for op in ops:
            self.world.apply(op, self.now.date())
        self.offset += datetime.timedelta(days=nights)
        self.run(kind, back, span, tables, fault, between)

    def run(self, kind: str, back: int, span: int, tables, fault, between=()) -> None:
        self.serial += 1
        run_id = f"m{self.serial}"
        last = self.yesterday - datetime.timedelta(days=back - 1)
        first = last - datetime.timedelta(days=span)
        args = ["--collections", ",".join(tables), "--firestore_retry_timeout", "3"]
        # A lease left by a run that lost BigQuery blocks the next run for its time to
        # live: refuse at once rather than wait (exit 1, nothing written).
        args += ["--lease_wait_seconds", "0"]
        days: tuple[datetime.date, ...] | None = None
        if kind == "full":
            args += ["--mode", "full"]
        elif kind == "intraday":
            args += ["--intraday"]
        elif kind == "date":
            args += ["--date", last.isoformat()]
        elif kind.startswith("range"):
            args += ["--start_date", first.isoformat(), "--end_date", last.isoformat()]
            args += ["--mode", kind.removeprefix("range_")]
        if kind == "backfill":
            # Chunks are separate processes on the real clock: days before its yesterday.
            real_last = datetime.datetime.now(UTC).date() - datetime.timedelta(days=back)
            first, last, fault = real_last - datetime.timedelta(days=1), real_last, None
        if kind == "history_backfill":
            # The whole history (every document is at most 6 days before the simulated
            # day it was written, which is never before the real today), in chunks of
            # 3 days as backfill.py runs them, the app writing between the chunks; the
            # nightly after it starts from the chunks' oldest snapshot (issue 26).
            real_today = datetime.datetime.now(UTC).date()
            first, last = real_today - datetime.timedelta(days=7), real_today - ONE_DAY
            fault = None
        if kind not in ("nightly", "full", "intraday"):
            days = tuple(first + datetime.timedelta(days=i) for i in range((last - first).days + 1))
        before = {t: rows(self.bq, self.dataset, t) for t in TABLES}
        if kind == "backfill":
            code = self._backfill(first, last, tables)
        elif kind == "history_backfill":
            code = self._history_backfill(run_id, first, last, tables, between)
        else:
            code = self._sync(run_id, args, fault)
        self.outcome = Outcome(run_id, kind, tuple(tables), code, self.now, days, before, fault)
        if os.environ.get("F2BQ_MACHINE_TRACE"):
            print(f"machine: {run_id} {kind} {','.join(tables)} {fault} -> {code}", flush=True)
        assert code in (0, 1, 2, 130), code
        if code == 0:
            self._check_equals_a_full_rebuild()
        else:
            self._check_failed_run_left_no_mix()

    def _argv(self, run_id: str, args: list[str]) -> list[str]:
        return ["--project", PROJECT, "--dataset", self.dataset, "--run_id", run_id, *args]

    def _sync(self, run_id: str, args: list[str], fault: str | None) -> int:
        env: dict[str, str] = {}
        proxy = None
        if fault == "bq_start":
            proxy = FaultProxy(self.emulators.bigquery_port)
            proxy.close()  # a port nothing answers on any more
        elif fault == "bq_stage":  # the running row is 2 requests; then staging
            proxy = FaultProxy(self.emulators.bigquery_port, die_on=b"/upload/", die_at=3)
        elif fault == "bq_commit":
            proxy = FaultProxy(self.emulators.bigquery_port, die_on=b"BEGIN TRANSACTION")
        elif fault in IN_FLIGHT and IN_FLIGHT[fault][0] == "bigquery":
            proxy = FaultProxy(self.emulators.bigquery_port, on_send=_terminate_on(fault))
        if proxy is not None:
            env["BIGQUERY_EMULATOR_HOST"] = proxy.host
        if fault == "fs_read":
            proxy = FaultProxy(self.emulators.firestore_port, cut_every=3_000, max_cuts=1)
            proxy.on_cut = proxy.close
            env["FIRESTORE_EMULATOR_HOST"] = proxy.host
        elif fault in IN_FLIGHT and IN_FLIGHT[fault][0] == "firestore":
            proxy = FaultProxy(self.emulators.firestore_port, on_send=_terminate_on(fault))
            env["FIRESTORE_EMULATOR_HOST"] = proxy.host
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        patched = AFTER_STEP.get(fault) or BEFORE_STEP.get(fault)
        original = getattr(*patched) if patched else None
        if patched:
            setattr(*patched, _terminating(original, before=fault in BEFORE_STEP))
        try:
            quiet = io.StringIO()
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                return firestore_to_bq.main(self._argv(run_id, args), now=self.now)
        finally:
            if patched:
                setattr(*patched, original)
            if proxy is not None:
                proxy.close()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _history_backfill(
        self, run_id: str, first: datetime.date, last: datetime.date, tables, between
    ) -> int:
        """The chunks ``backfill.py`` would run, in process on the real clock, with the
        app's writes between them; the first failing chunk's code, else 0."""
        base = ["--project", PROJECT, "--dataset", self.dataset, "--collections",
                ",".join(tables), "--lease_wait_seconds", "0"]  # fmt: skip
        ops = list(between)
        for number, chunk in enumerate(backfill.chunks(first, last, 3)):
            argv = backfill.chunk_command([], chunk, [*base, "--run_id", f"{run_id}c{number}"])
            quiet = io.StringIO()
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                code = firestore_to_bq.main(argv)
            if code != 0:
                return code
            if ops:
                self.world.apply(ops.pop(0), self.now.date())
        return 0

    def _backfill(self, first: datetime.date, last: datetime.date, tables) -> int:
        done = subprocess.run(
            [sys.executable, "scripts/backfill.py", "--start_date", first.isoformat(),
             "--end_date", last.isoformat(), "--chunk_days", "1", "--",
             "--project", PROJECT, "--dataset", self.dataset, "--collections", ",".join(tables)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    # -- checks after a run -----------------------------------------------------------

    def _verdict(self, run_id: str) -> dict[str, Any] | None:
        rows = [r for r in audit_rows(self.bq, self.dataset) if r["run_id"] == run_id]
        final = [r for r in rows if is_verdict(r)]
        return final[0] if final else None

    def _check_equals_a_full_rebuild(self) -> None:
        """(a): the rows the run is responsible for equal a fresh full rebuild's."""
        out = self.outcome
        if out.kind in ("backfill", "history_backfill"):
            return  # its chunks are dated runs on the real clock; (b)-(d) still hold
        verdict = self._verdict(out.run_id)
        assert verdict is not None and verdict["status"] == RunStatus.SUCCEEDED, verdict
        # An intraday run answers for today too: its rebuild is a full run acting
        # as of tomorrow at the same snapshot. Any other run without dates answers
        # for the days up to yesterday, and for today too once an intraday run
        # wrote today's rows: today's rows equal Firestore as of the last run.
        today = out.now.date()
        states = run_log.table_states(self.bq, self.dataset, out.tables, out.now)
        last = {
            table: today
            if out.kind == "intraday" or (out.days is None and wrote_today(states[table], today))
            else today - datetime.timedelta(days=1)
            for table in out.tables
        }
        fresh = unique_dataset("machine_rebuild")
        code = firestore_to_bq.main(
            ["--project", PROJECT, "--dataset", fresh, "--collections", ",".join(out.tables),
             "--mode", "full", "--read_time", verdict["read_time"].isoformat()],
            now=out.now + datetime.timedelta(days=1),  # its rows through today
        )  # fmt: skip
        assert code == 0
        for table in out.tables:
            mine = table_rows(self.bq, self.dataset, table)
            theirs = table_rows(self.bq, fresh, table)
            if out.days is not None:
                mine = [r for r in mine if _day_of(table, r) in out.days]
                theirs = [r for r in theirs if _day_of(table, r) in out.days]
            else:
                mine = [r for r in mine if _day_of(table, r) <= last[table]]
                theirs = [r for r in theirs if _day_of(table, r) <= last[table]]
            assert mine == theirs, f"{table} after {out.kind} run {out.run_id}"

    def _check_failed_run_left_no_mix(self) -> None:
        """(b): each table as before, or replaced by this run (its commit is recorded)."""
        out = self.outcome
        landed = commits_by_run(self.bq, self.dataset).get(out.run_id, set())
        for table in TABLES:
            now = rows(self.bq, self.dataset, table)
            if table not in landed:
                assert now == out.before[table], f"{table} changed by failed run {out.run_id}"
        verdict = self._verdict(out.run_id)
        if verdict is not None:
            claimed = {t.table for t in entries(verdict) if t.replaced}
            assert claimed <= landed, (claimed, landed)

    @invariant()
    def audit_is_true(self) -> None:
        """(c) and (d), after every step."""
        if self.outcome is None:
            return
        runs = audit_rows(self.bq, self.dataset)
        if not runs:
            return  # no run has reached BigQuery yet
        landed = commits_by_run(self.bq, self.dataset)
        commits = rows(self.bq, self.dataset, "_sync_commits")
        for table in TABLES:
            held = rows(self.bq, self.dataset, table)
            strays = {r["_run_id"] for r in held} - {
                run for run, tables in landed.items() if table in tables
            }
            assert not strays, f"{table} holds rows of runs with no commit record: {strays}"
        # status: the newest run that replaced the table (or found nothing to replace)
        # and the newest day any commit replaced whole.
        states = run_log.table_states(self.bq, self.dataset, TABLES, self.now)
        by_start = sorted((r for r in runs if is_verdict(r)), key=lambda r: r["started_at"])
        for table in TABLES:
            expected = None
            for run in by_start:
                entry = {e.table: e for e in entries(run)}.get(table)
                if entry is not None and entry.status.replaced_ok:
                    expected = run["run_id"]
                elif entry is None and table in landed.get(run["run_id"], set()):
                    expected = run["run_id"]
            unfinished = [
                r["run_id"] for r in runs
                if not is_verdict(r) and table in landed.get(r["run_id"], set())
                and r["run_id"] not in {v["run_id"] for v in by_start}
            ]  # fmt: skip
            state = states[table]
            assert state.last_success_run_id in (expected, *unfinished), (table, state, expected)
            days = [c["newest_day"] for c in commits if c["table_name"] == table]
            days = [d for d in days if d is not None]
            assert state.newest_day == (max(days) if days else None), (table, state, days)
        finished = {r["run_id"] for r in runs if is_verdict(r)}
        # (e) no lease outlives the process of its run by more than its time to live;
        # a run that could reach BigQuery as it ended gave its leases back and
        # recorded how it ended.
        out = self.outcome
        for lease in rows(self.bq, self.dataset, leases.TABLE):
            if lease["run_id"] is None:
                continue
            assert lease["expires_at"] <= out.now + LEASE_TTL + LEASE_SLACK, lease
            assert out.fault in LOST_BIGQUERY or lease["run_id"] != out.run_id, (out, lease)
        started = {r["run_id"] for r in runs}
        if out.run_id in started and out.fault not in LOST_BIGQUERY:
            assert out.run_id in finished, f"run {out.run_id} ({out.fault}) recorded no verdict"
        for name in staging_tables(self.bq, self.dataset):
            owner = name.removeprefix("_staging_")
            assert not any(owner.startswith(f"{run}_") for run in finished), (
                f"{name}: staging of a finished run outlived the next run"
            )


#: Faults after which a run cannot give back its lease nor record its end: the next
#: run that finds the lease lapsed does both (``pipelines.state.leftovers``).
LOST_BIGQUERY = ("bq_start", "bq_stage", "bq_commit")
#: The lease is dated by the run's clock, which moves on while it runs.
LEASE_SLACK = datetime.timedelta(minutes=5)


def _terminate_on(fault: str):
    """A proxy hook sending this process SIGTERM as the request ``IN_FLIGHT`` names
    leaves (once)."""
    _, marker, nth = IN_FLIGHT[fault]
    seen = []

    def hook(data: bytes) -> None:
        if marker in data:
            seen.append(True)
            if len(seen) == nth:
                os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _terminating(original, before: bool):
    """``original`` with SIGTERM to this process (once) just before it starts or just
    after it returns."""
    sent = []

    def terminate() -> None:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    def step(*args, **kwargs):
        if before:
            terminate()
        result = original(*args, **kwargs)
        terminate()
        return result

    return step


def rows(client, dataset: str, table: str, keep_run_metadata: bool = True) -> list[dict]:
    """``table_rows``, or none before the first run has created the table."""
    try:
        return table_rows(client, dataset, table, keep_run_metadata=keep_run_metadata)
    except api_exceptions.NotFound:
        return []


def audit_rows(client, dataset: str) -> list[dict[str, Any]]:
    return rows(client, dataset, "_sync_runs")


def commits_by_run(client, dataset: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for commit in rows(client, dataset, "_sync_commits"):
        out.setdefault(commit["run_id"], set()).add(commit["table_name"])
    return out


def staging_tables(client, dataset: str) -> list[str]:
    try:
        names = [t.table_id for t in client.list_tables(dataset)]
    except api_exceptions.NotFound:
        return []
    return [name for name in names if name.startswith("_staging_")]


@pytest.fixture
def fast_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scaled-down waits for a lost server (the real ones: tests/integration/test_sequences.py)."""
    monkeypatch.setattr(reachability, "PROBE_DEADLINE", 2.0)
    monkeypatch.setattr(reachability, "PROBE_CALL_TIMEOUT", 2.0)
    monkeypatch.setattr(bq, "UPLOAD_RETRIES", 1)
    monkeypatch.setattr(bq, "API_RETRY", api_retry.Retry(deadline=3.0, initial=0.5))


def test_every_sequence_ends_in_a_full_rebuild_and_a_true_audit(
    emulators, bq_client, fast_failures
) -> None:
    run_state_machine_as_test(
        lambda: Sequences(emulators, bq_client),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=os.environ.get("F2BQ_MACHINE_EXAMPLES") is None,
            suppress_health_check=list(HealthCheck),
        ),
    )
