"""SIGTERM a sync run at a random moment, many times in a row, and check what each left.

    .venv/bin/python scripts/stop_trial.py [--runs 200] [--seed S] [--keep]
        [--state-dir DIR] [--max_delay SECONDS]

Issue 23 promised that every way a run ends, SIGTERM at any moment included,
gives back its leases, drops its staging tables and leaves a verdict in
``_sync_runs``. The tests stop a run at chosen phases; this trial stops it
where nobody chose: it starts its own emulators, seeds a few hundred tasks and
interactions over the last 10 days, runs a nightly (which creates the tables)
and a full run to the end, the second to measure how long a run takes, then N
times: picks a run (the nightly, ``--date``, a dated range of 1-5 days,
``--mode full``; all collections or one), starts it as a subprocess with
``--run_id stop<i>``, sends SIGTERM after a delay drawn uniformly from 0 to
1.2x that duration, waits for it to exit and checks:

* the exit code is 0, 1, 2 or 130 and stderr holds no ``Traceback``;
* no ``_sync_leases`` row has a ``run_id`` (no lease held, by anyone);
* no ``_staging_*`` table is left (by anyone);
* a run that took a lease (it wrote a ``_sync_runs`` row, or its run id is on a
  lease or a staging table) has a verdict row (a status other than ``running``);
* it exits within 3 minutes of its SIGTERM; one that does not is hung: it is
  sent SIGABRT, which makes it write every thread's stack to its log, then killed.

Every run shares one dataset, as production does, so each run meets whatever
the runs before it left; a leftover is cleared once it is reported, so one
failure does not fail every run after it. A run stopped before it leased writes
nothing; it is counted apart. So is a run whose SIGTERM came while the
interpreter was still starting, before ``main`` sets the sync's handler: the
signal's default action kills it (exit -15), harmless only because it had taken
nothing yet. The same exit after a lease (the signal landing after ``main``
gave the handler back, as the interpreter shuts down) is a failure: a
scheduler reads it as killed, whatever the run recorded.

``--seed`` makes the data, the runs and the delays the same again (where a
signal lands still varies with the machine's speed). The summary counts each
broken invariant; exit status 0 when every run passed, 1 otherwise.

Only the standard library and the project's own code are used.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from devtools import REPO_ROOT

UTC = datetime.UTC
#: The sync's own names, spelled out rather than imported: the trial checks the
#: code under test, so it does not borrow that code's idea of what to look for.
LEASES = "_sync_leases"
RUNS = "_sync_runs"
STAGING_PREFIX = "_staging_"
RUNNING = "running"
#: The sync's documented exit codes: done, failed, bad arguments, stopped.
ACCEPTED_EXIT_CODES = frozenset({0, 1, 2, 130})
#: Killed by SIGTERM's default action: the signal came before ``main`` installed
#: the sync's handler. Fine only for a run that had taken nothing.
KILLED_WHILE_STARTING = -signal.SIGTERM
KINDS = ("nightly", "date", "range", "full")
#: What a run can break, in the order the summary counts them: the three
#: invariants of issue 23 first, then how the process ended.
INVARIANTS = ("leases", "staging", "verdict", "exit code", "traceback", "hung")
#: The seeded collections, and how a run picks its ``--collections``: mostly both,
#: so most runs lease two tables; sometimes one, so leases differ between runs.
COLLECTIONS = ("tasks,interactions", "tasks,interactions", "tasks", "interactions")
#: Run before the trial, unstopped: the first creates the tables, the last is timed.
SETUP_RUNS = (
    ("stop0_setup", ("--collections", COLLECTIONS[0])),
    ("stop0", ("--mode", "full", "--collections", COLLECTIONS[0])),
)
SEED_DAYS = 10
SEED_USERS = 12
SEED_PER_USER_PER_DAY = 4
DELAY_FACTOR = 1.2
#: A stopped run probes BigQuery once (bounded at about a minute) before exiting;
#: three times that, then it counts as hung and is killed.
EXIT_TIMEOUT_S = 180.0
#: How long a hung run gets to write its stacks (SIGABRT) before it is killed.
DUMP_TIMEOUT_S = 10.0
#: The unstopped run that measures the duration must finish within this.
MEASURE_TIMEOUT_S = 900.0


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The trial's options; ``--seed`` defaults to a fresh random one (printed)."""
    parser = argparse.ArgumentParser(
        prog="scripts/stop_trial.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--runs", type=_positive, default=200, help="Runs to stop (default 200).")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Random seed of the data, the runs and the delays (default: a new one, printed).",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Leave the emulators running afterwards (with the dataset); print how to stop them.",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="Emulator state and run logs (default: a new temp dir)."
    )
    parser.add_argument(
        "--max_delay",
        type=float,
        default=None,
        help="Longest delay before SIGTERM, in seconds "
        f"(default: {DELAY_FACTOR}x the measured run).",
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


# --------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class Planned:
    """One run to stop: what it syncs and when it is signalled."""

    index: int
    kind: str
    label: str
    args: tuple[str, ...]
    #: Fraction of ``--max_delay`` after which SIGTERM is sent, in [0, 1).
    fraction: float

    @property
    def run_id(self) -> str:
        return f"stop{self.index}"


def plan(seed: int, index: int, yesterday: datetime.date) -> Planned:
    """Run ``index`` of the trial seeded ``seed``: its own random stream, so a run's
    kind and delay do not depend on how the runs before it went."""
    rng = random.Random(f"{seed}/{index}")
    kind = rng.choice(KINDS)
    collections_arg = rng.choice(COLLECTIONS)
    args: list[str] = []
    if kind == "nightly":
        label = "nightly"
    elif kind == "full":
        label = "full"
        args += ["--mode", "full"]
    elif kind == "date":
        day = yesterday - datetime.timedelta(days=rng.randrange(SEED_DAYS))
        label = f"date {day}"
        args += ["--date", day.isoformat()]
    else:
        length = rng.randint(1, 5)
        end = yesterday - datetime.timedelta(days=rng.randrange(SEED_DAYS - length + 1))
        start = end - datetime.timedelta(days=length - 1)
        label = f"range {start}..{end}"
        args += ["--start_date", start.isoformat(), "--end_date", end.isoformat()]
    if collections_arg != COLLECTIONS[0]:
        label += f" [{collections_arg}]"
    args += ["--collections", collections_arg]
    return Planned(index, kind, label, tuple(args), rng.random())


# --------------------------------------------------------------------------- checking


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one stopped run did and what the dataset held right after it exited."""

    run_id: str
    exit_code: int
    stderr: str
    #: ``(table_name, run_id)`` of every lease held, whoever holds it.
    held: tuple[tuple[str, str], ...]
    #: Every ``_staging_*`` table in the dataset, whoever created it.
    staging: tuple[str, ...]
    #: This run's ``_sync_runs`` statuses (``running`` included).
    statuses: tuple[str, ...]
    stdout: str = ""

    @property
    def had_finished(self) -> bool:
        """Whether ``main`` had returned: it prints the summary, or an ``error:`` line."""
        return bool(self.stdout.strip()) or "error: " in self.stderr


@dataclasses.dataclass(frozen=True)
class Checked:
    """The verdict of the trial on one run: whether it took a lease, and what is wrong."""

    leased: bool
    #: ``(invariant, detail)`` for each broken one (``INVARIANTS``).
    problems: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        return "; ".join(detail for _, detail in self.problems)


def owns_staging(run_id: str, table_name: str) -> bool:
    """Whether ``table_name`` is one of ``run_id``'s staging tables
    (``_staging_<run_id>_<table>``; ``stop1`` does not own ``stop10``'s)."""
    return table_name.startswith(f"{STAGING_PREFIX}{run_id}_")


def took_a_lease(observed: Observed) -> bool:
    """A run took a lease if it wrote any ``_sync_runs`` row (it writes none before
    leasing) or still has a trace in the leases or the staging tables."""
    return (
        bool(observed.statuses)
        or any(holder == observed.run_id for _, holder in observed.held)
        or any(owns_staging(observed.run_id, name) for name in observed.staging)
    )


def check(observed: Observed) -> Checked:
    """The trial's invariants on one run; pure, so it is tested without servers."""
    leased = took_a_lease(observed)
    problems = []
    if observed.held:
        listed = ", ".join(f"{table} by {holder}" for table, holder in observed.held)
        problems.append(("leases", f"lease(s) held: {listed}"))
    if observed.staging:
        problems.append(("staging", f"staging table(s) left: {', '.join(observed.staging)}"))
    if leased and not verdicts(observed.statuses):
        problems.append(("verdict", "took a lease but wrote no verdict row"))
    code = observed.exit_code
    if code == KILLED_WHILE_STARTING and leased:
        detail = f"exit code {code}: killed by SIGTERM's default action after taking a lease"
        if observed.had_finished:
            detail += " (after main returned: its output was complete)"
        problems.append(("exit code", detail))
    elif code not in ACCEPTED_EXIT_CODES and code != KILLED_WHILE_STARTING:
        problems.append(("exit code", f"exit code {code}"))
    if "Traceback" in observed.stderr:
        problems.append(("traceback", "a Traceback in stderr"))
    return Checked(leased, tuple(problems))


def verdicts(statuses: Iterable[str]) -> list[str]:
    """The statuses that say how a run ended (every run also writes ``running`` first)."""
    return [s for s in statuses if s != RUNNING]


def describe(
    planned: Planned, runs: int, signalled_at: float | None, exited_at: float, exit_code: int,
    observed: Observed, checked: Checked,
) -> str:  # fmt: skip
    """The one line printed per run."""
    if signalled_at is None:
        when = f"exited at {exited_at:.2f} s before its SIGTERM"
    else:
        when = f"SIGTERM at {signalled_at:.2f} s"
    ended = verdicts(observed.statuses)
    if ended:
        verdict = "verdict " + ", ".join(ended)
    elif checked.leased:
        verdict = "verdict NONE"
    elif exit_code == KILLED_WHILE_STARTING:
        verdict = "verdict none (killed while starting, before leasing)"
    else:
        verdict = "verdict none (stopped before leasing)"
    line = (
        f"stop {planned.index}/{runs}: {planned.label}, {when} -> exit {exit_code}; "
        f"leases {len(observed.held)}, staging {len(observed.staging)}, {verdict}"
    )
    if checked.problems:
        line += "  FAILED: " + checked.text()
    return line


# --------------------------------------------------------------------------- tally


@dataclasses.dataclass
class Tally:
    """The counts the summary reports."""

    runs: int = 0
    exit_codes: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    before_leasing: int = 0
    #: Of those, killed by SIGTERM's default action before the sync's handler was set.
    killed_while_starting: int = 0
    after_leasing: int = 0
    finished_before_signal: int = 0
    statuses: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    failures: list[str] = dataclasses.field(default_factory=list)
    broken: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: The longest wait from SIGTERM to exit, and whose: a stop should be prompt.
    slowest_exit: tuple[float, str] = (0.0, "")

    def add(self, observed: Observed, checked: Checked, ended: Ended, line: str) -> None:
        signalled = ended.signalled_at is not None
        if signalled and ended.exited_at - ended.signalled_at > self.slowest_exit[0]:
            self.slowest_exit = (ended.exited_at - ended.signalled_at, observed.run_id)
        self.runs += 1
        self.exit_codes[observed.exit_code] += 1
        if checked.leased:
            self.after_leasing += 1
        else:
            self.before_leasing += 1
            self.killed_while_starting += observed.exit_code == KILLED_WHILE_STARTING
        if not signalled:
            self.finished_before_signal += 1
        self.statuses.update(verdicts(observed.statuses))
        if checked.problems:
            self.failures.append(line)
            self.broken.update(invariant for invariant, _ in checked.problems)

    def lines(self, seed: int) -> list[str]:
        """The summary, one fact a line (docs/guarantees.md quotes them)."""
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(self.exit_codes.items()))
        ended = ", ".join(f"{status} {n}" for status, n in sorted(self.statuses.items()))
        broken = ", ".join(f"{invariant} {self.broken[invariant]}" for invariant in INVARIANTS)
        return [
            f"runs: {self.runs} (seed {seed}); {self.finished_before_signal} ended before "
            "their SIGTERM",
            f"exit codes: {codes}",
            f"stopped before leasing: {self.before_leasing} ({self.killed_while_starting} "
            f"killed while starting, exit {KILLED_WHILE_STARTING}); after leasing: "
            f"{self.after_leasing} (verdicts: {ended or 'none'})",
            f"slowest exit after SIGTERM: {self.slowest_exit[0]:.2f} s "
            f"({self.slowest_exit[1] or 'none'})",
            f"failures: {len(self.failures)} ({broken})",
        ]


# --------------------------------------------------------------------------- servers


def seed_firestore(project: str, seed: int, yesterday: datetime.date) -> int:
    """A few hundred tasks and interactions over the last ``SEED_DAYS`` days, the
    sample data's shapes; the other collections are left out to keep runs short."""
    from google.cloud import firestore

    from devtools import sample_data

    pairs = sample_data.documents(SEED_USERS, SEED_DAYS, yesterday, SEED_PER_USER_PER_DAY, seed)
    kept = ((path, data) for path, data in pairs if path.split("/")[2] in ("tasks", "interactions"))
    return sample_data.write(firestore.Client(project=project), kept)


def observe(client: Any, project: str, dataset: str, run_id: str, ended: Ended) -> Observed:
    """Read the leases, staging tables and this run's ``_sync_runs`` rows."""
    from google.api_core import exceptions as api_exceptions
    from google.cloud import bigquery

    def rows(sql: str, **params: str) -> list[Any]:
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(k, "STRING", v) for k, v in params.items()
            ]
        )
        try:
            return list(client.query(sql, job_config=config, timeout=60).result(timeout=120))
        except api_exceptions.NotFound:  # the run died before it created the table
            return []

    held = rows(
        f"SELECT table_name, run_id FROM `{project}.{dataset}.{LEASES}` "
        "WHERE run_id IS NOT NULL ORDER BY table_name"
    )
    try:
        names = sorted(t.table_id for t in client.list_tables(dataset, timeout=60))
    except api_exceptions.NotFound:
        names = []
    statuses = rows(
        f"SELECT status FROM `{project}.{dataset}.{RUNS}` WHERE run_id = @run_id "
        "ORDER BY status = 'running' DESC",
        run_id=run_id,
    )
    return Observed(
        run_id=run_id,
        exit_code=ended.exit_code,
        stderr=ended.stderr,
        held=tuple((r["table_name"], r["run_id"]) for r in held),
        staging=tuple(n for n in names if n.startswith(STAGING_PREFIX)),
        statuses=tuple(r["status"] for r in statuses),
        stdout=ended.stdout,
    )


