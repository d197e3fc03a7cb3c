"""The intraday scenario: hourly ``--intraday`` runs over a day with a steady trickle of changes.

For each ``--intraday-histories`` length, on its own: *seed* ``--docs`` documents
spread over the history up to yesterday and run the nightly once (a full
rebuild, untimed: the baseline every intraday run starts from); *run*
``--intraday-hours`` intraday runs, one per simulated hour, while a writer thread
(:class:`Trickle`) writes ``--intraday-new`` new documents (over the five
collections in the sample app's mix, partition and change fields = the moment of
writing, as the app writes them) and ``--intraday-edits`` edits of existing
documents of the tables with a change field (``updated_at`` = that moment) into
every hour; *verify* each run against what the writer knows it must return
(every document whose change or partition value is at or after its ``since``),
and the tables after the last run against a full rebuild (``--mode full``) at
its snapshot, row for row.

An hour is compressed into ``--intraday-hour-seconds`` real seconds, because
every run's Firestore snapshot is the real clock (:mod:`.sync_run`). The
planner's clock allowance (``CLOCK_SKEW``, 5 minutes: the change query starts
that long before the last snapshot) is scaled by the same factor, so it covers
the same share of an hour as in production (1/12); at its real length every run
would re-read the previous 5 real minutes, that is several compressed hours.
The writes are spread evenly over each hour, so about that share of an hour's
changes is read again by the next run: the allowance's cost, reported as
"re-read".

Per run, from its ``_sync_runs`` row and the summary it reported: documents
returned, the documents created or changed between the previous run's snapshot
and this one's (a document written twice counts once), their ratio, ``count()``
aggregations (the pipeline's, from ``_sync_runs``, plus the snapshot estimate's
one per table) and their billed reads (one per 1,000 documents counted, at least
one, from what the benchmark knows Firestore held), wall time and start-up:
launch to the run's first Firestore request (the reachability probe; before it
only the interpreter, imports and option parsing run), and launch to the Beam
graph built (planning done).
"""

from __future__ import annotations

import collections
import datetime
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devtools import sample_data
from devtools.bench import data, log
from devtools.bench.data import History
from devtools.bench.nightly import billed_reads
from devtools.bench.scenario import Bench, Case, Scenario, Stop, ratio, within
from pipelines.convert.table_spec import TableSpec

UTC = datetime.UTC
ONE_HOUR = datetime.timedelta(hours=1)
TARGET_READS_PER_CHANGED = 1.10
#: The per-run figures summarised as median (max) over a history's runs.
PER_RUN = ("reads_per_changed", "all_reads_per_changed", "previous_reads", "documents_changed",
           "documents_returned", "count_queries", "count_reads", "wall_seconds", "startup_seconds",
           "startup_share", "pre_pipeline_seconds", "interval_seconds")  # fmt: skip


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
        args: Any, rng: random.Random,
    ) -> None:  # fmt: skip
        super().__init__(name="intraday-trickle", daemon=True)
        self.db, self.history, self.rng = db, history, rng
        self.by_collection = data.spec_by_collection(specs)
        self.hour_seconds = args.intraday_hour_seconds
        new, edits = args.intraday_new, args.intraday_edits
        self.per_hour = max(1, new + edits)
        self.kinds: list[str] = []
        for _ in range(args.intraday_hours):
            hour = ["new"] * new + ["edit"] * edits
            rng.shuffle(hour)
            self.kinds += hour
        self.new_docs = sample_data.documents(args.intraday_hours * new or 1, 1, today, 1,
                                              data.SEED + history.days)  # fmt: skip
        self.editable = sorted(p for p, d in history.docs.items() if d.spec.change_field)
        self.base = {t: collections.Counter(c) for t, c in history.per_table_day().items()}
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
        path, doc = next(self.new_docs)
        spec = self.by_collection[path.split("/")[2]]
        now = datetime.datetime.now(UTC)
        doc[data.partition_field(spec)] = now
        if data.change_field(spec):
            doc[data.change_field(spec)] = now
        result = self.db.document(path).set(doc)
        self.history.docs[path] = data.Doc(path, spec, now.date(), now)
        if spec.change_field:
            self.editable.append(path)
        return Change(path, spec.name, "new", now, result.update_time)

    def _edit(self) -> Change:
        path = self.rng.choice(self.editable)
        spec = self.history.docs[path].spec
        now = datetime.datetime.now(UTC)
        update = {
            data.change_field(spec): now,
            data.EDIT_FIELD.get(spec.collection, "description"): f"edited {now:%H:%M:%S.%f}",
        }
        result = self.db.document(path).update(update)
        return Change(path, spec.name, "edit", now, result.update_time)

    def held_at(self, read_time: datetime.datetime) -> dict[str, collections.Counter[str]]:
        """Documents per table and day Firestore held at ``read_time``: the seeded history
        and the new documents committed by then (edits move no document)."""
        out = {t: collections.Counter(days) for t, days in self.base.items()}
        for c in list(self.changes):  # a copy: the thread is still appending
            if c.kind == "new" and c.committed <= read_time:
                doc = self.history.docs[c.path]
                out.setdefault(c.table, collections.Counter())[doc.day.isoformat()] += 1
        return out

    def expected(
        self, read_time: datetime.datetime, since: dict[str, datetime.datetime]
    ) -> dict[str, int]:
        """Per table, the documents a run at ``read_time`` must return: those whose value
        at that snapshot (their last write committed by then) is at or after its ``since``."""
        latest = {c.path: c for c in list(self.changes) if c.committed <= read_time}
        found = [c.table for c in latest.values() if c.value >= since[c.table]]
        return dict(collections.Counter(found))


