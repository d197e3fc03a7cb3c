"""The backfill scenario: the pipeline against the floor and the naive baseline.

*Seed* ``--docs`` documents over the five collections (many users, 14 days).
*Run*, on that same data, ``--repeat`` times (medians reported):

floor
    Stream every document once (``collection_group(c).stream()``, one collection
    after the other), convert each with the product's own ``document_to_row`` and
    append each collection's rows to a fresh table with the real schema in ONE
    load job (``pipelines.bigquery.load_rows``). Creating the five tables is included.
pipeline
    ``python -m pipelines.firestore_to_bq`` backfilling the window into an empty
    dataset, once per ``--workers`` DirectRunner configuration, as a subprocess
    whose wall time includes start-up (:mod:`.sync_run`); its figures are its
    ``_sync_runs`` row. The recommended configuration is the fastest that worked
    or, among those within 5 % of it, the one with the smallest peak RSS.
naive
    Stream each collection group, convert each document, and stream rows in with
    the BigQuery client's ``insert_rows_json`` (``tabledata.insertAll``),
    ``--naive-batch`` rows per request; one request per document is measured on
    the first ``--naive-single-cap`` documents and extrapolated. bqemulator
    snapshots a table on every ``insertAll``, so this slows down as its tables
    grow, which real BigQuery does not.

and once, a one-day full dry run (``one_day_full``): ``--date`` the last seeded
day. Not the nightly (that is incremental): a full run of one day reads every
document of every collection at its snapshot, so its reads per document of that
day are about the days of history held; its figures are the dry run's Beam
counters. *Verify* that every run read and wrote every document; ``--profile
DIR`` adds one untimed run of the recommended configuration under py-spy.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import itertools
import json
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from devtools.bench import data, log, sync_run
from devtools.bench.scenario import Bench, Case, Scenario, ratio
from pipelines.convert.table_spec import EXTRA_COLUMN, TableSpec

UTC = datetime.UTC
#: Configurations this much slower than the fastest still compete on peak RSS.
RSS_TIE = 0.05
MODES = ("in_memory", "multi_threading", "multi_processing")
#: Targets of the "Prove the speed" issue; reported, never enforced.
TARGET_FLOOR_RATIO = 1.5
TARGET_NAIVE_SPEEDUP = 5.0
TARGET_READS_PER_DOC = 1.0


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
        return ["--direct_running_mode", self.mode, "--direct_num_workers", str(self.workers)]

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


@dataclass
class Backfilled(Case):
    data: data.Dataset = field(init=False)
    one_day: dict[str, Any] = field(init=False)
    #: Every repeat's raw figures per measurement; medians are taken when reporting.
    runs: dict[str, Any] = field(init=False)
    kept: list[str] = field(default_factory=list)


class Backfill(Scenario):
    key = None  # its figures are the report's own
    fresh = False

    def cases(self, bench: Bench) -> list[Backfilled]:
        return [Backfilled(bench.args.docs)]

    def seed(self, bench: Bench, case: Backfilled) -> None:
        log(f"seeding {case.size} documents")
        end = datetime.datetime.now(UTC).date() - datetime.timedelta(days=1)
        case.data = data.seed(bench.db, case.size, end)
        log(f"seeded in {case.data.seed_seconds:.1f}s: {case.data.per_collection}")

    def run(self, bench: Bench, case: Backfilled) -> None:
        """The one-day full dry run once; floor, every pipeline configuration and the
        naive baseline ``--repeat`` times, each into a fresh dataset of its own."""
        a, d, specs = bench.args, case.data, bench.specs
        log("one-day full run reads (one day, dry run) ...")
        case.one_day = self.one_day_full(bench, d)
        case.runs = {"floor": [], "naive": [], "naive_per_document": [],
                     "pipeline": {c.label: [] for c in a.workers}}  # fmt: skip
        cap = min(a.naive_single_cap, d.docs)
        for r in range(1, a.repeat + 1):
            pipelines = [
                (case.runs["pipeline"][c.label], f"pipeline {c.label}",
                 f"pipeline_{c.label.replace(':', '_')}", functools.partial(
                     self.measure_pipeline, bench, d=d, config=c,
                     name=f"pipeline-{c.label.replace(':', '-')}-{r}"))
                for c in a.workers
            ]  # fmt: skip
            plan = [
                (case.runs["floor"], "floor", "floor",
                 functools.partial(measure_floor, bench, specs)),
                *pipelines,
                (case.runs["naive"], f"naive ({a.naive_batch}/request)", "naive",
                 functools.partial(measure_naive, bench, specs, batch=a.naive_batch)),
                (case.runs["naive_per_document"], f"naive (1/request, first {cap})", "naive_single",
                 functools.partial(measure_naive, bench, specs, batch=1, cap=cap)),
            ]  # fmt: skip
            for runs, name, dataset, measure in plan:
                name, dataset = f"[{r}] {name}", f"bench_{dataset}_{r}"
                bench.drop(dataset)
                log(f"{name} ...")
                result = measure(dataset)
                log(f"{name}: {result['wall_seconds']:.2f}s{'' if result['ok'] else ' (FAILED)'}")
                runs.append(result)
                if a.keep_data:
                    case.kept.append(dataset)
                else:
                    bench.drop(dataset)

    def one_day_full(self, bench: Bench, d: data.Dataset) -> dict[str, Any]:
        """Reads per document of the day of a one-day full dry run (its rows are the
        documents of the replaced day: every seeded document was written after it)."""
        done = bench.sync("one-day-full-dry-run", "--date", d.end.isoformat(), "--dry_run")
        returned = done.documents_returned()
        in_window = sum(t["rows"] for t in done.tables().values())
        return {
            "date": d.end.isoformat(), "wall_seconds": round(done.wall_seconds, 3),
            "documents_returned": returned, "documents_in_window": in_window,
            "reads_per_document": ratio(returned, in_window, 2) if returned else None,
            "source": "the dry run's Beam counters (documents_returned, rows)",
            "ok": done.ok and returned == d.docs and in_window > 0,
        }  # fmt: skip

    def measure_pipeline(
        self, bench: Bench, dataset: str, d: data.Dataset, config: RunnerConfig, name: str
    ) -> dict[str, Any]:
        """One timed backfill; its figures from its ``_sync_runs`` row."""
        done = sync_run.run(pipeline_args(bench, dataset, d, config), bench.env, bench.log_dir,
                            name)  # fmt: skip
        audit = bench.audit(dataset, done.run_id) if done.run_id else None
        tables = audit["tables"] if audit else {}
        read = sum(t["documents_read"] for t in tables.values())
        written = sum(t["rows_written"] for t in tables.values())
        ok = (done.ok and audit is not None and audit["status"] == "succeeded"
              and read == d.docs and written == d.docs)  # fmt: skip
        error = None
        if not ok:
            status = audit and audit["status"]
            error = done.error or f"status {status}, read {read}, written {written}"
            log(f"{name} failed (exit {done.exit_code}, read {read}, written {written}): {error}")
        keys = ("status", "documents_read", "documents_returned", "rows_written")
        return {
            "config": config.label, "wall_seconds": done.wall_seconds,
            "peak_rss_bytes": done.peak_rss_bytes, "exit_code": done.exit_code,
            "run_id": done.run_id, "documents_read": read,
            "documents_returned": audit and sum(t["documents_returned"] for t in tables.values()),
            "rows_written": written,
            "tables": {n: {k: t.get(k) for k in keys} for n, t in tables.items()},
            "error": error, "ok": ok,
        }  # fmt: skip

    def verify(self, bench: Bench, case: Backfilled) -> None:
        """The medians, the recommended configuration, and whether the table is valid:
        its rows and its reads figures are (a failed alternative configuration is only
        flagged); then the profile, if asked."""
        a, d, runs = bench.args, case.data, case.runs

        def median(runs: list[dict[str, Any]], key: str) -> float:
            return statistics.median(float(r[key]) for r in runs)

        def row(name: str, wall: float, **extra: Any) -> dict[str, Any]:
            return {"name": name, "docs": d.docs, "wall_seconds": round(wall, 3),
                    "docs_per_second": round(d.docs / wall, 1) if wall else None,
                    "ratio_to_floor": ratio(wall, floor, 3), **extra}  # fmt: skip

        floor, naive, single = (median(runs[k], "wall_seconds") for k in
                                ("floor", "naive", "naive_per_document"))  # fmt: skip
        configs = {
            label: {"config": label, "wall_seconds": round(median(done, "wall_seconds"), 3),
                    "peak_rss_bytes": int(median(done, "peak_rss_bytes")),
                    "ok": all(r["ok"] for r in done),
                    "errors": sorted({r["error"] for r in done if r["error"]})}
            for label, done in runs["pipeline"].items()
        }  # fmt: skip
        best = recommend(list(configs.values()))
        single_docs = int(median(runs["naive_per_document"], "documents"))
        # Read, convert and create tables as the batched run did; insert one row per request.
        per_request = median(runs["naive_per_document"], "insert_seconds") / single_docs
        extrapolated = naive - median(runs["naive"], "insert_seconds") + per_request * d.docs
        returned = [r["documents_returned"] for r in runs["pipeline"][best["config"]]
                    if r["documents_returned"] is not None]  # fmt: skip
        documents_returned = int(statistics.median(returned)) if returned else None
        rows = [
            row("floor", floor, **{f"{k}_seconds": round(median(runs["floor"], f"{k}_seconds"), 3)
                                   for k in ("read", "convert", "load")}),
            row("pipeline", best["wall_seconds"], config=best["config"],
                peak_rss_bytes=best["peak_rss_bytes"]),
            row("naive", naive, method="insert_rows_json", rows_per_request=a.naive_batch),
        ]  # fmt: skip
        single_runs = [*runs["floor"], *runs["naive"], *runs["naive_per_document"]]
        case.result = {
            "docs": d.docs, "repeat": a.repeat, "statistic": "median",
            "seed": {
                "users": d.users, "days": d.days, "per_user_per_day": d.per_user_per_day,
                "window": [d.start.isoformat(), d.end.isoformat()],
                "per_collection": d.per_collection, "seed_seconds": round(d.seed_seconds, 2),
            },  # fmt: skip
            "rows": rows,
            "naive_per_document": row(
                "naive_per_document", extrapolated, method="insert_rows_json",
                rows_per_request=1, extrapolated=True, extrapolated_from_docs=single_docs,
                measured_seconds=round(single, 3), seconds_per_request=round(per_request, 5),
            ),  # fmt: skip
            "pipeline_configs": list(configs.values()), "recommended_config": best["config"],
            "reads_per_document": ratio(documents_returned, d.docs),
            "firestore_reads": {"documents_returned": documents_returned,
                                "documents_in_window": d.docs,
                                "source": "the sum of the run's _sync_runs documents_returned"},
            "peak_rss_bytes": best["peak_rss_bytes"],
            "peak_rss_mb": round(best["peak_rss_bytes"] / 2**20, 1),
            "targets": {
                "pipeline_within_floor_ratio": TARGET_FLOOR_RATIO,
                "pipeline_floor_ratio": rows[1]["ratio_to_floor"],
                "speedup_vs_naive": round(naive / best["wall_seconds"], 2),
                "speedup_vs_naive_per_document": round(extrapolated / best["wall_seconds"], 1),
                "speedup_target": TARGET_NAIVE_SPEEDUP,
                "reads_per_document_target": TARGET_READS_PER_DOC,
            },
            "one_day_full": case.one_day,
            "valid": best["ok"] and documents_returned is not None and case.one_day["ok"]
            and all(r["ok"] for r in single_runs),
            "failed_configs": [c["config"] for c in configs.values() if not c["ok"]],
            "runs": runs,
        }  # fmt: skip
        if a.profile:
            self.profile(bench, case, next(c for c in a.workers if c.label == best["config"]))
        if case.kept:
            case.result["kept_datasets"] = case.kept

    def profile(self, bench: Bench, case: Backfilled, best: RunnerConfig) -> None:
        from devtools.bench.profiling import profile

        out, ds = bench.args.profile, "bench_profile"
        bench.drop(ds)
        log(f"profiling pipeline {best.label} under py-spy into {out}")
        args = pipeline_args(bench, ds, case.data, best)
        profile(sync_run.command(out / "pipeline.summary.json", args), bench.env, out)
        case.result["profile"] = str(out / "pipeline-top.txt")
        if not bench.args.keep_data:
            bench.drop(ds)

    def record(self, bench: Bench, cases: list[Backfilled]) -> dict[str, Any]:
        return cases[0].result


SCENARIO = Backfill()


def pipeline_args(bench: Bench, dataset: str, d: data.Dataset, config: RunnerConfig) -> list[str]:
    """The sync's arguments for a backfill of the whole seeded window into ``dataset``."""
    return ["--project", bench.project, "--dataset", dataset, "--start_date",
            d.start.isoformat(), "--end_date", d.end.isoformat(), *config.beam_args]  # fmt: skip


