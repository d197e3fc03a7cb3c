"""The intraday scenario: hourly ``--intraday`` runs over a day with a steady trickle of changes.

For each ``--intraday-histories`` length, on its own (Firestore emptied, a fresh
dataset): seed ``--docs`` documents spread over the history up to yesterday, run
the nightly once (a full rebuild, untimed: the baseline every intraday run
starts from), then ``--intraday-hours`` intraday runs, one per simulated hour,
while a writer thread trickles ``--intraday-new`` new documents (over the five
collections in the sample app's mix, partition and change fields = the moment of
writing, as the app writes them) and ``--intraday-edits`` edits of existing
documents of the tables with a change field (``updated_at`` = that moment) into
every hour.

An hour is compressed into ``--intraday-hour-seconds`` real seconds, because
every run's Firestore snapshot is the real clock (:mod:`.sync_run`). The
planner's clock allowance (``CLOCK_SKEW``, 5 minutes: the change query starts
that long before the last snapshot) is scaled by the same factor, so it covers
the same share of an hour as in production (1/12); at its real length every run
would re-read the previous 5 real minutes, that is several compressed hours.
The writes are spread evenly over each hour, so about that share of an hour's
changes is read again by the next run: the allowance's cost, reported as
"re-read".

Per run, from its ``_sync_runs`` row and the summary it reported:
documents returned (Firestore document reads), the documents created or changed
between the previous run's snapshot and this one's (the writer knows every
write's commit time; a document written twice counts once), their ratio,
``count()`` aggregations (the pipeline's, from ``_sync_runs``, plus the
snapshot estimate's one per table) and their billed reads (one per 1,000
documents counted, at least one, from what the benchmark knows Firestore held),
wall time and start-up: launch to the run's first Firestore request (the
reachability probe; before it only the interpreter, imports and option parsing
run), and launch to the Beam graph built (planning done). Each run is checked
against what the writer knows it must return (every document whose change or
partition value is at or after its ``since``). After the last run, every table
equals a full rebuild (``--mode full``) at the last run's snapshot, row for row.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import random
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import sample_data
from devtools.bench import log, sync_run
from devtools.bench.datasets import drop_dataset, table_rows
from devtools.bench.nightly import run_nightly
from devtools.bench.replay import billed_reads
from devtools.bench.seeding import (
    EDIT_FIELD,
    SEED,
    Doc,
    History,
    change_field,
    day_start,
    partition_field,
    seed_history,
    spec_by_collection,
)
from pipelines.convert.table_spec import TableSpec

UTC = datetime.UTC
ONE_HOUR = datetime.timedelta(hours=1)
TARGET_READS_PER_CHANGED = 1.10


@dataclass(frozen=True)
class Change:
    """One write of the trickle, as Firestore committed it."""

    path: str
    table: str
    kind: str  # "new" or "edit"
    #: The field an intraday run's change query matches: the change field, or the
    #: partition field of a table without one.
    value: datetime.datetime
    committed: datetime.datetime


class Trickle(threading.Thread):
    """Writes ``new`` documents and ``edits`` an hour, evenly spaced over each hour."""

    def __init__(
        self, db: Any, specs: list[TableSpec], history: History, today: datetime.date,
        hours: int, hour_seconds: float, new: int, edits: int, rng: random.Random,
    ) -> None:  # fmt: skip
        super().__init__(name="intraday-trickle", daemon=True)
        self.db, self.history, self.today, self.rng = db, history, today, rng
        self.by_collection = spec_by_collection(specs)
        self.hour_seconds = hour_seconds
        self.per_hour = max(1, new + edits)
        kinds = []
        for _ in range(hours):
            hour = ["new"] * new + ["edit"] * edits
            rng.shuffle(hour)
            kinds += hour
        self.kinds = kinds
        self.new_docs = sample_data.documents(hours * new or 1, 1, today, 1, SEED + history.days)
        self.editable = sorted(p for p, d in history.docs.items() if d.spec.change_field)
        self.changes: list[Change] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.started_at = 0.0

    def begin(self) -> float:
        """Start writing now; the epoch time hour 1 begins."""
        self.started_at = time.time()
        self.start()
        return self.started_at

    def run(self) -> None:
        gap = self.hour_seconds / self.per_hour
        try:
            for i, kind in enumerate(self.kinds):
                if self.stop.wait(max(0.0, self.started_at + (i + 0.5) * gap - time.time())):
                    return
                self.changes.append(self._new() if kind == "new" else self._edit())
        except BaseException as exc:  # reported by the scenario, not lost in a thread
            self.error = exc

    def _new(self) -> Change:
        path, data = next(self.new_docs)
        spec = self.by_collection[path.split("/")[2]]
        now = datetime.datetime.now(UTC)
        data[partition_field(spec)] = now
        if change_field(spec):
            data[change_field(spec)] = now
        result = self.db.document(path).set(data)
        self.history.docs[path] = Doc(path, spec, now.date(), now)
        if spec.change_field:
            self.editable.append(path)
        return Change(path, spec.name, "new", now, result.update_time)

    def _edit(self) -> Change:
        path = self.rng.choice(self.editable)
        spec = self.history.docs[path].spec
        now = datetime.datetime.now(UTC)
        update = {
            change_field(spec): now,
            EDIT_FIELD.get(spec.collection, "description"): f"edited {now:%H:%M:%S.%f}",
        }
        result = self.db.document(path).update(update)
        return Change(path, spec.name, "edit", now, result.update_time)


def counts_at(
    history: History, base: dict[str, collections.Counter[str]], changes: list[Change],
    read_time: datetime.datetime,
) -> dict[str, collections.Counter[str]]:  # fmt: skip
    """Documents per table and day Firestore held at ``read_time``: the seeded history
    (``base``) and the new documents committed by then (edits move no document)."""
    out = {table: collections.Counter(days) for table, days in base.items()}
    for c in changes:
        if c.kind == "new" and c.committed <= read_time:
            doc = history.docs[c.path]
            out.setdefault(c.table, collections.Counter())[doc.day.isoformat()] += 1
    return out


def expected_returned(
    changes: list[Change], read_time: datetime.datetime, since: dict[str, datetime.datetime]
) -> dict[str, int]:
    """Per table, the documents a run at ``read_time`` must return: those whose value
    at that snapshot (their last write committed by then) is at or after its ``since``."""
    latest: dict[str, Change] = {}
    for c in changes:
        if c.committed <= read_time:
            latest[c.path] = c
    out: collections.Counter[str] = collections.Counter()
    for c in latest.values():
        if c.value >= since[c.table]:
            out[c.table] += 1
    return dict(out)


def intraday_run(
    project: str, dataset: str, env: dict[str, str], log_dir: Path, name: str,
    verify_days: int, skew: datetime.timedelta,
) -> sync_run.SyncRun:  # fmt: skip
    args = ["--project", project, "--dataset", dataset, "--intraday",
            "--verify_days", str(verify_days)]  # fmt: skip
    done = sync_run.run(args, env, log_dir, name, clock_skew=skew)
    if not (done.ok and done.run_id):
        log(f"{name} failed (exit {done.exit_code}): {done.error}")
    return done


def measure_history(
    args: argparse.Namespace, emu: Any, db: Any, client: Any, specs: list[TableSpec],
    env: dict[str, str], log_dir: Path, days: int,
) -> dict[str, Any]:  # fmt: skip
    """Seed, one nightly, then the hourly intraday runs with the trickle; the rebuild check."""
    today = datetime.datetime.now(UTC).date()
    rng = random.Random(SEED * 1000 + days)
    project, dataset = emu.project, f"bench_intraday_{days}d"
    drop_dataset(client, dataset)
    emu.reset_firestore()
    per_day = max(1, args.docs // days)
    log(f"intraday {days}d: seeding {days} x {per_day} documents")
    history = seed_history(db, specs, days, per_day, today - datetime.timedelta(days=1))
    base = {t: collections.Counter(c) for t, c in history.per_table_day().items()}
    extra = ["--verify_days", str(args.verify_days)]
    first = run_nightly(project, dataset, datetime.datetime.now(UTC), env, log_dir,
                        f"intraday-{days}d-nightly", extra)  # fmt: skip
    result: dict[str, Any] = {
        "history_days": days,
        "documents_seeded": len(history.docs),
        "seed_seconds": round(history.seed_seconds, 2),
        "nightly": {k: first[k] for k in ("wall_seconds", "ok", "error")},
        "runs": [],
    }
    if not first["ok"]:
        return {**result, "ok": False}
    previous = sync_run.audit_entries(client, dataset, first["run_id"]).read_time
    midnight = day_start(today)
    skew = sync_run_skew(args.intraday_hour_seconds)
    trickle = Trickle(db, specs, history, today, args.intraday_hours, args.intraday_hour_seconds,
                      args.intraday_new, args.intraday_edits, rng)  # fmt: skip
    t0 = trickle.begin()
    ok = True
    names = [s.name for s in specs]
    # What each table's change query starts from (windows.plan_intraday): the watermark,
    # or today's midnight for a table without a change field before its first intraday run.
    since = {s.name: previous - skew if s.change_field else midnight for s in specs}
    for hour in range(1, args.intraday_hours + 1):
        time.sleep(max(0.0, t0 + hour * args.intraday_hour_seconds - time.time()))
        if datetime.datetime.now(UTC).date() != today:
            result["error"] = "the day (UTC) changed during the runs; run it again after midnight"
            ok = False
            break
        name = f"intraday-{days}d-{hour:02d}"
        done = intraday_run(project, dataset, env, log_dir, name, args.verify_days, skew)
        if not (done.ok and done.run_id):
            result["runs"].append({"hour": hour, "ok": False, "error": done.error})
            ok = False
            break
        audit = sync_run.audit_entries(client, dataset, done.run_id)
        snapshot = audit.read_time
        record = run_record(hour, done, audit, list(trickle.changes), history, base, previous,
                            since, args.verify_days, names)  # fmt: skip
        result["runs"].append(record)
        ok = ok and record["ok"]
        since = {n: snapshot - skew for n in names}
        previous = snapshot
    trickle.stop.set()
    trickle.join()
    if trickle.error is not None:
        result["error"] = f"the trickle's writes failed: {trickle.error}"
        ok = False
    if ok:
        result["rebuild"] = compare_with_rebuild(
            project, dataset, client, specs, env, log_dir, previous, today
        )
        ok = result["rebuild"]["equal"]
    result.update(summarise(result["runs"]))
    result["ok"] = ok and bool(result["runs"])
    if not args.keep_data:
        drop_dataset(client, dataset)
        drop_dataset(client, f"{dataset}_rebuild")
    return result


def sync_run_skew(hour_seconds: float) -> datetime.timedelta:
    """The planner's clock allowance scaled to a compressed hour: the same share of it."""
    from pipelines.plan.windows import CLOCK_SKEW

    return CLOCK_SKEW * (hour_seconds / ONE_HOUR.total_seconds())