def unfinished_runs(client: Any, project: str, dataset: str) -> list[str]:
    """Run ids with a ``running`` row and no verdict: the end-of-trial sweep, which
    also sees a verdict that an earlier check saw and that something later removed."""
    sql = (
        f"SELECT run_id FROM `{project}.{dataset}.{RUNS}` GROUP BY run_id "
        f"HAVING COUNTIF(status != '{RUNNING}') = 0 ORDER BY run_id"
    )
    return [r["run_id"] for r in client.query(sql, timeout=60).result(timeout=120)]


def clear_leftovers(client: Any, project: str, dataset: str, observed: Observed) -> None:
    """After a failure is reported, free its leases and drop its staging tables, so
    the next run is not refused on them (``--lease_wait_seconds 0``) and fails too."""
    if observed.held:
        sql = (
            f"UPDATE `{project}.{dataset}.{LEASES}` "
            "SET run_id = NULL, taken_at = NULL, expires_at = NULL WHERE run_id IS NOT NULL"
        )
        client.query(sql, timeout=60).result(timeout=120)
    for name in observed.staging:
        client.delete_table(f"{project}.{dataset}.{name}", not_found_ok=True, timeout=60)


# --------------------------------------------------------------------------- running


@dataclasses.dataclass(frozen=True)
class Ended:
    """How the process ended: exit code, when it was signalled and when it exited
    (seconds after launch), and its stderr."""

    exit_code: int
    signalled_at: float | None
    exited_at: float
    stderr: str
    stdout: str = ""
    hung: bool = False