@dataclass
class Day(Case):
    today: datetime.date = field(init=False)
    history: History = field(init=False)
    previous: datetime.datetime = field(init=False)


def clock_skew(hour_seconds: float) -> datetime.timedelta:
    """The planner's clock allowance scaled to a compressed hour: the same share of it."""
    from pipelines.plan.windows import CLOCK_SKEW

    return CLOCK_SKEW * (hour_seconds / ONE_HOUR.total_seconds())


class Intraday(Scenario):
    key = "intraday"

    def cases(self, bench: Bench) -> list[Day]:
        return [Day(n, (f"bench_intraday_{n}d", f"bench_intraday_{n}d_rebuild"),
                    {"history_days": n, "runs": []})
                for n in bench.args.intraday_histories]  # fmt: skip

    def seed(self, bench: Bench, case: Day) -> None:
        """The history, and the nightly every intraday run starts from."""
        days = case.size
        case.today = datetime.datetime.now(UTC).date()
        per_day = max(1, bench.args.docs // days)
        log(f"intraday {days}d: seeding {days} x {per_day} documents")
        h = case.history = data.seed_history(bench.db, bench.specs, days, per_day,
                                             case.today - datetime.timedelta(days=1))  # fmt: skip
        first = bench.sync(f"intraday-{days}d-nightly", "--verify_days",
                           str(bench.args.verify_days), dataset=case.datasets[0],
                           now=datetime.datetime.now(UTC)).record()  # fmt: skip
        case.result.update(
            documents_seeded=len(h.docs), seed_seconds=round(h.seed_seconds, 2),
            nightly={k: first[k] for k in ("wall_seconds", "ok", "error")},
        )  # fmt: skip
        if not first["ok"]:
            raise Stop
        case.previous = bench.audit(case.datasets[0], first["run_id"])["read_time"]

    def run(self, bench: Bench, case: Day) -> None:
        """The hourly runs while the trickle writes; each checked as it ends."""
        a, days, dataset, r = bench.args, case.size, case.datasets[0], case.result
        skew = clock_skew(a.intraday_hour_seconds)
        rng = random.Random(data.SEED * 1000 + days)
        trickle = Trickle(bench.db, bench.specs, case.history, case.today, a, rng)
        names = [s.name for s in bench.specs]
        # What each table's change query starts from (windows.plan_intraday): the watermark,
        # or today's midnight for a table without a change field before its first intraday run.
        midnight = data.day_start(case.today)
        since = {s.name: case.previous - skew if s.change_field else midnight for s in bench.specs}
        t0 = trickle.begin()
        try:
            for hour in range(1, a.intraday_hours + 1):
                time.sleep(max(0.0, t0 + hour * a.intraday_hour_seconds - time.time()))
                if datetime.datetime.now(UTC).date() != case.today:
                    raise Stop("the day (UTC) changed during the runs; run it again after midnight")
                name = f"intraday-{days}d-{hour:02d}"
                done = bench.sync(name, "--intraday", "--verify_days", str(a.verify_days),
                                  dataset=dataset, clock_skew=skew)  # fmt: skip
                if not (done.ok and done.run_id):
                    r["runs"].append({"hour": hour, "ok": False, "error": done.error})
                    raise Stop
                audit = bench.audit(dataset, done.run_id)
                r["runs"].append(self._run_record(hour, done, audit, trickle, case.previous,
                                                  since, a.verify_days, names))  # fmt: skip
                since = {n: audit["read_time"] - skew for n in names}
                case.previous = audit["read_time"]
        finally:
            trickle.stop.set()
            trickle.join()
            r.update(self.summarise(r["runs"]))
        if trickle.error is not None:
            raise Stop(f"the trickle's writes failed: {trickle.error}")

    def _run_record(
        self, hour: int, done: Any, audit: dict[str, Any], trickle: Trickle,
        previous: datetime.datetime, since: dict[str, datetime.datetime], verify_days: int,
        names: list[str],
    ) -> dict[str, Any]:  # fmt: skip
        """One run's figures, and whether it read exactly what the writes say it must."""
        snapshot, tables = audit["read_time"], audit["tables"]
        window = [c for c in list(trickle.changes) if previous < c.committed <= snapshot]
        changed = {c.path for c in window}
        expected = trickle.expected(snapshot, since)
        returned = done.documents_returned() or 0
        held = trickle.held_at(snapshot)
        verify = [(snapshot.date() - datetime.timedelta(days=i)).isoformat()
                  for i in range(verify_days + 1)]  # fmt: skip
        count_reads = sum(
            sum(billed_reads(held.get(n, {}).get(day, 0)) for day in verify)
            + 2 * billed_reads(tables[n]["documents_returned"])  # the estimate's and the run's
            for n in names
        )
        pipeline_queries = sum(t["count_queries"] for t in tables.values())
        # The located delete reads each changed document's previous version (one read each).
        previous_reads = sum(int(t.get("previous_reads") or 0) for t in tables.values())
        startup, built = done.seconds_to("first_firestore_read"), done.seconds_to("pipeline_built")
        drift = {n: t["drift_days"] for n, t in tables.items() if t.get("drift_days")}
        got = {n: tables[n]["documents_returned"] for n in names}
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
            "reads_per_changed": ratio(returned, len(changed)),
            "previous_reads": previous_reads,
            "all_reads_per_changed": ratio(returned + previous_reads, len(changed)),
            # + the snapshot estimate's, which counts each table's change query once
            "count_queries": pipeline_queries + len(names),
            "count_queries_pipeline": pipeline_queries,
            "count_reads": count_reads,
            "wall_seconds": round(done.wall_seconds, 3),
            "startup_seconds": None if startup is None else round(startup, 3),
            "startup_share": ratio(startup, done.wall_seconds),
            "pre_pipeline_seconds": None if built is None else round(built, 3),
            "peak_rss_bytes": done.peak_rss_bytes,
            "drift_days": drift,
            "status": audit["status"],
            "ok": audit["status"] == "succeeded" and not drift
            and got == {n: expected.get(n, 0) for n in names}
            and returned == sum(t["documents_returned"] for t in tables.values()),
        }  # fmt: skip
        if not record["ok"]:
            log(f"{done.run_id}: not as expected: status {audit['status']}, drift {drift}, "
                f"returned {got} vs expected {expected}")  # fmt: skip
        return record

    def verify(self, bench: Bench, case: Day) -> None:
        """Every run returned what the writes say it must; then the tables equal a rebuild."""
        r = case.result
        if not all(run["ok"] for run in r["runs"]):
            raise Stop
        r["rebuild"] = compare_with_rebuild(bench, case.datasets[0], case.previous, case.today)
        r["ok"] = r["rebuild"]["equal"] and bool(r["runs"])

    @staticmethod
    def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
        """Per run (median, max) and over the day (totals) for one history."""
        done = [r for r in runs if "documents_returned" in r]

        def stats(key: str) -> dict[str, float | None]:
            present = [r[key] for r in done if r[key] is not None]
            if not present:
                return {"median": None, "max": None}
            return {"median": round(statistics.median(present), 4), "max": round(max(present), 4)}

        total = {k: sum(r[k] for r in done) for k in ("documents_changed", "documents_returned",
                                                      "previous_reads", "count_queries",
                                                      "count_reads", "wall_seconds")}  # fmt: skip
        changed, returned = total["documents_changed"], total["documents_returned"]
        totals = {"runs": len(done), "documents_changed": changed, "documents_returned": returned,
                  "re_read": returned - changed, "previous_reads": total["previous_reads"],
                  "count_queries": total["count_queries"], "count_reads": total["count_reads"],
                  "wall_seconds": round(total["wall_seconds"], 2)}  # fmt: skip
        return {
            "per_run": {k: stats(k) for k in PER_RUN},
            "totals": totals,
            "reads_per_changed": ratio(returned, changed),
            "all_reads_per_changed": ratio(returned + total["previous_reads"], changed),
        }

    def record(self, bench: Bench, cases: list[Day]) -> dict[str, Any]:
        a, histories = bench.args, [c.result for c in cases]
        ratios = [h.get("reads_per_changed") for h in histories]
        worst = None if None in ratios else max(ratios, default=None)
        every = [h.get("all_reads_per_changed") for h in histories]
        worst_all = None if None in every else max(every, default=None)
        return {
            "hours": a.intraday_hours,
            "new_per_hour": a.intraday_new,
            "edits_per_hour": a.intraday_edits,
            "hour_seconds": a.intraday_hour_seconds,
            "clock_skew_seconds": round(clock_skew(a.intraday_hour_seconds).total_seconds(), 3),
            "docs": a.docs,
            "verify_days": a.verify_days,
            "runner": "in_memory (the pipeline's default DirectRunner set-up)",
            "histories": histories,
            "reads_per_changed": worst,
            "all_reads_per_changed": worst_all,
            "target": {
                "reads_per_changed_document": TARGET_READS_PER_CHANGED,
                "met": within(worst, TARGET_READS_PER_CHANGED),
                "all_met": within(worst_all, TARGET_READS_PER_CHANGED),
            },
            "ok": all(h["ok"] for h in histories),
        }