def recommend(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest configuration that worked; among those within ``RSS_TIE`` of it, the
    one with the smallest peak RSS (medians of a few runs do not separate closer times)."""
    candidates = [c for c in configs if c["ok"]] or configs
    fastest = min(c["wall_seconds"] for c in candidates)
    close = [c for c in candidates if c["wall_seconds"] <= fastest * (1 + RSS_TIE)]
    return min(close, key=lambda c: (c["peak_rss_bytes"], c["wall_seconds"]))


# --------------------------------------------------------------------------------------
# What the pipeline is measured against: the least work any sync must do (the floor),
# and what users write by hand (naive). See the module docstring.
# --------------------------------------------------------------------------------------


def documents(bench: Bench, spec: TableSpec) -> Iterator[Any]:
    """Every document of ``spec``'s collection as the pipeline's unit of work, built as
    ``stream_documents`` does: a plain stream, no ordering, no cursors."""
    from pipelines.convert.document import FirestoreDocument

    db = bench.db
    stream = (db.collection_group if spec.layout == "per_user" else db.collection)(spec.collection)
    snapshots = stream.stream()
    try:
        for snapshot in snapshots:
            updated = snapshot.update_time
            if updated is not None and not isinstance(updated, datetime.datetime):
                updated = updated.ToDatetime(tzinfo=UTC)  # a protobuf Timestamp
            yield FirestoreDocument(table=spec.name, path=snapshot.reference.path,
                                    data=snapshot.to_dict() or {}, update_time=updated)  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            snapshots.close()  # a capped stream: stop the server-side query too


def measure_floor(bench: Bench, specs: list[TableSpec], dataset: str) -> dict[str, Any]:
    """Read everything once, convert, then one load job per table."""
    from pipelines.convert.conversion import ConversionError, document_to_row
    from pipelines.services import bigquery as bq

    run_id, read_time = "bench_floor", datetime.datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    docs = {spec.name: list(documents(bench, spec)) for spec in specs}
    t1 = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {spec.name: [] for spec in specs}
    rejected = 0
    for spec in specs:
        for doc in docs[spec.name]:
            try:
                rows[spec.name].append(document_to_row(spec, doc, run_id, read_time))
            except ConversionError:
                rejected += 1
    t2 = time.perf_counter()
    data.create_tables(bench.client, dataset, specs)
    loaded = sum(bq.load_rows(bench.client, dataset, s.name, s.bigquery_schema(), rows[s.name])
                 for s in specs if rows[s.name])  # fmt: skip
    t3 = time.perf_counter()
    read = sum(len(d) for d in docs.values())
    return {"wall_seconds": t3 - t0, "read_seconds": t1 - t0, "convert_seconds": t2 - t1,
            "load_seconds": t3 - t2, "documents_read": read, "rows_loaded": loaded,
            "rejected": rejected, "ok": loaded == read and rejected == 0}  # fmt: skip


def measure_naive(
    bench: Bench, specs: list[TableSpec], dataset: str, batch: int, cap: int | None = None
) -> dict[str, Any]:
    """Stream, convert and ``insert_rows_json`` ``batch`` rows per request; with ``cap``
    only the first ``cap`` documents (spread over the tables), the stream closed there."""
    from google.api_core import retry as api_retry

    from pipelines.convert.conversion import document_to_row

    #: insertAll failures are bugs here, not load: fail within a minute, not the default ten.
    retry = api_retry.Retry(timeout=60.0)
    client, read_time = bench.client, datetime.datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    data.create_tables(client, dataset, specs)
    sent = failed = requests = 0
    inserting = 0.0
    for spec in specs:
        table = f"{client.project}.{dataset}.{spec.name}"
        # JSON columns go to insertAll as JSON text, not as objects.
        json_cols = tuple(c.name for c in spec.columns if c.type == "JSON") + (EXTRA_COLUMN,)
        stream = documents(bench, spec)
        docs = itertools.islice(stream, math.ceil(cap / len(specs)) if cap else None)
        while rows := [document_to_row(spec, doc, "bench_naive", read_time)
                       for doc in itertools.islice(docs, batch)]:  # fmt: skip
            for row in rows:
                for name in json_cols:
                    if row.get(name) is not None:
                        row[name] = json.dumps(row[name], ensure_ascii=False)
            t = time.perf_counter()
            failed += len(client.insert_rows_json(table, rows, retry=retry, timeout=30.0))
            inserting += time.perf_counter() - t
            sent, requests = sent + len(rows), requests + 1
        stream.close()
    return {"wall_seconds": time.perf_counter() - t0, "documents": sent, "requests": requests,
            "insert_seconds": inserting, "rows_rejected": failed,
            "ok": failed == 0 and sent > 0}  # fmt: skip