def sync_command(project: str, dataset: str, run_id: str, args: Sequence[str]) -> list[str]:
    """The sync's own command line, as a scheduler would start it."""
    return [
        sys.executable, "-m", "pipelines.firestore_to_bq",
        "--project", project, "--dataset", dataset, "--run_id", run_id,
        "--lease_wait_seconds", "0", *args,
    ]  # fmt: skip


def run_and_stop(
    cmd: list[str], env: dict[str, str], log_dir: Path, name: str, delay: float | None,
    timeout: float = EXIT_TIMEOUT_S,
) -> Ended:  # fmt: skip
    """Start ``cmd``, SIGTERM it ``delay`` seconds after launch (never, if None) unless
    it has exited by then, and wait for it to exit; a run still alive ``timeout``
    seconds later is hung and is killed."""
    out_path, err_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        # Its own session: the trial's Ctrl-C does not reach it; SIGTERM is sent
        # to the process alone, as Cloud Run sends it to the container's process.
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        launched = time.monotonic()
        signalled_at = None
        hung = False
        try:
            if delay is not None:
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGTERM)
                    signalled_at = time.monotonic() - launched
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                hung = True
                # SIGABRT: faulthandler (PYTHONFAULTHANDLER, see ``trial``) writes
                # every thread's stack to its stderr, to show what it waits on.
                proc.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=DUMP_TIMEOUT_S)
        finally:
            if proc.poll() is None and not hung:  # the trial itself was stopped: stop it too
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=timeout)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        exited_at = time.monotonic() - launched
    return Ended(
        proc.returncode, signalled_at, exited_at, err_path.read_text(errors="replace"),
        out_path.read_text(errors="replace"), hung,
    )  # fmt: skip


