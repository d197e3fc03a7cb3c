#!/usr/bin/env python3
"""Prove the speed: the sync against a hand-made floor and a naive baseline, on the emulators.

    .venv/bin/python scripts/benchmark.py [--docs 20000] [--repeat 3] [--json bench-20k.json]
        [--workers in_memory,multi_threading:2,multi_processing:2] [--keep-data]
        [--profile DIR] [--scenario backfill|nightly|all]
        [--nightly-histories 14,90,365] [--nightly-per-day 200] [--verify_days 35]

Starts its own Firestore emulator and bqemulator (``scripts/emulators.py``) in a
fresh state dir, seeds ``--docs`` documents over the five collections (many
users, 14 days), then measures on that same data, ``--repeat`` times, and
reports the median of every figure:

floor
    The least work any sync must do: stream every document once
    (``collection_group(c).stream()``, one collection after the other), convert
    each with the product's own ``document_to_row`` and append each
    collection's rows to a fresh table with the real schema in ONE load job
    (``pipelines.bigquery.load_rows``). Creating the five tables is included.
pipeline
    ``python -m pipelines.firestore_to_bq`` backfilling the seeded window into
    an empty dataset on the DirectRunner (Beam's FnApiRunner), once per
    ``--workers`` configuration, as a subprocess; the wall time includes
    interpreter start-up and Beam's import. Peak RSS is the largest sum of the
    RSS of the process and all its children, sampled every 50 ms. The row
    reported is the recommended configuration: the fastest that worked, or,
    among those within 5% of it, the one with the smallest peak RSS.
naive
    What users write by hand: stream each collection group, convert each
    document, and stream rows in with the BigQuery client's
    ``insert_rows_json`` (``tabledata.insertAll``), one request per
    ``--naive-batch`` (100) documents. One request per document is measured
    on the first ``--naive-single-cap`` documents and extrapolated to
    ``--docs`` (the table says so): the batched run's wall time with its
    ``insertAll`` time replaced by ``--docs`` requests at the per-request time
    measured. Those first requests hit small tables, and bqemulator slows down
    as a table grows, so the figure errs low.

Firestore reads per document = the pipeline's own count of documents returned
by all its queries (its summary line ``firestore reads: N documents returned``)
/ documents in the window. Days to replace are planned from that same read
(late edits are documents whose Firestore ``update_time`` falls in the window),
so there are no other queries to count.

The backfill reads exactly the seeded documents, so it cannot show what a
nightly run costs: a one-day ``--dry_run`` of the last day is run too, and its
N / the documents of that day is reported beside it. Every run reads every
document of every collection at its snapshot, so that figure is about the
number of days of history held in Firestore (here ``DAYS``).

``--scenario nightly`` (or ``all``) measures the incremental nightly instead
(or as well). For each ``--nightly-histories`` length, on its own (Firestore
emptied, a fresh dataset): seed ``--nightly-per-day`` documents a day up to
yesterday (``updated_at`` = ``created_at``), run a first nightly (a full
rebuild, untimed); then the next night: one day's new documents on today
(the next run's "yesterday", times spread over the part of the day that has
passed), ``--nightly-edit-share`` of a day's documents edited among the older
ones of tables with a change field (``updated_at`` = now, 30 % of them moved to
another day), and the nightly, timed (a subprocess of the sync's own ``main``
with an injected "now"; the snapshot is the real clock). Reported per history:
documents needed (on the window's day, or changed since the watermark, each
once), Firestore documents returned (the summary line, and the sum of the
``_sync_runs`` row's ``documents_returned``) per needed document, count()
aggregations and their billed reads, rows staged, wall time, and the same
count queries replayed and timed as the plan runs them (the Firestore emulator
scans the collection for each). Then a separate night with the same
yesterday after ``--nightly-deletes`` hard deletes of interactions (no change
field) inside the verify window: the days the drift check rebuilt and the
documents it read. Every run's tables are checked against what Firestore
holds, day by day. ``nightly.reads_per_document`` is the worst history's
reads per needed document; with ``all``, the backfill's one-day dry run is
under ``one_day_full_run`` instead.

Caveat of the emulators, visible in the figures: bqemulator snapshots a table
on every ``insertAll``, so the naive baseline slows down as its tables grow,
which real BigQuery does not.

The printed table ends with the machine (cores, RAM, CPU model, Python) and the
exact command line that produced it; ``--json`` holds the same and every run.

Exit status: 0 when the reported rows each read and wrote every document and
both reads figures were printed (times are never judged), 1 otherwise; a configuration that fails is
flagged and left out of the recommendation. ``--keep-data`` leaves the
emulators and every written dataset in place and prints how to reach and stop
them. ``--profile DIR`` adds one untimed run of the recommended configuration under
py-spy (a dev tool: ``.venv/bin/pip install py-spy``) and prints its top costs.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import datetime
import itertools
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api_core import retry as api_retry

from devtools import REPO_ROOT, emulators, sample_data
from pipelines import bigquery as bq
from pipelines.convert import ConversionError, document_to_row
from pipelines.document import FirestoreDocument
from pipelines.table_spec import EXTRA_COLUMN, TableSpec, load_specs
from pipelines.tables import definition, ensure
from pipelines.transforms.read_incremental import COUNT_THREADS

UTC = datetime.UTC
DAYS = 14
SEED = 7
SAMPLE_SECONDS = 0.05
PIPELINE_TIMEOUT_S = 3600.0
DEFAULT_WORKERS = "in_memory,multi_threading:2,multi_processing:2"
#: Configurations this much slower than the fastest still compete on peak RSS.
RSS_TIE = 0.05
MODES = ("in_memory", "multi_threading", "multi_processing")
SUMMARY_ROW = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(ok|MISMATCH)\s*$")
#: The root cause in a failed run's stderr (not the runner's "Traceback" wrapper lines).
ERROR_LINE = re.compile(r"^\s*(?:\w+\.)*\w+(?:Error|Exception): (?!Traceback).*$", re.MULTILINE)
READS_LINE = re.compile(r"^firestore reads: (\d+) documents returned", re.MULTILINE)
PROFILE_RATE = 100
#: Targets of the "Prove the speed" issue; reported, never enforced.
TARGET_FLOOR_RATIO = 1.5
TARGET_NAIVE_SPEEDUP = 5.0
TARGET_READS_PER_DOC = 1.0


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """What was seeded: the window and how many documents each collection holds."""

    docs: int
    users: int
    days: int
    per_user_per_day: int
    start: datetime.date
    end: datetime.date
    per_collection: dict[str, int]
    seed_seconds: float


def seed(db: Any, n: int, end: datetime.date) -> Dataset:
    """Write exactly ``n`` sample documents over ``DAYS`` days ending at ``end``."""
    users = max(10, n // 200)
    per = max(1, math.ceil(n / (users * DAYS)))
    counts: collections.Counter[str] = collections.Counter()

    def counted() -> Iterator[tuple[str, dict[str, Any]]]:
        pairs = sample_data.documents(users, DAYS, end, per, SEED)
        for path, data in itertools.islice(pairs, n):
            counts[path.split("/")[2]] += 1
            yield path, data

    t0 = time.perf_counter()
    written = sample_data.write(db, counted())
    took = time.perf_counter() - t0
    if written != n:
        raise RuntimeError(f"seeded {written} documents, wanted {n}")
    start = end - datetime.timedelta(days=DAYS - 1)
    return Dataset(n, users, DAYS, per, start, end, dict(sorted(counts.items())), took)


def stream_collection(db: Any, spec: TableSpec) -> Iterator[Any]:
    """Every document of ``spec``'s collection: a plain stream, no ordering, no cursors."""
    if spec.layout == "per_user":
        return db.collection_group(spec.collection).stream()
    return db.collection(spec.collection).stream()


def as_document(spec: TableSpec, snapshot: Any) -> FirestoreDocument:
    """The pipeline's unit of work, built from a snapshot as ``stream_documents`` does."""
    updated = snapshot.update_time
    if updated is not None and not isinstance(updated, datetime.datetime):
        updated = updated.ToDatetime(tzinfo=UTC)  # a protobuf Timestamp
    return FirestoreDocument(
        table=spec.name,
        path=snapshot.reference.path,
        data=snapshot.to_dict() or {},
        update_time=updated,
    )


def create_tables(client: Any, dataset: str, specs: Iterable[TableSpec]) -> None:
    bq.ensure_dataset(client, dataset, None)
    for spec in specs:
        ensure(client, dataset, definition(spec))


def drop_dataset(client: Any, dataset: str) -> None:
    client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


# --------------------------------------------------------------------------- floor


