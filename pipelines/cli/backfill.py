"""Backfill a long date range as a series of shorter sync runs, resumably.

    firestore-to-bq backfill --start_date 2025-01-01 --end_date 2025-12-31 \\
        [--chunk_days 7] [--dry_run] \\
        -- --project P --dataset D --runner DataflowRunner ...

(also ``python scripts/backfill.py …`` in a checkout).

One run per chunk of ``--chunk_days`` days (inclusive ends; the last chunk may
be shorter), one after another, so each run reads and replaces a bounded
amount of data and a failure costs one chunk, not the whole range. Each chunk
runs with ``--mode incremental`` (unless the arguments after ``--`` choose a
mode): it reads its own days by partition range, so the whole backfill reads
each document about once. When the chunks cover a table from its oldest
document, the first nightly after them reads one night, not the history: the
oldest chunk snapshot stands for its change watermark. The first
failing chunk stops the backfill. Arguments after ``--`` are passed to every
run unchanged; their ``--project`` and ``--dataset`` name the dataset whose
``_sync_runs`` says which chunks are done: a chunk is done when a succeeded run
covered its days and replaced every table the chunk syncs (``--collections``,
or all of ``schemas/``). So running the same command again, from any machine,
resumes after the last finished chunk, and against a dataset that lost its
tables (or never had them) it runs every chunk. ``--dry_run`` prints the chunk
commands and neither runs nor reads anything.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from google.api_core import exceptions as api_exceptions

from pipelines.cli.options import UsageError
from pipelines.cli.usage import Parser
from pipelines.clock import ONE_DAY
from pipelines.convert.table_spec import SchemaError, load_specs, select_specs
from pipelines.services import bigquery as bq
from pipelines.services import error_text, reachability
from pipelines.state import run_log
from pipelines.state.verdict import UnknownVerdict

MAX_CHUNK_DAYS = 3660
Chunk = tuple[datetime.date, datetime.date]


class ProgressUnknown(RuntimeError):
    """``_sync_runs`` could not be read; nothing has run. The message is one line."""


@dataclass(frozen=True)
class Target:
    """Where the chunk runs write, read from the arguments after ``--``."""

    project: str
    dataset: str
    location: str | None
    tables: tuple[str, ...]

    @property
    def audit_table(self) -> str:
        return f"{self.project}.{self.dataset}.{run_log.TABLE}"


def chunks(start: datetime.date, end: datetime.date, days: int) -> list[Chunk]:
    """``[start, end]`` cut into runs of ``days`` days; ends are inclusive."""
    if days < 1:
        raise ValueError("chunk length must be at least one day")
    out: list[Chunk] = []
    first = start
    while first <= end:
        last = min(first + datetime.timedelta(days=days - 1), end)
        out.append((first, last))
        first = last + ONE_DAY
    return out


def chunk_command(base: Sequence[str], chunk: Chunk, extra: Sequence[str]) -> list[str]:
    """One chunk's run. ``--mode incremental`` unless the arguments choose a mode:
    each chunk reads its own days by partition range, so the backfill reads each
    document once, not the whole collection per chunk (``--mode full`` would;
    only it dead-letters documents with no usable partition value, which the
    scheduled full run does instead)."""
    chosen = any(a == "--mode" or a.startswith("--mode=") for a in extra)
    return [
        *base,
        "--start_date",
        chunk[0].isoformat(),
        "--end_date",
        chunk[1].isoformat(),
        *([] if chosen else ["--mode", "incremental"]),
        *extra,
    ]


def covered(chunk: Chunk, windows: Sequence[Chunk]) -> bool:
    """Whether one of ``windows`` (inclusive ends) holds every day of ``chunk``."""
    return any(first <= chunk[0] and chunk[1] <= last for first, last in windows)


def target_of(extra: Sequence[str]) -> Target:
    """The dataset and tables of the chunk runs, parsed by the sync's own options.

    Beam's parser with ``SyncOptions`` reads the arguments after ``--``, so
    ``--project``, ``--dataset``, ``--collections``, ``--schemas_dir`` and
    ``--bq_location`` mean here exactly what they mean to each run.
    """
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

    from pipelines.cli.options import SyncOptions

    options = PipelineOptions(list(extra))
    sync = options.view_as(SyncOptions)
    project = options.view_as(GoogleCloudOptions).project
    if not (project and sync.dataset):
        raise UsageError(
            "the sync arguments after -- need --project and --dataset: that dataset's "
            f"{run_log.TABLE} says which chunks are done"
        )
    try:
        bq.check_project(project)
        bq.check_identifier(sync.dataset, "--dataset")
        specs = load_specs(sync.schemas_dir)
        wanted = [c.strip() for c in (sync.collections or "").split(",") if c.strip()]
        tables = select_specs(specs, wanted) if wanted else list(specs.values())
    except (bq.UnsafeIdentifier, SchemaError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--schemas_dir: cannot read {exc.filename or sync.schemas_dir}") from None
    return Target(project, sync.dataset, sync.bq_location, tuple(t.name for t in tables))


def finished_windows(target: Target, now: datetime.datetime) -> list[Chunk]:
    """Windows of the succeeded runs that replaced all of the target's tables.

    Probed first, so an unreachable BigQuery is one line within the probe's
    deadline rather than minutes of client retries.
    """
    try:
        reachability.check_bigquery(target.project, target.dataset, target.location)
        client = bq.make_client(target.project, target.location)
        since = now - run_log.HISTORY
        return run_log.succeeded_windows(client, target.dataset, since, target.tables)
    except reachability.Unreachable as exc:
        raise ProgressUnknown(str(exc)) from None
    except UnknownVerdict as exc:
        raise ProgressUnknown(f"cannot read {target.audit_table}: {exc}") from None
    except (api_exceptions.GoogleAPIError, OSError) as exc:
        reason = error_text.one_line(exc)
        raise ProgressUnknown(f"cannot read {target.audit_table}: {reason}") from None


def parse_date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form") from None


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options before ``--``; everything after it goes to each run as is.

    Raises :class:`UsageError` (one line) for a bad one, ``SystemExit(0)`` after ``--help``.
    """
    argv = list(argv)
    if "--" in argv:
        split = argv.index("--")
        own, extra = argv[:split], argv[split + 1 :]
    else:
        own, extra = argv, []
    parser = Parser(
        prog="firestore-to-bq backfill",
        description=(__doc__ or "").split("\n\n")[0],
        usage="%(prog)s --start_date D --end_date D [options] -- --project P --dataset D ...",
        epilog=(
            "What it reads: each chunk runs with --mode incremental (unless a --mode follows "
            "--) and reads its own days by partition range, so the backfill reads each "
            "document about once (tests/integration/test_onboarding.py: chunks of 36, 37 and 30 "
            "documents read 36, 37 and 30). The first nightly after chunks that cover a "
            "table from its oldest document reads one night: yesterday's documents and "
            "those changed since the oldest chunk's snapshot (there: 9, not the 108 of "
            "the history). Documents with no usable partition value are left to the "
            "monthly full run. Figures at scale: docs/performance.md#onboarding."
        ),
    )
    parser.add_argument("--start_date", type=parse_date, required=True, help="First day.")
    parser.add_argument("--end_date", type=parse_date, required=True, help="Last day, inclusive.")
    parser.add_argument("--chunk_days", type=int, default=7, help="Days per run (default 7).")
    parser.add_argument("--state_file", help=argparse.SUPPRESS)  # refused: see below
    parser.add_argument(
        "--command",
        help="Command that syncs one chunk (default: this Python, -m pipelines.firestore_to_bq).",
    )
    parser.add_argument("--dry_run", action="store_true", help="Print the chunk commands only.")
    args = parser.parse_args(own)
    if args.state_file is not None:
        raise UsageError(
            f"--state_file is gone: progress is read from {run_log.TABLE} of the dataset after --"
        )
    if args.end_date < args.start_date:
        raise UsageError(f"--end_date {args.end_date} is before --start_date {args.start_date}")
    if not 1 <= args.chunk_days <= MAX_CHUNK_DAYS:
        raise UsageError(f"--chunk_days must be between 1 and {MAX_CHUNK_DAYS}")
    for flag in ("--start_date", "--end_date", "--date"):
        if any(a == flag or a.startswith(flag + "=") for a in extra):
            raise UsageError(f"{flag} is set per chunk; do not pass it after --")
    args.command = (
        shlex.split(args.command)
        if args.command
        else [sys.executable, "-m", "pipelines.firestore_to_bq"]
    )
    return args, extra