def stderr_tail(text: str, lines: int = 6) -> str:
    """The last lines of a run's stderr, indented under its line."""
    tail = text.strip().splitlines()[-lines:] or ["(empty)"]
    return "\n".join(f"    | {line}" for line in tail)


def trial(args: argparse.Namespace, emu: Any, log_dir: Path) -> Tally:
    """Measure one run, then stop ``args.runs`` runs and check each; the tally."""
    from pipelines.services import bigquery as bq

    project = emu.project
    # PYTHONFAULTHANDLER: a run that hangs after SIGTERM dumps its threads' stacks
    # when it is then sent SIGABRT (``run_and_stop``); nothing else changes.
    env = {**os.environ, **emu.env(), "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    client = bq.make_client(project)
    today = datetime.datetime.now(UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    dataset = f"stop_trial_{args.seed}_{datetime.datetime.now(UTC):%H%M%S}"
    count = seed_firestore(project, args.seed, yesterday)
    print(f"seed {args.seed}: {count} tasks and interactions over {SEED_DAYS} days to "
          f"{yesterday}; dataset {dataset}; logs in {log_dir}", flush=True)  # fmt: skip

    # Two unstopped runs: the first nightly creates the dataset and its tables (a
    # cost no later run pays, so it is not the measure); a full run of both
    # collections, the longest kind the trial picks, is.
    for run_id, sync_args in SETUP_RUNS:
        done = run_and_stop(
            sync_command(project, dataset, run_id, sync_args), env, log_dir, run_id, None,
            timeout=MEASURE_TIMEOUT_S,
        )  # fmt: skip
        if done.exit_code != 0:
            raise SystemExit(
                f"the unstopped run {run_id} exited {done.exit_code}; "
                f"log {log_dir / run_id}.err:\n{stderr_tail(done.stderr)}"
            )
        print(f"{run_id}: {' '.join(sync_args)}, unstopped, took {done.exited_at:.2f} s",
              flush=True)  # fmt: skip
    max_delay = args.max_delay if args.max_delay is not None else DELAY_FACTOR * done.exited_at
    print(f"SIGTERM at a random moment in [0, {max_delay:.2f}) s after launch", flush=True)

    tally = Tally()
    for index in range(1, args.runs + 1):
        planned = plan(args.seed, index, yesterday)
        delay = planned.fraction * max_delay
        cmd = sync_command(project, dataset, planned.run_id, planned.args)
        ended = run_and_stop(cmd, env, log_dir, planned.run_id, delay)
        observed = observe(client, project, dataset, planned.run_id, ended)
        checked = check(observed)
        if ended.hung:
            hung = (
                "hung",
                f"still running {EXIT_TIMEOUT_S:.0f} s after SIGTERM (sent SIGABRT for its "
                f"stacks, then killed; see its log)",
            )
            checked = Checked(checked.leased, (hung, *checked.problems))
        line = describe(
            planned, args.runs, ended.signalled_at, ended.exited_at, ended.exit_code,
            observed, checked,
        )  # fmt: skip
        if ended.exited_at - (ended.signalled_at or 0.0) > 30:
            line += f" (exited {ended.exited_at - (ended.signalled_at or 0.0):.1f} s after it)"
        print(line, flush=True)
        tally.add(observed, checked, ended, line)
        if not checked.ok:
            print(f"    replay: seed {args.seed}, run {index}, delay {delay:.3f} s; "
                  f"{' '.join(cmd[2:])}", flush=True)  # fmt: skip
            print(f"    stderr ({log_dir / planned.run_id}.err):\n{stderr_tail(ended.stderr)}",
                  flush=True)  # fmt: skip
            clear_leftovers(client, project, dataset, observed)
    unfinished = unfinished_runs(client, project, dataset)
    if unfinished:
        tally.broken["verdict"] += len(unfinished)
        tally.failures.append(f"runs with a running row and no verdict: {', '.join(unfinished)}")
        print(f"FAILED: runs with a running row and no verdict at the end: {unfinished}")
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulators, run the trial, print the summary; 1 if any run failed."""
    args = parse_args(argv)
    from devtools import emulators

    own_dir = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="f2bq-stop-")) if own_dir else args.state_dir
    log_dir = state_dir / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    emu = emulators.start(state_dir)
    # The trial's own clients (make_client, Firestore) find the emulators the way
    # the sync does: by these variables.
    os.environ.update(emu.env())
    tally: Tally | None = None
    started = time.monotonic()
    try:
        tally = trial(args, emu, log_dir)
    finally:
        if args.keep:
            print("emulators left running (--keep); to use them:\n" + emu.export_lines(), end="")
            print(f"stop them with: {sys.executable} scripts/emulators.py down "
                  f"--state-dir {state_dir}")  # fmt: skip
        else:
            emu.stop()
            if own_dir and tally is not None and not tally.failures:
                shutil.rmtree(state_dir, ignore_errors=True)
            else:
                print(f"emulators stopped; run logs kept in {log_dir}")
    took = datetime.timedelta(seconds=round(time.monotonic() - started))
    print(f"\nsummary ({took}):")
    for line in tally.lines(args.seed):
        print(line)
    for failure in tally.failures:
        print(f"  {failure}")
    print(f"replay: .venv/bin/python scripts/stop_trial.py --runs {args.runs} --seed {args.seed}")
    return 1 if tally.failures else 0