def run_record(
    hour: int, done: sync_run.SyncRun, audit: sync_run.Audited, changes: list[Change],
    history: History, base: dict[str, collections.Counter[str]],
    previous: datetime.datetime, since: dict[str, datetime.datetime], verify_days: int,
    names: list[str],
) -> dict[str, Any]:  # fmt: skip
    """One run's figures, and whether it read exactly what the writes say it must."""
    snapshot = audit.read_time
    tables = audit.tables
    window = [c for c in changes if previous < c.committed <= snapshot]
    changed = {c.path for c in window}
    expected = expected_returned(changes, snapshot, since)
    returned = done.documents_returned() or 0
    held = counts_at(history, base, changes, snapshot)
    today = snapshot.date()
    verify = [(today - datetime.timedelta(days=i)).isoformat() for i in range(verify_days + 1)]
    estimate_queries = len(names)  # the snapshot estimate counts each table's change query once
    count_reads = sum(
        sum(billed_reads(held.get(n, {}).get(day, 0)) for day in verify)
        + 2 * billed_reads(tables[n].counted.documents_returned)  # the estimate's and the run's
        for n in names
    )
    pipeline_queries = sum(t.counted.count_queries for t in tables.values())
    # Main's located delete reads each changed document's previous version (one read each).
    previous_reads = sum(t.counted.previous_reads for t in tables.values())
    startup, built = done.seconds_to("first_firestore_read"), done.seconds_to("pipeline_built")
    drift = {n: sync_run.iso(t.counted.drift_days) for n, t in tables.items()
             if t.counted.drift_days}  # fmt: skip
    record = {
        "hour": hour,
        "run_id": done.run_id,
        "interval_seconds": round((snapshot - previous).total_seconds(), 2),
        "documents_changed": len(changed),
        "documents_new": len({c.path for c in window if c.kind == "new"}),
        "documents_edited": len({c.path for c in window if c.kind == "edit"}),
        "documents_returned": returned,
        "documents_expected": sum(expected.values()),
        "re_read": returned - len(changed),
        "reads_per_changed": round(returned / len(changed), 4) if changed else None,
        "previous_reads": previous_reads,
        "all_reads_per_changed": (
            round((returned + previous_reads) / len(changed), 4) if changed else None
        ),
        "count_queries": pipeline_queries + estimate_queries,
        "count_queries_pipeline": pipeline_queries,
        "count_reads": count_reads,
        "wall_seconds": round(done.wall_seconds, 3),
        "startup_seconds": None if startup is None else round(startup, 3),
        "startup_share": None if startup is None else round(startup / done.wall_seconds, 4),
        "pre_pipeline_seconds": None if built is None else round(built, 3),
        "peak_rss_bytes": done.peak_rss_bytes,
        "drift_days": drift,
        "status": audit.status.value,
    }
    record["ok"] = (
        audit.succeeded
        and not drift
        and {n: tables[n].counted.documents_returned for n in names}
        == {n: expected.get(n, 0) for n in names}
        and returned == sum(t.counted.documents_returned for t in tables.values())
    )
    if not record["ok"]:
        got = {n: tables[n].counted.documents_returned for n in names}
        log(f"{done.run_id}: not as expected: status {audit.status.value}, drift {drift}, "
            f"returned {got} vs expected {expected}")  # fmt: skip
    return record


