"""Run the sync as the benchmark measures it, and read back what the run itself reported.

    python -m devtools.bench.sync_run OUT.json [--now ISO-TIME] [--clock-skew-seconds S]
        -- SYNC ARGUMENTS

is the sync's own ``main`` (same exit status, same one-line errors) that also
writes the summary its ``run`` returned to ``OUT.json``: a run that writes is
summarised from its ``_sync_runs`` row, a dry run from its Beam counters
(:mod:`pipelines.cli.summary`). ``--now`` is the moment the run acts as of (which
day is "yesterday"); the Firestore snapshot stays the real clock. The benchmark
reads these files and ``_sync_runs``, never the console text, so a change to
the printed summary cannot break it.

The summary also holds ``marks``: the wall-clock times (epoch seconds) at which
the run reached its phases: ``main`` (interpreter up, before importing the
sync), ``first_firestore_read`` (the reachability probe, the run's first
Firestore request) and ``pipeline_built`` (planning done, the Beam graph
constructed). ``--clock-skew-seconds`` replaces the planner's clock allowance
(``pipelines.plan.windows.CLOCK_SKEW``, 5 minutes) for this run only: the intraday
scenario compresses an hour into seconds and scales the allowance with it.

Every run is a subprocess timed here (:func:`run_sampled`: wall time, peak RSS as
the largest sum over its process tree, sampled every 50 ms), as is the fixed cost
of a new Python that imports the sync; :func:`machine` is where they ran.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import REPO_ROOT

SAMPLE_SECONDS = 0.05
PIPELINE_TIMEOUT_S = 3600.0
#: The root cause in a failed run's stderr (not the runner's "Traceback" wrapper lines).
ERROR_LINE = re.compile(r"^\s*(?:\w+\.)*\w+(?:Error|Exception): (?!Traceback).*$", re.MULTILINE)


@dataclass(frozen=True)
class Sampled:
    """One finished program: exit code, wall seconds, peak tree RSS, and its logs."""

    exit_code: int
    wall_seconds: float
    peak_rss_bytes: int
    stdout: Path
    stderr: Path


def tree_rss(proc: Any) -> int:
    """RSS of ``proc`` and all its descendants, in bytes (vanished ones count 0)."""
    import psutil

    total = 0
    with contextlib.suppress(psutil.Error):
        for member in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    return total


def run_sampled(cmd: list[str], env: dict[str, str], log_dir: Path, name: str) -> Sampled:
    """Run ``cmd`` with its output in ``log_dir/name.out|.err``, sampling its tree's RSS."""
    import psutil

    out_path, err_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        peak = 0
        try:
            watched = psutil.Process(proc.pid)
            while proc.poll() is None:
                peak = max(peak, tree_rss(watched))
                if time.perf_counter() - t0 > PIPELINE_TIMEOUT_S:
                    raise TimeoutError(f"{name} ran longer than {PIPELINE_TIMEOUT_S:.0f}s")
                time.sleep(SAMPLE_SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        wall = time.perf_counter() - t0
    return Sampled(proc.returncode, wall, peak, out_path, err_path)


def failure_cause(stderr: str) -> str:
    """The last root-cause line of a failed run's stderr, not the runner's wrapping."""
    causes = ERROR_LINE.findall(stderr) or stderr.strip().splitlines() or ["(no output)"]
    return causes[-1].strip()[:400]


def python_startup_seconds(env: dict[str, str]) -> float:
    """Interpreter start plus importing the entry point: a fixed cost of every run."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import pipelines.firestore_to_bq"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def machine() -> dict[str, Any]:
    """Where the figures were measured: cores, RAM, CPU model, Python."""

    def first(path: str, key: str) -> str | None:
        with contextlib.suppress(OSError):
            for name, _, value in (ln.partition(":") for ln in Path(path).read_text().splitlines()):
                if name.strip() == key:
                    return value.strip()
        return None

    mem_kb = first("/proc/meminfo", "MemTotal")
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "cpu_model": first("/proc/cpuinfo", "model name") or platform.processor() or None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@dataclass(frozen=True)
class SyncRun:
    """One sync run as a subprocess: how long, how much memory, and what it reported."""

    exit_code: int
    wall_seconds: float
    peak_rss_bytes: int
    #: :func:`summary_record` of the run's summary; None when it ended without one.
    summary: dict[str, Any] | None
    error: str | None
    #: Wall-clock time (epoch seconds) the process was launched, for the ``marks``.
    launched_at: float = 0.0

    @property
    def run_id(self) -> str | None:
        return self.summary["run_id"] if self.summary else None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.summary is not None and self.summary["reconciles"]

    def tables(self) -> dict[str, dict[str, Any]]:
        return self.summary["tables"] if self.summary else {}

    def documents_returned(self) -> int | None:
        return self.summary["documents_returned"] if self.summary else None

    def seconds_to(self, mark: str) -> float | None:
        """Seconds from launch to a phase of the run (see the module docstring)."""
        at = (self.summary or {}).get("marks", {}).get(mark)
        return None if at is None else at - self.launched_at

    def record(self) -> dict[str, Any]:
        """The run as the report holds it (a run that writes must report its id)."""
        ok = self.ok and self.run_id is not None
        return {
            "wall_seconds": round(self.wall_seconds, 3),
            "peak_rss_bytes": self.peak_rss_bytes,
            "exit_code": self.exit_code,
            "run_id": self.run_id,
            "documents_returned": self.documents_returned(),
            "error": None if ok else self.error or "the run reported no run id",
            "ok": ok,
        }


def summary_record(summary: Any) -> dict[str, Any]:
    """A :class:`pipelines.cli.summary.RunSummary` as JSON-ready data."""
    config = summary.config
    return {
        "run_id": config.run_id,
        "dry_run": config.dry_run,
        "reconciles": summary.reconciles,
        "documents_read": summary.documents_read,
        "documents_returned": summary.documents_returned,
        "tables": {t.table: dataclasses.asdict(t) for t in summary.tables},
    }


def command(
    out: Path, sync_args: Sequence[str], now: datetime.datetime | None = None,
    clock_skew: datetime.timedelta | None = None,
) -> list[str]:  # fmt: skip
    """The command line of one sync run writing its summary to ``out``."""
    when = ["--now", now.isoformat()] if now else []
    if clock_skew is not None:
        when += ["--clock-skew-seconds", repr(clock_skew.total_seconds())]
    return [sys.executable, "-m", "devtools.bench.sync_run", str(out), *when, "--", *sync_args]


def run(
    sync_args: Sequence[str], env: dict[str, str], log_dir: Path, name: str,
    now: datetime.datetime | None = None, clock_skew: datetime.timedelta | None = None,
) -> SyncRun:  # fmt: skip
    """Run the sync once, sampled (:func:`run_sampled`)."""
    out = log_dir / f"{name}.summary.json"
    out.unlink(missing_ok=True)
    launched = time.time()
    sampled = run_sampled(command(out, sync_args, now, clock_skew), env, log_dir, name)
    summary = json.loads(out.read_text()) if out.exists() else None
    done = SyncRun(
        sampled.exit_code, sampled.wall_seconds, sampled.peak_rss_bytes, summary, None, launched
    )
    if done.ok:
        return done
    return dataclasses.replace(done, error=failure_cause(sampled.stderr.read_text()))


def audit_entries(client: Any, dataset: str, run_id: str) -> dict[str, Any]:
    """The run's ``_sync_runs`` verdict: its status, snapshot and per-table entries
    (not the ``running`` row every run writes first), decoded by the verdict model
    and given back in its stored JSON form, which the reports quote."""
    from pipelines.state import run_log, verdict

    rows = run_log.verdict_rows(client, dataset, run_id)
    if len(rows) != 1:
        raise RuntimeError(f"{len(rows)} _sync_runs rows for run {run_id}")
    return {
        "status": verdict.run_status(rows[0]).value,
        "read_time": rows[0]["read_time"],
        "tables": {t.table: t.to_json() for t in verdict.entries(rows[0])},
    }


def main(argv: Sequence[str] | None = None) -> int:
    marks = {"main": time.time()}
    args = list(sys.argv[1:] if argv is None else argv)
    split = args.index("--") if "--" in args else len(args)
    parser = argparse.ArgumentParser(
        prog="python -m devtools.bench.sync_run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path, help="Where to write the run's summary as JSON.")
    parser.add_argument(
        "--now", type=datetime.datetime.fromisoformat, help="The moment the run acts as of."
    )
    parser.add_argument(
        "--clock-skew-seconds", type=float, help="The planner's clock allowance for this run."
    )
    options = parser.parse_args(args[:split])

    from pipelines import firestore_to_bq as sync
    from pipelines.plan import windows
    from pipelines.services import reachability

    if options.clock_skew_seconds is not None:
        windows.CLOCK_SKEW = datetime.timedelta(seconds=options.clock_skew_seconds)
    run_sync, check, build = sync.run, reachability.check, sync.build

    def checked(config: Any) -> None:
        marks.setdefault("first_firestore_read", time.time())
        check(config)

    def built(*a: Any, **kw: Any) -> None:
        build(*a, **kw)
        marks.setdefault("pipeline_built", time.time())

    def recorded(sync_argv: Sequence[str] | None = None, now: Any = None) -> Any:
        summary = run_sync(sync_argv, now=now or options.now)
        record = {**summary_record(summary), "marks": marks}
        options.out.write_text(json.dumps(record, default=str) + "\n")
        return summary

    # Wrapped, not changed: main's own error handling and exit status stay as they are.
    sync.run, sync.build, reachability.check = recorded, built, checked
    return sync.main(args[split + 1 :], now=options.now)


if __name__ == "__main__":
    sys.exit(main())