SCENARIO = Intraday()


def compare_with_rebuild(
    bench: Bench, dataset: str, read_time: datetime.datetime, today: datetime.date,
    specs: list[TableSpec] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A full rebuild through today at the given snapshot, into ``<dataset>_rebuild``
    (acting as of the next day, so today is a whole day to it), compared row for row."""
    fresh, specs = f"{dataset}_rebuild", specs or bench.specs
    bench.drop(fresh)
    when = data.day_start(today + datetime.timedelta(days=1)) + datetime.timedelta(minutes=1)
    done = bench.sync(f"{dataset}-rebuild", "--mode", "full", "--read_time", read_time.isoformat(),
                      dataset=fresh, now=when)  # fmt: skip
    if not done.ok:
        return {"equal": False, "error": done.error, "wall_seconds": round(done.wall_seconds, 2)}
    differing = [s.name for s in specs if data.table_rows(bench.client, dataset, s.name)
                 != data.table_rows(bench.client, fresh, s.name)]  # fmt: skip
    if differing:
        log(f"{dataset}: differs from a full rebuild in {', '.join(differing)}")
    return {
        "equal": not differing,
        "differing_tables": differing,
        "rows": done.summary and sum(t["written"] for t in done.tables().values()),
        "wall_seconds": round(done.wall_seconds, 2),
    }