def main(argv: Sequence[str] | None = None, now: datetime.datetime | None = None) -> int:
    """0 every chunk done, 2 bad arguments, 1 progress unreadable, else the failed run's code."""
    try:
        args, extra = parse_args(sys.argv[1:] if argv is None else argv)
        target = None if args.dry_run else target_of(extra)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help
        return int(done.code or 0)
    plan = chunks(args.start_date, args.end_date, args.chunk_days)

    if target is None:  # --dry_run
        for chunk in plan:
            print(shlex.join(chunk_command(args.command, chunk, extra)))
        return 0

    try:
        windows = finished_windows(target, now or datetime.datetime.now(datetime.UTC))
    except ProgressUnknown as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    done = [chunk for chunk in plan if covered(chunk, windows)]
    total = len(plan)
    if len(done) == total:
        print(f"all {total} chunks already done ({target.audit_table}); nothing to run")
        return 0
    for number, chunk in enumerate(plan, 1):
        label = f"chunk {number}/{total} {chunk[0]}..{chunk[1]}"
        if chunk in done:
            print(f"{label}: already done ({target.audit_table}), skipped", flush=True)
            continue
        command = chunk_command(args.command, chunk, extra)
        print(f"{label}: {shlex.join(command)}", flush=True)
        started = time.monotonic()
        result = subprocess.run(command)
        if result.returncode != 0:
            print(
                f"{label}: FAILED with exit code {result.returncode}; {len(done)} of "
                f"{total} chunks done. Fix the cause and run the same command to resume.",
                file=sys.stderr,
            )
            return result.returncode if result.returncode > 0 else 1
        done.append(chunk)
        print(f"{label}: done in {time.monotonic() - started:.0f}s", flush=True)
    print(f"backfill {args.start_date}..{args.end_date} complete: {total} chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