def measure_floor(db: Any, client: Any, specs: list[TableSpec], dataset: str) -> dict[str, Any]:
    """Read everything once, convert, then one load job per table."""
    run_id, read_time = "bench_floor", datetime.datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    docs = {
        spec.name: [as_document(spec, s) for s in stream_collection(db, spec)] for spec in specs
    }
    t1 = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {}
    rejected = 0
    for spec in specs:
        rows[spec.name] = []
        for doc in docs[spec.name]:
            try:
                rows[spec.name].append(document_to_row(spec, doc, run_id, read_time))
            except ConversionError:
                rejected += 1
    t2 = time.perf_counter()
    create_tables(client, dataset, specs)
    loaded = sum(
        bq.load_rows(client, dataset, spec.name, spec.bigquery_schema(), rows[spec.name])
        for spec in specs
        if rows[spec.name]
    )
    t3 = time.perf_counter()
    read = sum(len(d) for d in docs.values())
    return {
        "wall_seconds": t3 - t0,
        "read_seconds": t1 - t0,
        "convert_seconds": t2 - t1,
        "load_seconds": t3 - t2,
        "documents_read": read,
        "rows_loaded": loaded,
        "rejected": rejected,
        "ok": loaded == read and rejected == 0,
    }


# --------------------------------------------------------------------------- naive


#: insertAll failures are bugs here, not load: fail within a minute, not the default ten.
INSERT_RETRY = api_retry.Retry(timeout=60.0)


def json_columns(spec: TableSpec) -> tuple[str, ...]:
    """Columns of type JSON, which ``insertAll`` takes as JSON text, not as objects."""
    return tuple(c.name for c in spec.columns if c.type == "JSON") + (EXTRA_COLUMN,)


def for_insert_all(row: dict[str, Any], json_cols: tuple[str, ...]) -> dict[str, Any]:
    for name in json_cols:
        if row.get(name) is not None:
            row[name] = json.dumps(row[name], ensure_ascii=False)
    return row


def _insert(client: Any, table: str, rows: list[dict[str, Any]]) -> int:
    """One ``insertAll`` request; returns the rows it rejected."""
    errors = client.insert_rows_json(table, rows, retry=INSERT_RETRY, timeout=30.0)
    return len(errors)


def measure_naive(
    db: Any, client: Any, specs: list[TableSpec], dataset: str, batch: int, cap: int | None = None
) -> dict[str, Any]:
    """Stream, convert and ``insert_rows_json`` ``batch`` rows per request.

    With ``cap`` only the first ``cap`` documents (spread over the tables) are
    sent, and the stream is closed there.
    """
    run_id, read_time = "bench_naive", datetime.datetime.now(UTC).isoformat()
    per_table = math.ceil(cap / len(specs)) if cap else None
    t0 = time.perf_counter()
    create_tables(client, dataset, specs)
    sent = failed = requests = 0
    inserting = 0.0

    def insert(table: str, rows: list[dict[str, Any]]) -> int:
        nonlocal inserting
        t = time.perf_counter()
        try:
            return _insert(client, table, rows)
        finally:
            inserting += time.perf_counter() - t

    for spec in specs:
        table = f"{client.project}.{dataset}.{spec.name}"
        json_cols = json_columns(spec)
        buffer: list[dict[str, Any]] = []
        snapshots = stream_collection(db, spec)
        for snapshot in itertools.islice(snapshots, per_table):
            doc = as_document(spec, snapshot)
            buffer.append(for_insert_all(document_to_row(spec, doc, run_id, read_time), json_cols))
            if len(buffer) >= batch:
                failed += insert(table, buffer)
                sent, requests, buffer = sent + len(buffer), requests + 1, []
        if buffer:
            failed += insert(table, buffer)
            sent, requests = sent + len(buffer), requests + 1
        with contextlib.suppress(Exception):
            snapshots.close()  # a capped stream: stop the server-side query too
    wall = time.perf_counter() - t0
    return {
        "wall_seconds": wall,
        "documents": sent,
        "requests": requests,
        "insert_seconds": inserting,
        "rows_rejected": failed,
        "ok": failed == 0 and sent > 0,
    }


# --------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class RunnerConfig:
    """One DirectRunner set-up: ``in_memory`` or ``multi_threading:N``/``multi_processing:N``."""

    mode: str
    workers: int = 1

    @property
    def label(self) -> str:
        return self.mode if self.mode == "in_memory" else f"{self.mode}:{self.workers}"

    @property
    def beam_args(self) -> list[str]:
        if self.mode == "in_memory" and self.workers == 1:
            return []  # Beam's own default
        return [
            "--direct_running_mode",
            self.mode,
            "--direct_num_workers",
            str(self.workers),
        ]

    @classmethod
    def parse(cls, text: str) -> RunnerConfig:
        text = text.strip()
        if text.isdigit():
            n = int(text)
            return cls("in_memory") if n == 1 else cls("multi_processing", n)
        mode, _, n = text.partition(":")
        workers = int(n) if n.isdigit() else 0 if n else 1
        if mode not in MODES or workers < 1 or (mode == "in_memory" and workers != 1):
            raise argparse.ArgumentTypeError(
                f"runner config {text!r}: use in_memory, multi_threading:N, multi_processing:N "
                "or a worker count"
            )
        return cls(mode, workers)


def parse_summary(stdout: str) -> dict[str, Any]:
    """Per-table figures, the reconcile line and the Firestore reads line (None if absent)."""
    tables: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        match = SUMMARY_ROW.match(line)
        if match:
            name, read, written, dead, outside, check = match.groups()
            tables[name] = {
                "read": int(read),
                "written": int(written),
                "dead": int(dead),
                "outside": int(outside),
                "check": check,
            }
    reads = READS_LINE.search(stdout)
    return {
        "tables": tables,
        "reconciled": "NOT reconciled" not in stdout and "reconciled" in stdout,
        "documents_returned": int(reads.group(1)) if reads else None,
    }


def tree_rss(proc: Any) -> int:
    """RSS of ``proc`` and all its descendants, in bytes (vanished ones count 0)."""
    import psutil

    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run_sampled(
    cmd: list[str], env: dict[str, str], log_dir: Path, name: str
) -> tuple[int, float, int, str, str]:
    """Run ``cmd``; return (exit code, wall seconds, peak tree RSS, stdout, stderr)."""
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
    return proc.returncode, wall, peak, out_path.read_text(), err_path.read_text()


def pipeline_cmd(project: str, dataset: str, data: Dataset, config: RunnerConfig) -> list[str]:
    """The backfill of the whole seeded window into ``dataset``."""
    return [
        sys.executable,
        "-m",
        "pipelines.firestore_to_bq",
        "--project", project,
        "--dataset", dataset,
        "--start_date", data.start.isoformat(),
        "--end_date", data.end.isoformat(),
        *config.beam_args,
    ]  # fmt: skip


def measure_nightly_reads(
    project: str, data: Dataset, env: dict[str, str], log_dir: Path
) -> dict[str, Any]:
    """Reads per in-window document of a nightly run: ``--date`` = the last day, dry run.

    The dry-run summary's ``written`` column is the rows of the replaced days,
    i.e. the documents in the window (no late edits: every seeded document was
    written after the window).
    """
    cmd = [
        sys.executable, "-m", "pipelines.firestore_to_bq", "--project", project,
        "--date", data.end.isoformat(), "--dry_run",
    ]  # fmt: skip
    code, wall, _, stdout, stderr = run_sampled(cmd, env, log_dir, "nightly-dry-run")
    summary = parse_summary(stdout)
    returned = summary["documents_returned"]
    in_window = sum(t["written"] for t in summary["tables"].values())
    ok = code == 0 and summary["reconciled"] and returned == data.docs and in_window > 0
    if not ok:
        log(f"nightly dry run failed (exit {code}): {failure_cause(stderr)}")
    return {
        "date": data.end.isoformat(),
        "wall_seconds": round(wall, 3),
        "documents_returned": returned,
        "documents_in_window": in_window,
        "reads_per_document": round(returned / in_window, 2) if returned and in_window else None,
        "ok": ok,
    }


def failure_cause(stderr: str) -> str:
    """The last root-cause line of a failed run's stderr, not the runner's wrapping."""
    causes = ERROR_LINE.findall(stderr) or stderr.strip().splitlines() or ["(no output)"]
    return causes[-1].strip()[:400]


def measure_pipeline(
    project: str, dataset: str, data: Dataset, config: RunnerConfig, env: dict[str, str],
    log_dir: Path, name: str,
) -> dict[str, Any]:  # fmt: skip
    code, wall, peak, stdout, stderr = run_sampled(
        pipeline_cmd(project, dataset, data, config), env, log_dir, name
    )
    summary = parse_summary(stdout)
    read = sum(t["read"] for t in summary["tables"].values())
    written = sum(t["written"] for t in summary["tables"].values())
    returned = summary["documents_returned"]
    ok = (
        code == 0
        and summary["reconciled"]
        and read == data.docs
        and written == data.docs
        and returned is not None
    )
    tail = None
    if not ok:
        tail = failure_cause(stderr)
        log(f"{name} failed (exit {code}, read {read}, written {written}): {tail}")
    return {
        "config": config.label,
        "wall_seconds": wall,
        "peak_rss_bytes": peak,
        "exit_code": code,
        "documents_read": read,
        "documents_returned": returned,
        "rows_written": written,
        "summary": summary,
        "error": tail,
        "ok": ok,
    }


