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
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.bench.process import failure_cause, run_sampled

if TYPE_CHECKING:  # the sync is imported once the run's "main" mark is taken
    from pipelines.state.verdict import RunStatus, TableVerdict


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
    """Run the sync once, sampled (:func:`devtools.bench.process.run_sampled`)."""
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


@dataclass(frozen=True)
class Audited:
    """A run's ``_sync_runs`` verdict as the benchmark reads it."""

    status: RunStatus
    read_time: datetime.datetime
    tables: dict[str, TableVerdict]

    @property
    def succeeded(self) -> bool:
        from pipelines.state.verdict import RunStatus

        return self.status is RunStatus.SUCCEEDED


def audit_entries(client: Any, dataset: str, run_id: str) -> Audited:
    """The run's ``_sync_runs`` verdict: its status, snapshot and per-table entries
    (not the ``running`` row every run writes first)."""
    from pipelines.state import run_log, verdict

    rows = run_log.verdict_rows(client, dataset, run_id)
    if len(rows) != 1:
        raise RuntimeError(f"{len(rows)} _sync_runs rows for run {run_id}")
    return Audited(
        status=verdict.run_status(rows[0]),
        read_time=rows[0]["read_time"],
        tables={t.table: t for t in verdict.entries(rows[0])},
    )


def iso(days: Iterable[datetime.date]) -> list[str]:
    """Days as the reports (JSON) spell them."""
    return [d.isoformat() for d in days]


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