def compare_with_rebuild(
    project: str, dataset: str, client: Any, specs: list[TableSpec], env: dict[str, str],
    log_dir: Path, read_time: datetime.datetime, today: datetime.date,
) -> dict[str, Any]:  # fmt: skip
    """A full rebuild through today at the last run's snapshot, into its own dataset
    (acting as of the next day, so today is a whole day to it), compared row for row."""
    fresh = f"{dataset}_rebuild"
    drop_dataset(client, fresh)
    when = day_start(today + datetime.timedelta(days=1)) + datetime.timedelta(minutes=1)
    args = ["--project", project, "--dataset", fresh, "--mode", "full",
            "--read_time", read_time.isoformat()]  # fmt: skip
    done = sync_run.run(args, env, log_dir, f"{dataset}-rebuild", now=when)
    if not done.ok:
        log(f"the full rebuild failed (exit {done.exit_code}): {done.error}")
        return {"equal": False, "error": done.error, "wall_seconds": round(done.wall_seconds, 2)}
    differing = [s.name for s in specs if table_rows(client, dataset, s.name)
                 != table_rows(client, fresh, s.name)]  # fmt: skip
    if differing:
        log(f"{dataset}: differs from a full rebuild in {', '.join(differing)}")
    return {
        "equal": not differing,
        "differing_tables": differing,
        "rows": done.summary and sum(t["written"] for t in done.tables().values()),
        "wall_seconds": round(done.wall_seconds, 2),
    }