def python_startup_seconds(env: dict[str, str]) -> float:
    """Interpreter start plus importing the entry point: a fixed cost of every run."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import pipelines.firestore_to_bq"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- profile


def profile_pipeline(
    project: str, dataset: str, data: Dataset, config: RunnerConfig, env: dict[str, str],
    out_dir: Path,
) -> Path:  # fmt: skip
    """One extra, untimed run under py-spy (all threads, idle included, subprocesses)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not py_spy:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "pipeline.collapsed"
    cmd = [
        py_spy, "record", "--subprocesses", "--idle", "--threads", "--rate", str(PROFILE_RATE),
        "--format", "raw", "--output", str(raw), "--",
        *pipeline_cmd(project, dataset, data, config),
    ]  # fmt: skip
    code, wall, _, _, _ = run_sampled(cmd, env, out_dir, "pipeline-profiled")
    if code != 0:
        raise RuntimeError(f"profiled pipeline run failed (exit {code}); see {out_dir}")
    report = summarize_profile(raw, wall)
    (out_dir / "pipeline-top.txt").write_text(report)
    print(report)
    return raw


#: A frame of one of the product's DoFns: the thread it is on runs the pipeline's work.
DOFN_FRAME = re.compile(r"Fn\.\w+ \(.*pipelines/transforms/")


def summarize_profile(raw: Path, wall: float, rate: int = PROFILE_RATE, top: int = 20) -> str:
    """Where the wall time of the work goes, from py-spy's collapsed stacks (idle included).

    The work threads are the ones that run the product's DoFns (the main thread
    on the in-memory runner, one thread per SDK worker otherwise); with idle
    frames kept, their samples are their timelines, so a function's inclusive
    share is the share of the work threads' time spent in it. When the work is
    on workers, the launcher's main thread (start-up, table preparation,
    waiting for the workers) is summarised on its own line.
    """
    threads: collections.Counter[str] = collections.Counter()
    in_dofns: collections.Counter[str] = collections.Counter()
    stacks: list[tuple[str, list[str], int]] = []
    main = None
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        roots = [f for f in frames if f.startswith(("process ", "thread "))]
        # A thread is known by its id: its name can change while it runs.
        thread = _thread_id(roots[-1]) if roots else "?"
        code = [f for f in frames if f not in roots]
        count = int(count_text)
        threads[thread] += count
        if thread.endswith("(MainThread)") and sum(r.startswith("process ") for r in roots) <= 1:
            main = thread  # the launcher's, not a worker process's
        if any(DOFN_FRAME.search(f) for f in code):
            in_dofns[thread] += count
        stacks.append((thread, code, count))
    if not stacks:
        return "profile: no samples\n"
    busiest = max(in_dofns.values(), default=0)
    work = {t for t, n in in_dofns.items() if n >= busiest / 5} or {threads.most_common(1)[0][0]}
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    launcher: collections.Counter[str] = collections.Counter()
    for thread, code, count in stacks:
        if thread == main and main not in work:
            launcher["all"] += count
            if any("_find_and_load" in f for f in code):
                launcher["imports"] += count
            elif any("wait_until_finish" in f or "run_pipeline" in f for f in code):
                launcher["pipeline"] += count
        if thread not in work:
            continue
        total += count
        if any("_find_and_load" in f for f in code):
            inclusive["(imports)"] += count
        for name in {_short_frame(f) for f in code if "(pipelines/" in f}:
            inclusive[name] += count
        if code:
            self_time[_short_frame(code[-1])] += count
    lines = [
        f"profile: {sum(threads.values())} samples at {rate}/s over {wall:.1f}s wall; "
        f"{len(work)} work thread(s) hold {total} ({total / rate:.1f}s): {', '.join(sorted(work))}",
        "samples per thread (idle included):",
        *(f"  {n / rate:6.1f}s  {t[:100]}" for t, n in threads.most_common(6)),
    ]
    if launcher:
        lines.append(
            f"launcher main thread: {launcher['all'] / rate:.1f}s = imports "
            f"{launcher['imports'] / rate:.1f}s + running the pipeline (waiting for the workers) "
            f"{launcher['pipeline'] / rate:.1f}s + the rest (options, graph, tables, summary) "
            f"{(launcher['all'] - launcher['imports'] - launcher['pipeline']) / rate:.1f}s"
        )
    lines += [
        "work threads, product functions and imports, inclusive (share of their time):",
        *(f"  {n / total:6.1%}  {n / rate:5.2f}s  {f}" for f, n in inclusive.most_common(top)),
        "work threads, top frames by self time (waits included):",
        *(f"  {n / total:6.1%}  {n / rate:5.2f}s  {f}" for f, n in self_time.most_common(top)),
    ]
    return "\n".join(lines) + "\n"


def _thread_id(root: str) -> str:
    """``thread (123): Name`` → ``thread 123 (Name)``; py-spy names a thread once it knows it."""
    ident, _, name = root.partition(": ")
    return f"thread {ident.removeprefix('thread (').rstrip(')')} ({name or '?'})"


def _short_frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` → ``func (file.py)``, so lines of a function merge."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(where.split('/')[-2:])})"


# --------------------------------------------------------------------------- report


@dataclass
class Results:
    """Every repeat's raw figures; medians are taken when reporting."""

    floor: list[dict[str, Any]] = field(default_factory=list)
    naive: list[dict[str, Any]] = field(default_factory=list)
    naive_single: list[dict[str, Any]] = field(default_factory=list)
    pipeline: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def row(name: str, docs: int, wall: float, floor: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "docs": docs,
        "wall_seconds": round(wall, 3),
        "docs_per_second": round(docs / wall, 1) if wall else None,
        "ratio_to_floor": round(wall / floor, 3) if floor else None,
        **extra,
    }


def machine() -> dict[str, Any]:
    """Where the figures were measured: cores, RAM, CPU model, Python."""

    def first(path: str, key: str) -> str | None:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                name, _, value = line.partition(":")
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


def recommend(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest configuration that worked; among those within ``RSS_TIE`` of it, the
    one with the smallest peak RSS (medians of a few runs do not separate closer times)."""
    candidates = [c for c in configs if c["ok"]] or configs
    fastest = min(c["wall_seconds"] for c in candidates)
    close = [c for c in candidates if c["wall_seconds"] <= fastest * (1 + RSS_TIE)]
    return min(close, key=lambda c: (c["peak_rss_bytes"], c["wall_seconds"]))


def build_report(
    data: Dataset, results: Results, args: argparse.Namespace, nightly: dict[str, Any],
    startup: float,
) -> dict[str, Any]:  # fmt: skip
    floor_wall = median_of(results.floor, "wall_seconds")
    configs = {
        label: {
            "config": label,
            "wall_seconds": round(median_of(runs, "wall_seconds"), 3),
            "peak_rss_bytes": int(median_of(runs, "peak_rss_bytes")),
            "ok": all(r["ok"] for r in runs),
            "errors": sorted({r["error"] for r in runs if r["error"]}),
        }
        for label, runs in results.pipeline.items()
    }
    best = recommend(list(configs.values()))
    best_runs = results.pipeline[best["config"]]
    naive_wall = median_of(results.naive, "wall_seconds")
    single_wall = median_of(results.naive_single, "wall_seconds")
    single_docs = int(median_of(results.naive_single, "documents"))
    # Read, convert and create tables as the batched run did; insert one row per request.
    per_request = median_of(results.naive_single, "insert_seconds") / single_docs
    single_extrapolated = (
        naive_wall - median_of(results.naive, "insert_seconds") + per_request * data.docs
    )

    returned = [r["documents_returned"] for r in best_runs if r["documents_returned"] is not None]
    documents_returned = int(statistics.median(returned)) if returned else None
    rows = [
        row("floor", data.docs, floor_wall, floor_wall,
            read_seconds=round(median_of(results.floor, "read_seconds"), 3),
            convert_seconds=round(median_of(results.floor, "convert_seconds"), 3),
            load_seconds=round(median_of(results.floor, "load_seconds"), 3)),
        row("pipeline", data.docs, best["wall_seconds"], floor_wall, config=best["config"],
            peak_rss_bytes=best["peak_rss_bytes"]),
        row("naive", data.docs, naive_wall, floor_wall, method="insert_rows_json",
            rows_per_request=args.naive_batch),
    ]  # fmt: skip
    per_doc = row(
        "naive_per_document",
        data.docs,
        single_extrapolated,
        floor_wall,
        method="insert_rows_json",
        rows_per_request=1,
        extrapolated=True,
        extrapolated_from_docs=single_docs,
        measured_seconds=round(single_wall, 3),
        seconds_per_request=round(per_request, 5),
    )
    # The table is valid when its rows and its reads figures are; a failed
    # alternative configuration is only flagged.
    valid = (
        best["ok"]
        and nightly["ok"]
        and all(r["ok"] for r in [*results.floor, *results.naive, *results.naive_single])
    )
    failed = [c["config"] for c in configs.values() if not c["ok"]]
    return {
        "docs": data.docs,
        "repeat": args.repeat,
        "statistic": "median",
        "command": args.command,
        "cwd": str(Path.cwd()),
        "machine": machine(),
        "seed": {
            "users": data.users,
            "days": data.days,
            "per_user_per_day": data.per_user_per_day,
            "window": [data.start.isoformat(), data.end.isoformat()],
            "per_collection": data.per_collection,
            "seed_seconds": round(data.seed_seconds, 2),
        },
        "rows": rows,
        "naive_per_document": per_doc,
        "pipeline_configs": list(configs.values()),
        "recommended_config": best["config"],
        "python_startup_seconds": round(startup, 3),
        "reads_per_document": (
            round(documents_returned / data.docs, 4) if documents_returned is not None else None
        ),
        "firestore_reads": {
            "documents_returned": documents_returned,
            "documents_in_window": data.docs,
            "source": "the pipeline's summary line 'firestore reads: N documents returned'",
        },
        "peak_rss_bytes": best["peak_rss_bytes"],
        "peak_rss_mb": round(best["peak_rss_bytes"] / 2**20, 1),
        "targets": {
            "pipeline_within_floor_ratio": TARGET_FLOOR_RATIO,
            "pipeline_floor_ratio": rows[1]["ratio_to_floor"],
            "speedup_vs_naive": round(naive_wall / best["wall_seconds"], 2),
            "speedup_vs_naive_per_document": round(single_extrapolated / best["wall_seconds"], 1),
            "speedup_target": TARGET_NAIVE_SPEEDUP,
            "reads_per_document_target": TARGET_READS_PER_DOC,
        },
        "nightly": nightly,
        "valid": valid,
        "failed_configs": failed,
        "runs": {
            "floor": results.floor,
            "naive": results.naive,
            "naive_per_document": results.naive_single,
            "pipeline": results.pipeline,
        },
    }


def render(report: dict[str, Any]) -> str:
    s = report["seed"]
    spread = ", ".join(f"{k} {v}" for k, v in s["per_collection"].items())
    per_doc = report["naive_per_document"]
    labels = {
        "floor": "floor (read + convert + 1 load job)",
        "pipeline": f"pipeline ({report['recommended_config']})",
        "naive": f"naive ({report['rows'][2]['rows_per_request']} rows/insertAll request)",
        "naive_per_document": (
            f"naive (1 row/request, EXTRAPOLATED from first {per_doc['extrapolated_from_docs']})"
        ),
    }
    width = max(len(v) for v in labels.values()) + 2
    lines = [
        f"benchmark: {report['docs']} documents ({spread}),",
        f"  {s['users']} users x {s['days']} days ({s['window'][0]}..{s['window'][1]}), "
        f"median of {report['repeat']} run(s)",
        "",
        f"{'':<{width}}{'docs':>8}{'wall s':>10}{'docs/s':>10}{'x floor':>9}",
    ]
    for r in [*report["rows"], per_doc]:
        lines.append(
            f"{labels[r['name']]:<{width}}{r['docs']:>8}{r['wall_seconds']:>10.2f}"
            f"{r['docs_per_second'] or 0:>10.0f}{r['ratio_to_floor'] or 0:>9.2f}"
        )
    floor = report["rows"][0]
    lines += [
        f"  floor = read {floor['read_seconds']:.2f}s + convert {floor['convert_seconds']:.2f}s "
        f"+ load {floor['load_seconds']:.2f}s (in this process); every pipeline run is a new "
        f"process: python + imports alone {report['python_startup_seconds']:.2f}s",
        f"  naive 1 row/request = naive {report['rows'][2]['rows_per_request']}/request minus "
        f"its insertAll time + {per_doc['docs']} x {per_doc['seconds_per_request'] * 1000:.1f} ms "
        f"(mean request time over the first {per_doc['extrapolated_from_docs']} documents)",
        "pipeline configurations (DirectRunner = FnApiRunner; median wall, median peak RSS):",
    ]
    for c in report["pipeline_configs"]:
        mark = "" if c["ok"] else "  FAILED: " + "; ".join(c["errors"] or ["see the run logs"])
        lines.append(
            f"  {c['config']:<22}{c['wall_seconds']:>8.2f}s  peak RSS "
            f"{c['peak_rss_bytes'] / 2**20:>7.1f} MB{mark}"
        )
    fr = report["firestore_reads"]
    rpd = report["reads_per_document"]
    lines.append(
        f"Firestore reads per document, backfill window: "
        f"{'n/a' if rpd is None else f'{rpd:.2f}'} "
        f"(= {fr['documents_returned']} documents returned / {fr['documents_in_window']} "
        "in the window)"
    )
    n = report.get("one_day_full_run") or report["nightly"]
    lines += [
        f"Firestore reads per document, nightly (--date {n['date']}, dry run): "
        f"{n['reads_per_document']} (= {n['documents_returned']} / {n['documents_in_window']} "
        "documents of that day)",
        f"  every run reads every document of every collection at its snapshot, so a one-day "
        f"run costs about the days of history held ({s['days']} here) reads per document",
        f"peak RSS of the pipeline ({report['recommended_config']}, process tree) at "
        f"{report['docs']} documents: {report['peak_rss_mb']:.1f} MB",
    ]
    t = report["targets"]
    lines.append(
        f"targets: pipeline {t['pipeline_floor_ratio']:.2f}x floor "
        f"(target <= {t['pipeline_within_floor_ratio']}); "
        f"{t['speedup_vs_naive']:.1f}x faster than naive "
        f"({t['speedup_vs_naive_per_document']:.0f}x than 1/request; target >= "
        f"{t['speedup_target']}); backfill reads/doc {'n/a' if rpd is None else f'{rpd:.2f}'} "
        f"(target {t['reads_per_document_target']:.2f})"
    )
    m = report["machine"]
    lines += [
        f"machine: {m['nproc']} CPUs (nproc), {m['ram_gib']} GiB RAM (MemTotal), "
        f"{m['cpu_model']}, Python {m['python']}",
        f"command (in {report['cwd']}): {report['command']}",
    ]
    if report["failed_configs"]:
        lines.append(
            f"FAILED configurations (not recommended): {', '.join(report['failed_configs'])}"
        )
    if not report["valid"]:
        lines.append("INVALID: a reported run did not read and write every document")
    return "\n".join(lines)


# --------------------------------------------------------------------------- nightly


#: Runs the sync's own ``main`` with an injected "now" (which day is yesterday);
#: the Firestore snapshot stays the real clock (``pipelines.options.resolve``).
NIGHTLY_RUNNER = (
    "import datetime, sys\n"
    "from pipelines import firestore_to_bq as m\n"
    "now = datetime.datetime.fromisoformat(sys.argv[1])\n"
    "run = m.run\n"
    "m.run = lambda argv=None: run(argv, now=now)\n"
    "sys.exit(m.main(sys.argv[2:]))\n"
)
RUN_ID_LINE = re.compile(r"^run (\S+): window", re.MULTILINE)
DEFAULT_HISTORIES = "14,90,365"
TARGET_NIGHTLY_READS = 1.10
TARGET_NIGHTLY_WALL_RATIO = 1.5
#: Share of the edited documents that also move to another day.
MOVED_SHARE = 0.3
#: Firestore bills a count() aggregation one read per this many documents, at least one.
COUNT_DOCS_PER_READ = 1000


@dataclass
class Doc:
    """One seeded document, as the benchmark knows it (to count what a run needs)."""

    path: str
    spec: TableSpec
    day: datetime.date
    at: datetime.datetime


@dataclass
class History:
    """What is in Firestore for one nightly measurement."""

    days: int
    per_day: int
    end: datetime.date  # the last day of the seeded history (the first nightly's yesterday)
    docs: dict[str, Doc]
    seed_seconds: float = 0.0

    def per_table_day(self) -> dict[str, collections.Counter[str]]:
        out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for d in self.docs.values():
            out[d.spec.name][d.day.isoformat()] += 1
        return out


def day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=UTC)


def spec_by_collection(specs: Iterable[TableSpec]) -> dict[str, TableSpec]:
    return {s.collection: s for s in specs}


def partition_field(spec: TableSpec) -> str:
    return spec.partition.source[0]


def change_field(spec: TableSpec) -> str | None:
    return spec.column(spec.change_field).source[0] if spec.change_field else None


def users_and_per(per_day: int) -> tuple[int, int]:
    """``users x per_user_per_day == per_day`` (sample_data writes exactly that many a day)."""
    per = 5 if per_day % 5 == 0 else 1
    return per_day // per, per


def write_parallel(db: Any, pairs: Iterable[tuple[str, dict[str, Any]]], threads: int = 4) -> int:
    """Batched writes (500 per commit, Firestore's limit), a few commits in flight."""
    from concurrent.futures import ThreadPoolExecutor

    def commit(chunk: list[tuple[str, dict[str, Any]]]) -> int:
        batch = db.batch()
        for path, data in chunk:
            batch.set(db.document(path), data)
        batch.commit()
        return len(chunk)

    it = iter(pairs)
    chunks = iter(lambda: list(itertools.islice(it, 500)), [])
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(commit, chunks))


def seed_history(
    db: Any, specs: list[TableSpec], days: int, per_day: int, end: datetime.date
) -> History:
    """``per_day`` documents on each of ``days`` days ending at ``end``; ``updated_at`` =
    ``created_at`` (nothing edited since it was written)."""
    users, per = users_and_per(per_day)
    by_collection = spec_by_collection(specs)
    history = History(days, per_day, end, {})

    def recorded() -> Iterator[tuple[str, dict[str, Any]]]:
        for path, data in sample_data.documents(users, days, end, per, SEED):
            spec = by_collection[path.split("/")[2]]
            at = data[partition_field(spec)]
            history.docs[path] = Doc(path, spec, at.date(), at)
            yield path, data

    t0 = time.perf_counter()
    written = write_parallel(db, recorded())
    history.seed_seconds = time.perf_counter() - t0
    if written != days * per_day:
        raise RuntimeError(f"seeded {written} documents, wanted {days * per_day}")
    return history


def add_new_day(db: Any, specs: list[TableSpec], history: History, day: datetime.date) -> set[str]:
    """One day's new documents on ``day`` (today, for the next night's "yesterday").

    Their times are spread over the part of ``day`` that has passed (never after
    the clock), ``updated_at`` = ``created_at`` as an app writes a new document:
    those written after the last run's snapshot are what the change query finds,
    the earlier ones what the day's range read finds.
    """
    users, per = users_and_per(history.per_day)
    by_collection = spec_by_collection(specs)
    origin = day_start(day)
    elapsed = max(datetime.timedelta(seconds=60), datetime.datetime.now(UTC) - origin)
    scale = min(1.0, (elapsed - datetime.timedelta(seconds=5)) / datetime.timedelta(days=1))
    new: set[str] = set()
    pairs = []
    for path, data in sample_data.documents(users, 1, day, per, SEED + history.days):
        spec = by_collection[path.split("/")[2]]
        field_name = partition_field(spec)
        at = origin + (data[field_name] - origin) * scale
        data[field_name] = at
        if change_field(spec):
            data[change_field(spec)] = at
        history.docs[path] = Doc(path, spec, at.date(), at)
        new.add(path)
        pairs.append((path, data))
    write_parallel(db, pairs)
    return new


#: A field each table with a change field gets a new value in when edited.
EDIT_FIELD = {"tasks": "description", "projects": "description", "routines": "name"}


def edit_old_documents(
    db: Any, history: History, count: int, rng: Any
) -> tuple[set[str], list[str]]:
    """Edit ``count`` documents of the history (tables with a change field), ``updated_at``
    = now; a share of them also move to another day of the history."""
    candidates = sorted(
        p for p, d in history.docs.items() if d.spec.change_field and d.day <= history.end
    )
    chosen = rng.sample(candidates, min(count, len(candidates)))
    moved = chosen[: math.ceil(len(chosen) * MOVED_SHARE)] if history.days > 1 else []
    batch = db.batch()
    for path in chosen:
        doc = history.docs[path]
        now = datetime.datetime.now(UTC)
        update: dict[str, Any] = {
            change_field(doc.spec): now,
            EDIT_FIELD.get(doc.spec.collection, "description"): f"edited {now:%H:%M:%S}",
        }
        if path in moved:
            offset = rng.randrange(1, history.days)
            new_day = history.end - datetime.timedelta(
                days=((history.end - doc.day).days + offset) % history.days
            )
            at = day_start(new_day) + (doc.at - day_start(doc.day))
            update[partition_field(doc.spec)] = at
            history.docs[path] = Doc(path, doc.spec, new_day, at)
        batch.update(db.document(path), update)
    batch.commit()
    return set(chosen), moved


def delete_in_verify_window(
    db: Any, history: History, yesterday: datetime.date, verify_days: int, count: int, rng: Any
) -> list[Doc]:
    """Hard-delete ``count`` documents of a table without a change field, one per day,
    on days the next run's drift check covers."""
    first = yesterday - datetime.timedelta(days=verify_days - 1)
    by_day: dict[datetime.date, list[str]] = collections.defaultdict(list)
    for path, d in history.docs.items():
        if not d.spec.change_field and d.spec.collection == "interactions":
            if first <= d.day < yesterday:
                by_day[d.day].append(path)
    days = rng.sample(sorted(by_day), min(count, len(by_day)))
    deleted = [history.docs.pop(rng.choice(sorted(by_day[day]))) for day in days]
    batch = db.batch()
    for doc in deleted:
        batch.delete(db.document(doc.path))
    batch.commit()
    return deleted


def run_nightly(
    project: str, dataset: str, now: datetime.datetime, env: dict[str, str], log_dir: Path,
    name: str, extra: list[str],
) -> dict[str, Any]:  # fmt: skip
    """One run without dates (the nightly) as a subprocess, acting as of ``now``."""
    cmd = [
        sys.executable, "-c", NIGHTLY_RUNNER, now.isoformat(),
        "--project", project, "--dataset", dataset, *extra,
    ]  # fmt: skip
    code, wall, peak, stdout, stderr = run_sampled(cmd, env, log_dir, name)
    summary = parse_summary(stdout)
    run_id = RUN_ID_LINE.search(stdout)
    ok = code == 0 and summary["reconciled"] and run_id is not None
    error = None if ok else failure_cause(stderr)
    if error:
        log(f"{name} failed (exit {code}): {error}")
    return {
        "wall_seconds": round(wall, 3),
        "peak_rss_bytes": peak,
        "exit_code": code,
        "run_id": run_id.group(1) if run_id else None,
        "documents_returned": summary["documents_returned"],
        "summary": summary,
        "error": error,
        "ok": ok,
    }


def audit_entries(client: Any, dataset: str, run_id: str) -> dict[str, Any]:
    """The run's ``_sync_runs`` row: its status, snapshot and per-table entries."""
    from google.cloud import bigquery

    job = bq.run_query(
        client,
        "SELECT status, read_time, tables FROM "
        f"{bq.table_sql(client.project, dataset, '_sync_runs')} WHERE run_id = @run_id "
        "AND status != 'running'",  # the verdict, not the row written at the start
        query_parameters=[bigquery.ScalarQueryParameter("run_id", "STRING", run_id)],
    )
    rows = [dict(r) for r in job.result()]
    if len(rows) != 1:
        raise RuntimeError(f"{len(rows)} _sync_runs rows for run {run_id}")
    tables = rows[0]["tables"]
    if isinstance(tables, str):
        tables = json.loads(tables)
    return {
        "status": rows[0]["status"],
        "read_time": rows[0]["read_time"],
        "tables": {t["table"]: t for t in tables},
    }


def rows_per_table_day(client: Any, dataset: str, specs: list[TableSpec]) -> dict[str, dict]:
    out = {}
    for spec in specs:
        sql = (
            f"SELECT CAST(DATE({spec.partition_column}) AS STRING) AS day, COUNT(*) AS n "
            f"FROM {bq.table_sql(client.project, dataset, spec.name)} GROUP BY day"
        )
        out[spec.name] = {r["day"]: r["n"] for r in bq.run_query(client, sql).result()}
    return out


def expected_rows(history: History, specs: list[TableSpec]) -> dict[str, dict[str, int]]:
    """Rows per table and day a full rebuild would give: Firestore as the benchmark wrote it."""
    per = history.per_table_day()
    return {s.name: dict(per.get(s.name, {})) for s in specs}


def replay_counts(
    project: str,
    specs: list[TableSpec],
    windows: dict[str, list[datetime.date]],
    verify: list[datetime.date],
    watermark: datetime.datetime | None,
    read_time: datetime.datetime,
) -> dict[str, Any]:
    """The run's count() aggregations again, timed, with the plan's concurrency.

    The same queries the plan runs (``pipelines.read_plan.plan_incremental``):
    per window day of a table with a change field, the stretch from the
    watermark to the day's end; per verified day, the whole day.
    """
    from pipelines import firestore as fs
    from pipelines.read_plan import day_bounds

    client = fs.make_client(project)
    retry = fs.read_retry(120.0)
    counted, reads, queries = 0, 0, 0
    t0 = time.perf_counter()
    for spec in specs:
        field_name = partition_field(spec)
        ranges = []
        tracked = spec.change_field and watermark is not None
        for day in windows.get(spec.name, []):
            lo, hi = day_bounds(day)
            if tracked and watermark < hi:
                ranges.append((max(lo, watermark), hi))  # is the day covered by changes?
                if lo < watermark:
                    ranges.append((lo, watermark))  # sizing the read of the rest
            else:
                ranges.append((lo, hi))  # sizing the day's read
        ranges += [day_bounds(day) for day in verify if day not in windows.get(spec.name, [])]
        changes = 1 if tracked else 0  # the change query is counted to size it
        def count(span, spec=spec, field_name=field_name):
            return fs.count_range(client, spec, field_name, *span, read_time, retry)

        # As the plan runs them: a table at a time, COUNT_THREADS in flight.
        with concurrent.futures.ThreadPoolExecutor(COUNT_THREADS) as pool:
            for n in pool.map(count, ranges + [(watermark, None)] * changes):
                counted += n
                reads += max(1, math.ceil(n / COUNT_DOCS_PER_READ))
                queries += 1
    return {
        "queries": queries,
        "billed_reads": reads,
        "documents_counted": counted,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def replay_reads(
    project: str,
    specs: list[TableSpec],
    day: datetime.date,
    watermark: datetime.datetime,
    read_time: datetime.datetime,
    parts: int = 8,
) -> dict[str, Any]:
    """The run's document queries again (no drift day), one after the other, timed.

    As the pipeline cuts them (by their counts, at most ``--num_splits`` 8
    slices): the change query from the watermark, and the window day's range
    read, for a table with a change field only the stretch before the watermark
    (the count showed the rest covered).
    """
    from pipelines import firestore as fs
    from pipelines.read_plan import change_ranges, day_bounds, slices_for, time_slices

    client = fs.make_client(project)
    retry = fs.read_retry(120.0)

    def sized(spec: TableSpec, field_name: str, a, b) -> int:
        """Slices as the plan cuts them, from a count (not timed)."""
        return slices_for(fs.count_range(client, spec, field_name, a, b, read_time, retry), parts)

    planned = []
    for spec in specs:
        lo, hi = day_bounds(day)
        field_name = partition_field(spec)
        if spec.change_field:
            slices = sized(spec, change_field(spec), watermark, None)
            planned += [
                (spec, r.field, r.start, r.end)
                for r in change_ranges(spec.name, change_field(spec), watermark, read_time, slices)
            ]
            if lo < watermark < hi:
                slices = sized(spec, field_name, lo, watermark)
                planned += [(spec, field_name, a, b) for a, b in time_slices(lo, watermark, slices)]
        else:
            slices = sized(spec, field_name, lo, hi)
            planned += [(spec, field_name, a, b) for a, b in time_slices(lo, hi, slices)]
    queries = documents = 0
    t0 = time.perf_counter()
    for spec, field_name, a, b in planned:
        query = fs.field_range_query(client, spec, field_name, a, b)
        documents += sum(1 for _ in fs.stream_documents(query, spec.name, read_time, retry))
        queries += 1
    return {
        "queries": queries,
        "documents": documents,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def measure_history(
    args: argparse.Namespace, emu: Any, db: Any, client: Any, specs: list[TableSpec],
    env: dict[str, str], log_dir: Path, days: int, today: datetime.date,
) -> dict[str, Any]:  # fmt: skip
    """Seed ``days`` of history, a first nightly (untimed), then the next night (timed),
    and a night of hard deletes (timed apart)."""
    import random

    from pipelines.windows import CLOCK_SKEW

    rng = random.Random(SEED * 1000 + days)
    project = emu.project
    dataset = f"bench_nightly_{days}d"
    drop_dataset(client, dataset)
    emu.reset_firestore()
    extra = ["--verify_days", str(args.verify_days)]
    yesterday = today - datetime.timedelta(days=1)
    log(f"nightly {days}d: seeding {days} x {args.nightly_per_day} documents")
    history = seed_history(db, specs, days, args.nightly_per_day, yesterday)
    log(f"nightly {days}d: seeded {len(history.docs)} in {history.seed_seconds:.1f}s")
    # The clock's "now" is at most this; an injected "now" later the same day
    # keeps every run's yesterday fixed even if the benchmark crosses midnight.
    night = [
        day_start(today + datetime.timedelta(days=i)) + datetime.timedelta(hours=23, minutes=59)
        for i in range(2)
    ]

    first = run_nightly(project, dataset, night[0], env, log_dir, f"nightly-{days}d-first", extra)
    result: dict[str, Any] = {
        "history_days": days,
        "documents_seeded": len(history.docs),
        "seed_seconds": round(history.seed_seconds, 2),
        "first_run": {k: first[k] for k in ("wall_seconds", "ok", "error")},
    }
    if not first["ok"]:
        return {**result, "ok": False}
    first_audit = audit_entries(client, dataset, first["run_id"])
    watermark = first_audit["read_time"] - CLOCK_SKEW

    # The next night: yesterday's new documents, and edits of older ones.
    new = add_new_day(db, specs, history, today)
    edits = max(1, round(args.nightly_per_day * args.nightly_edit_share))
    edited, moved = edit_old_documents(db, history, edits, rng)
    changed = {p for p, d in history.docs.items() if p in edited or (
        d.spec.change_field and p in new and d.at >= watermark)}  # fmt: skip
    in_window = {p for p, d in history.docs.items() if d.day == today}
    needed = len(in_window | changed)
    log(f"nightly {days}d: +{len(new)} new, {len(edited)} edited ({len(moved)} moved); "
        f"needed {needed}")  # fmt: skip
    second = run_nightly(project, dataset, night[1], env, log_dir, f"nightly-{days}d", extra)
    result["run"] = second
    if not second["ok"]:
        return {**result, "ok": False}
    audit = audit_entries(client, dataset, second["run_id"])
    tables = audit["tables"]
    returned_audit = sum(t["documents_returned"] for t in tables.values())
    read_audit = sum(t["documents_read"] for t in tables.values())
    count_queries = sum(t["count_queries"] for t in tables.values())
    # The drift check's days: the --verify_days up to yesterday (= today here), less the window.
    verify = [today - datetime.timedelta(days=i) for i in range(args.verify_days - 1, 0, -1)]
    replay = replay_counts(
        project, specs, {s.name: [today] for s in specs}, verify, watermark, audit["read_time"]
    )
    reads = replay_reads(project, specs, today, watermark, audit["read_time"])
    held = rows_per_table_day(client, dataset, specs)
    expected = expected_rows(history, specs)
    returned = second["documents_returned"]
    result.update(
        documents_in_window=len(in_window),
        documents_changed=len(changed),
        documents_new=len(new),
        documents_edited=len(edited),
        documents_moved=len(moved),
        documents_needed=needed,
        documents_returned=returned,
        documents_returned_audit=returned_audit,
        documents_read_audit=read_audit,
        reads_per_needed=round(returned / needed, 4) if returned is not None else None,
        reads_per_needed_audit=round(returned_audit / needed, 4),
        count_queries=count_queries,
        count_reads=replay["billed_reads"],
        count_replay=replay,
        read_replay=reads,
        rows_staged=sum(t["rows_written"] for t in tables.values()),
        wall_seconds=second["wall_seconds"],
        modes=sorted({t["mode"] for t in tables.values()}),
        drift_days={n: t["drift_days"] for n, t in tables.items() if t["drift_days"]},
        tables={n: {k: t.get(k) for k in ("mode", "status", "documents_read", "documents_returned",
                                           "count_queries", "late_edits", "drift_days",
                                           "replaced_days", "rows_written")}
                for n, t in tables.items()},
        tables_equal_firestore=held == expected,
    )  # fmt: skip
    ok = (
        audit["status"] == "succeeded"
        and result["modes"] == ["incremental"]
        and held == expected
        and read_audit == needed
        and returned == returned_audit
        and count_queries == replay["queries"]
    )
    if not ok:
        log(f"nightly {days}d: not as expected: status {audit['status']}, modes "
            f"{result['modes']}, tables equal {held == expected}, read {read_audit} vs needed "
            f"{needed}, returned {returned} vs audit {returned_audit}, counts {count_queries} "
            f"vs replayed {replay['queries']}")  # fmt: skip

    # A separate night of hard deletes in a table without a change field: the
    # same yesterday (nothing new to replace), so what it reads is the drift check's.
    if args.nightly_deletes:
        deleted = delete_in_verify_window(
            db, history, today, args.verify_days, args.nightly_deletes, rng
        )
        third = run_nightly(project, dataset, night[1], env, log_dir, f"nightly-{days}d-deletes",
                            extra)  # fmt: skip
        deletes: dict[str, Any] = {"deleted": len(deleted), "run": third, "ok": third["ok"]}
        if third["ok"]:
            after = audit_entries(client, dataset, third["run_id"])
            spec = next(s for s in specs if s.collection == "interactions")
            entry = after["tables"][spec.name]
            days_hit = sorted({d.day.isoformat() for d in deleted})
            left = history.per_table_day()[spec.name]
            expected_read = sum(left[d] for d in days_hit)
            held = rows_per_table_day(client, dataset, specs)
            expected = expected_rows(history, specs)
            deletes.update(
                table=spec.name,
                drift_days=entry["drift_days"],
                drift_rebuild_read=entry["documents_returned"],
                drift_rebuild_expected=expected_read,
                documents_returned=third["documents_returned"],
                count_queries=sum(t["count_queries"] for t in after["tables"].values()),
                wall_seconds=third["wall_seconds"],
                tables_equal_firestore=held == expected,
            )
            deletes["ok"] = (
                after["status"] == "succeeded"
                and entry["drift_days"] == days_hit
                and entry["documents_returned"] == expected_read
                and held == expected
            )
            if not deletes["ok"]:
                log(f"nightly {days}d deletes: not as expected: status {after['status']}, drift "
                    f"{entry['drift_days']} vs {days_hit}, read {entry['documents_returned']} vs "
                    f"{expected_read}, tables equal {held == expected}")  # fmt: skip
        result["deletes"] = deletes
        ok = ok and deletes["ok"]
    result["ok"] = ok
    if not args.keep_data:
        drop_dataset(client, dataset)
    return result


def measure_nightly(
    args: argparse.Namespace, emu: Any, env: dict[str, str], log_dir: Path
) -> dict[str, Any]:
    """Every history length of the nightly scenario, one after the other, each on its own."""
    from google.cloud import firestore

    db = firestore.Client(project=emu.project)
    client = bq.make_client(emu.project)
    specs = list(load_specs().values())
    today = datetime.datetime.now(UTC).date()
    warmup = None
    if args.nightly_warmup:
        # The emulators' first runs are slower (JIT, caches): an untimed, unreported
        # 2-day round first, so that the shortest history is not the one paying for it.
        log("nightly: warm-up round (2 days, not reported)")
        quiet = argparse.Namespace(**{**vars(args), "nightly_deletes": 0})
        warm = measure_history(quiet, emu, db, client, specs, env, log_dir, 2, today)
        warmup = {"history_days": 2, "wall_seconds": warm.get("wall_seconds"), "ok": warm["ok"]}
    histories = [
        measure_history(args, emu, db, client, specs, env, log_dir, days, today)
        for days in args.nightly_histories
    ]
    emu.reset_firestore()
    measured = [h for h in histories if h.get("reads_per_needed") is not None]
    walls = {h["history_days"]: h["wall_seconds"] for h in measured}
    shortest, longest = min(args.nightly_histories), max(args.nightly_histories)
    ratio = (
        round(walls[longest] / walls[shortest], 3)
        if longest in walls and shortest in walls and longest != shortest
        else None
    )
    worst = max((h["reads_per_needed"] for h in measured), default=None)
    worst_audit = max((h["reads_per_needed_audit"] for h in measured), default=None)
    return {
        "scenario": "incremental",
        "per_day": args.nightly_per_day,
        "edit_share": args.nightly_edit_share,
        "moved_share": MOVED_SHARE,
        "deletes": args.nightly_deletes,
        "verify_days": args.verify_days,
        "runner": "in_memory (the pipeline's default DirectRunner set-up)",
        "today": today.isoformat(),
        "reads_per_document": worst,
        "reads_per_document_audit": worst_audit,
        "wall_ratio_longest_to_shortest": ratio,
        "warmup": warmup,
        "histories": histories,
        "targets": {
            "reads_per_needed_document": TARGET_NIGHTLY_READS,
            "wall_ratio_longest_to_shortest": TARGET_NIGHTLY_WALL_RATIO,
            "reads_met": worst is not None and worst <= TARGET_NIGHTLY_READS,
            "wall_met": ratio is not None and ratio <= TARGET_NIGHTLY_WALL_RATIO,
        },
        "ok": len(measured) == len(histories) and all(h["ok"] for h in histories),
    }


def render_nightly(n: dict[str, Any]) -> str:
    edits = max(1, round(n["per_day"] * n["edit_share"]))
    lines = [
        f"nightly (incremental) runs: {n['per_day']} documents a day over the five collections; "
        f"after a first nightly (full rebuild, untimed):",
        f"  one new day ({n['per_day']} documents, yesterday) + {edits} older documents edited "
        f"({math.ceil(edits * n['moved_share'])} moved to another day), then the nightly "
        f"(timed); --verify_days {n['verify_days']}; {n['runner']}",
        "",
        f"{'history':>8}{'docs':>8}{'needed':>8}{'returned':>10}{'reads/needed':>14}"
        f"{'(audit)':>9}{'count queries':>15}{'count reads':>13}{'rows staged':>13}"
        f"{'wall s':>9}{'counts s':>10}",
    ]
    for h in n["histories"]:
        if h.get("reads_per_needed") is None:
            lines.append(
                f"{h['history_days']:>7}d  FAILED: {h.get('run', h['first_run'])['error']}"
            )
            continue
        lines.append(
            f"{h['history_days']:>7}d{h['documents_seeded']:>8}{h['documents_needed']:>8}"
            f"{h['documents_returned']:>10}{h['reads_per_needed']:>14.2f}"
            f"{h['reads_per_needed_audit']:>9.2f}{h['count_queries']:>15}{h['count_reads']:>13}"
            f"{h['rows_staged']:>13}{h['wall_seconds']:>9.2f}{h['count_replay']['seconds']:>10.2f}"
            + ("" if h["ok"] else "  NOT AS EXPECTED")
        )
    lines.append(
        "  wall time split (queries replayed after the run, timed: count() with the plan's "
        f"{COUNT_THREADS} in flight per table, document queries one after the other):"
    )
    for h in n["histories"]:
        if h.get("reads_per_needed") is None:
            continue
        counts, reads = h["count_replay"]["seconds"], h["read_replay"]["seconds"]
        lines.append(
            f"  {h['history_days']:>5}d: {h['wall_seconds']:.1f}s = {h['count_replay']['queries']}"
            f" count() {counts:.1f}s + {h['read_replay']['queries']} document queries "
            f"({h['read_replay']['documents']} documents) {reads:.1f}s + the rest (start-up, "
            f"BigQuery, Beam) {h['wall_seconds'] - counts - reads:.1f}s"
        )
    lines += [
        "  needed = documents on the window's day + documents changed since the watermark, "
        "each once; returned = the run's 'firestore reads: N documents returned' (audit: the "
        "sum of _sync_runs documents_returned)",
        "  count reads = billed reads of the count() aggregations (1 per 1,000 documents "
        "counted, at least 1 per query); counts s = those queries replayed as the plan runs "
        "them, at the run's snapshot, timed (on the emulator each scans the collection)",
    ]
    with_deletes = [h for h in n["histories"] if h.get("deletes")]
    if with_deletes:
        lines += [
            "hard deletes (a separate night with the same yesterday, so only the drift check "
            "reads days):",
            f"{'history':>8}{'deleted':>9}{'drift days':>12}{'drift rebuild read':>20}"
            f"{'expected':>10}{'returned':>10}{'wall s':>9}",
        ]
        for h in with_deletes:
            d = h["deletes"]
            if "drift_days" not in d:
                lines.append(f"{h['history_days']:>7}d  FAILED: {d['run']['error']}")
                continue
            lines.append(
                f"{h['history_days']:>7}d{d['deleted']:>9}{len(d['drift_days']):>12}"
                f"{d['drift_rebuild_read']:>20}{d['drift_rebuild_expected']:>10}"
                f"{d['documents_returned']:>10}{d['wall_seconds']:>9.2f}"
                + ("" if d["ok"] else "  NOT AS EXPECTED")
            )
        lines.append(
            f"  {with_deletes[0]['deletes'].get('table', 'user_interactions')}: one document "
            "deleted on each of that many days; drift rebuild read = the documents its drifted "
            "days still hold (expected), returned = the whole run's reads (the change query "
            "re-reads the edits of the clock allowance)"
        )
    if n.get("warmup") and not n["warmup"]["ok"]:
        lines.append("  (the untimed warm-up round failed; see the run logs)")
    t = n["targets"]
    worst = n["reads_per_document"]
    ratio = n["wall_ratio_longest_to_shortest"]
    lines.append(
        f"targets: reads per needed document, worst history "
        f"{'n/a' if worst is None else f'{worst:.2f}'} (target <= "
        f"{t['reads_per_needed_document']:.2f}: {'met' if t['reads_met'] else 'NOT met'}); "
        f"nightly wall, longest / shortest history "
        f"{'n/a' if ratio is None else f'{ratio:.2f}x'} (target <= "
        f"{t['wall_ratio_longest_to_shortest']}x: {'met' if t['wall_met'] else 'NOT met'})"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def run_benchmark(args: argparse.Namespace, emu: Any, log_dir: Path) -> dict[str, Any]:
    from google.cloud import firestore

    project = emu.project
    env = {**os.environ, **emu.env()}
    db = firestore.Client(project=project)
    client = bq.make_client(project)
    specs = list(load_specs().values())
    end = datetime.datetime.now(UTC).date() - datetime.timedelta(days=1)

    log(f"seeding {args.docs} documents")
    data = seed(db, args.docs, end)
    log(f"seeded in {data.seed_seconds:.1f}s: {data.per_collection}")
    startup = python_startup_seconds(env)
    log("nightly run reads (one day, dry run) ...")
    nightly = measure_nightly_reads(project, data, env, log_dir)

    results = Results(pipeline={c.label: [] for c in args.workers})
    keep: list[str] = []

    def measured(name: str, dataset: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        drop_dataset(client, dataset)
        log(f"{name} ...")
        result = fn()
        log(f"{name}: {result['wall_seconds']:.2f}s{'' if result['ok'] else ' (FAILED)'}")
        if args.keep_data:
            keep.append(dataset)
        else:
            drop_dataset(client, dataset)
        return result

    for r in range(1, args.repeat + 1):
        ds = f"bench_floor_{r}"
        results.floor.append(
            measured(f"[{r}] floor", ds, lambda ds=ds: measure_floor(db, client, specs, ds))
        )
        for config in args.workers:
            ds = f"bench_pipeline_{config.label.replace(':', '_')}_{r}"
            name = f"pipeline-{config.label.replace(':', '-')}-{r}"
            results.pipeline[config.label].append(
                measured(
                    f"[{r}] pipeline {config.label}",
                    ds,
                    lambda ds=ds, c=config, n=name: measure_pipeline(
                        project, ds, data, c, env, log_dir, n
                    ),
                )
            )
        ds = f"bench_naive_{r}"
        results.naive.append(
            measured(
                f"[{r}] naive ({args.naive_batch}/request)",
                ds,
                lambda ds=ds: measure_naive(db, client, specs, ds, args.naive_batch),
            )
        )
        ds = f"bench_naive_single_{r}"
        cap = min(args.naive_single_cap, data.docs)
        results.naive_single.append(
            measured(
                f"[{r}] naive (1/request, first {cap})",
                ds,
                lambda ds=ds, cap=cap: measure_naive(db, client, specs, ds, 1, cap),
            )
        )

    report = build_report(data, results, args, nightly, startup)
    if args.profile:
        best = next(c for c in args.workers if c.label == report["recommended_config"])
        ds = "bench_profile"
        drop_dataset(client, ds)
        log(f"profiling pipeline {best.label} under py-spy into {args.profile}")
        profile_pipeline(project, ds, data, best, env, args.profile)
        report["profile"] = str(args.profile / "pipeline-top.txt")
        if not args.keep_data:
            drop_dataset(client, ds)
    if keep:
        report["kept_datasets"] = keep
    return report


def run_scenarios(args: argparse.Namespace, emu: Any, log_dir: Path) -> dict[str, Any]:
    """The backfill scenario, the nightly one, or both (``--scenario``).

    With both, ``nightly`` is the incremental scenario's and the backfill's
    one-day ``--date`` dry run moves to ``one_day_full_run``.
    """
    report: dict[str, Any] = {}
    if args.scenario in ("backfill", "all"):
        report = run_benchmark(args, emu, log_dir)
    if args.scenario in ("nightly", "all"):
        env = {**os.environ, **emu.env()}
        nightly = measure_nightly(args, emu, env, log_dir)
        if report:
            report["one_day_full_run"] = report.pop("nightly")
            report["valid"] = report["valid"] and nightly["ok"]
        else:
            report = {
                "command": args.command,
                "cwd": str(Path.cwd()),
                "machine": machine(),
                "python_startup_seconds": round(python_startup_seconds(env), 3),
                "valid": nightly["ok"],
                "failed_configs": [],
            }
        report["scenario"] = args.scenario
        report["nightly"] = nightly
    return report


def render_all(report: dict[str, Any]) -> str:
    if "rows" in report:
        text = render(report)
        if "one_day_full_run" in report:
            text += "\n\n" + render_nightly(report["nightly"])
        return text
    m = report["machine"]
    lines = [
        render_nightly(report["nightly"]),
        f"every run is a new process: python + imports alone "
        f"{report['python_startup_seconds']:.2f}s",
        f"machine: {m['nproc']} CPUs (nproc), {m['ram_gib']} GiB RAM (MemTotal), "
        f"{m['cpu_model']}, Python {m['python']}",
        f"command (in {report['cwd']}): {report['command']}",
    ]
    if not report["valid"]:
        lines.append("INVALID: a nightly run failed or its tables or reads were not as expected")
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"benchmark: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000, help="Documents to seed.")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each; medians reported.")
    parser.add_argument("--json", type=Path, help="Also write the results here as JSON.")
    parser.add_argument(
        "--workers",
        default=DEFAULT_WORKERS,
        help="Comma-separated DirectRunner configurations to time: in_memory, "
        "multi_threading:N, multi_processing:N, or N workers (1 = in_memory, "
        f"N > 1 = multi_processing:N). Default {DEFAULT_WORKERS}.",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="Leave the emulators running with the seeded documents and every written dataset.",
    )
    parser.add_argument("--state-dir", type=Path, help="Emulator state dir (default: a temp dir).")
    parser.add_argument("--naive-batch", type=int, default=100, help="Rows per insertAll request.")
    parser.add_argument(
        "--naive-single-cap",
        type=int,
        default=300,
        help="Documents sent one request each; the figure is extrapolated to --docs.",
    )
    parser.add_argument(
        "--profile", type=Path, help="Also run the recommended configuration under py-spy into DIR."
    )
    nightly = parser.add_argument_group(
        "nightly scenario", "Incremental nightly runs over histories of several lengths."
    )
    nightly.add_argument(
        "--scenario",
        choices=("backfill", "nightly", "all"),
        default="backfill",
        help="backfill: floor, pipeline and naive on --docs documents (default); nightly: "
        "the incremental nightly over each --nightly-histories; all: both.",
    )
    nightly.add_argument(
        "--nightly-histories",
        default=DEFAULT_HISTORIES,
        help=f"Comma-separated days of history, each measured on its own (default "
        f"{DEFAULT_HISTORIES}).",
    )
    nightly.add_argument(
        "--nightly-per-day", type=int, default=200, help="Documents a day, history and new day."
    )
    nightly.add_argument(
        "--nightly-edit-share",
        type=float,
        default=0.05,
        help="Older documents edited before the timed night, as a share of a day's new ones "
        f"({MOVED_SHARE:.0%} of them also move to another day). Default 0.05.",
    )
    nightly.add_argument(
        "--nightly-deletes",
        type=int,
        default=3,
        help="Interactions hard-deleted (one a day, within --verify_days) for a separate, "
        "timed night; 0 skips it. Default 3.",
    )
    nightly.add_argument(
        "--no-nightly-warmup",
        dest="nightly_warmup",
        action="store_false",
        help="Skip the untimed 2-day warm-up round before the histories.",
    )
    nightly.add_argument(
        "--verify_days",
        type=int,
        default=35,
        help="Passed to every nightly run (the pipeline's default is 35).",
    )
    args = parser.parse_args(argv)
    try:
        args.nightly_histories = sorted(
            {int(d) for d in args.nightly_histories.split(",") if d.strip()}
        )
    except ValueError:
        parser.error("--nightly-histories takes comma-separated day counts")
    if not args.nightly_histories or min(args.nightly_histories) < 2:
        parser.error("--nightly-histories needs day counts of 2 or more")
    if args.nightly_per_day < 1 or args.verify_days < 1 or args.nightly_deletes < 0:
        parser.error("--nightly-per-day and --verify_days must be positive")
    if not 0 < args.nightly_edit_share <= 1:
        parser.error("--nightly-edit-share must be in (0, 1]")
    args.command = shlex.join(
        [sys.executable, sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    )
    if args.docs < 1 or args.repeat < 1 or args.naive_batch < 1 or args.naive_single_cap < 1:
        parser.error("--docs, --repeat, --naive-batch and --naive-single-cap must be positive")
    try:
        args.workers = [RunnerConfig.parse(w) for w in args.workers.split(",") if w.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not args.workers:
        parser.error("--workers names no configuration")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    own_dir = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="f2bq-bench-")) if own_dir else args.state_dir
    log_dir = state_dir / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    emu = emulators.start(state_dir)
    saved = {key: os.environ.get(key) for key in emu.env()}
    os.environ.update(emu.env())
    report: dict[str, Any] | None = None
    try:
        report = run_scenarios(args, emu, log_dir)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if report is not None and args.keep_data:
            log("emulators left running (--keep-data); to use them:\n" + emu.export_lines())
            log(f"stop them with: {sys.executable} scripts/emulators.py down "
                f"--state-dir {state_dir}")  # fmt: skip
        else:
            emu.stop()
            shutil.rmtree(emu.bigquery_data_dir, ignore_errors=True)
            if own_dir and report is not None and report["valid"] and not report["failed_configs"]:
                shutil.rmtree(state_dir, ignore_errors=True)
            else:
                log(f"emulators stopped; run logs kept in {log_dir}")
    print(render_all(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if report["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