def _stats(values: list[float]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "max": None}
    return {"median": round(statistics.median(present), 4), "max": round(max(present), 4)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per run (median, max) and over the day (totals) for one history."""
    done = [r for r in runs if "documents_returned" in r]
    changed = sum(r["documents_changed"] for r in done)
    returned = sum(r["documents_returned"] for r in done)
    previous = sum(r["previous_reads"] for r in done)
    keys = ("reads_per_changed", "all_reads_per_changed", "previous_reads", "documents_changed",
            "documents_returned", "count_queries",
            "count_reads", "wall_seconds", "startup_seconds", "startup_share",
            "pre_pipeline_seconds", "interval_seconds")  # fmt: skip
    return {
        "per_run": {k: _stats([r[k] for r in done]) for k in keys},
        "totals": {
            "runs": len(done),
            "documents_changed": changed,
            "documents_returned": returned,
            "re_read": returned - changed,
            "previous_reads": previous,
            "count_queries": sum(r["count_queries"] for r in done),
            "count_reads": sum(r["count_reads"] for r in done),
            "wall_seconds": round(sum(r["wall_seconds"] for r in done), 2),
        },
        "reads_per_changed": round(returned / changed, 4) if changed else None,
        "all_reads_per_changed": round((returned + previous) / changed, 4) if changed else None,
    }


def measure_intraday(args: argparse.Namespace, emu: Any, log_dir: Path) -> dict[str, Any]:
    """Every history length of the intraday scenario, one after the other, each on its own."""
    from google.cloud import firestore

    from pipelines.convert.table_spec import load_specs
    from pipelines.services import bigquery as bq

    env = {**os.environ, **emu.env()}
    db = firestore.Client(project=emu.project)
    client = bq.make_client(emu.project)
    specs = list(load_specs().values())
    histories = [
        measure_history(args, emu, db, client, specs, env, log_dir, days)
        for days in args.intraday_histories
    ]
    emu.reset_firestore()
    ratios = [h.get("reads_per_changed") for h in histories]
    worst = None if None in ratios else max(ratios, default=None)
    every = [h.get("all_reads_per_changed") for h in histories]
    worst_all = None if None in every else max(every, default=None)
    return {
        "hours": args.intraday_hours,
        "new_per_hour": args.intraday_new,
        "edits_per_hour": args.intraday_edits,
        "hour_seconds": args.intraday_hour_seconds,
        "clock_skew_seconds": round(sync_run_skew(args.intraday_hour_seconds).total_seconds(), 3),
        "docs": args.docs,
        "verify_days": args.verify_days,
        "runner": "in_memory (the pipeline's default DirectRunner set-up)",
        "histories": histories,
        "reads_per_changed": worst,
        "all_reads_per_changed": worst_all,
        "target": {
            "reads_per_changed_document": TARGET_READS_PER_CHANGED,
            "met": worst is not None and worst <= TARGET_READS_PER_CHANGED,
            "all_met": worst_all is not None and worst_all <= TARGET_READS_PER_CHANGED,
        },
        "ok": all(h["ok"] for h in histories),
    }
