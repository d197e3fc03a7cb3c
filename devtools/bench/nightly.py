"""The nightly scenario: the incremental nightly against the length of history held.

For each ``--nightly-histories`` length, on its own: *seed* ``--nightly-per-day``
documents a day up to yesterday and run a first nightly (a full rebuild,
untimed), then write the next night's changes: one day's new documents on today
(the next run's "yesterday"), and ``--nightly-edit-share`` of a day's documents
edited among the older ones of tables with a change field (some moved to another
day). *Run* the nightly, timed, acting as of an injected "now". *Verify* its
``_sync_runs`` row (documents needed: on the window's day, or changed since the
watermark, each once), its tables against Firestore day by day, and its count()
and document queries replayed as its plan ran them (:func:`replay_nightly`);
model the bytes its statements would be billed (:func:`scan`); then a separate
night with the same yesterday after ``--nightly-deletes`` hard deletes inside
the verify window: the days the drift check rebuilt and what it read. An
untimed 2-day round first warms the emulators up (``--no-nightly-warmup``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devtools.bench import data, log
from devtools.bench.data import History
from devtools.bench.scenario import Bench, Case, Scenario, Stop, ratio, within
from pipelines.convert.table_spec import TableSpec
from pipelines.plan import read_plan
from pipelines.services import bigquery as bq
from pipelines.services import firestore as fs
from pipelines.transforms.read_incremental import COUNT_THREADS, partition_time

UTC = datetime.UTC
TARGET_NIGHTLY_READS = 1.10
TARGET_NIGHTLY_WALL_RATIO = 1.5
#: Modelled bytes of the nightly's statements, longest / shortest history (issue: 1.2x).
TARGET_NIGHTLY_SCAN_RATIO = 1.2
#: Firestore bills a count() aggregation one read per this many documents, at least one.
COUNT_DOCS_PER_READ = 1000
#: What a table's entry in the report keeps of its ``_sync_runs`` entry.
ENTRY_KEYS = ("mode", "status", "documents_read", "documents_returned", "count_queries",
              "late_edits", "drift_days", "replaced_days", "rows_written")  # fmt: skip


@dataclass
class Night(Case):
    warmup: bool = False
    history: History = field(init=False)
    rng: random.Random = field(init=False)
    nights: list[datetime.datetime] = field(init=False)
    watermark: datetime.datetime = field(init=False)
    changed: set[str] = field(init=False)
    in_window: set[str] = field(init=False)


class Nightly(Scenario):
    key = "nightly"

    def cases(self, bench: Bench) -> list[Night]:
        self.today = datetime.datetime.now(UTC).date()
        warm = [2] if bench.args.nightly_warmup else []
        return [Night(n, (f"bench_nightly_{n}d",), {"history_days": n}, warmup=i < len(warm))
                for i, n in enumerate(warm + bench.args.nightly_histories)]  # fmt: skip

    def _night(self, bench: Bench, case: Night, name: str, now: datetime.datetime) -> dict:
        args = ["--verify_days", str(bench.args.verify_days)]
        done = bench.sync(f"nightly-{case.size}d{name}", *args, dataset=case.datasets[0], now=now)
        return done.record()

    def seed(self, bench: Bench, case: Night) -> None:
        from pipelines.plan.windows import CLOCK_SKEW

        a, days, today = bench.args, case.size, self.today
        if case.warmup:
            # The emulators' first runs are slower (JIT, caches): an untimed, unreported
            # 2-day round first, so that the shortest history is not the one paying for it.
            log("nightly: warm-up round (2 days, not reported)")
        case.rng = random.Random(data.SEED * 1000 + days)
        log(f"nightly {days}d: seeding {days} x {a.nightly_per_day} documents")
        yesterday = today - datetime.timedelta(days=1)
        h = case.history = data.seed_history(bench.db, bench.specs, days, a.nightly_per_day,
                                             yesterday)  # fmt: skip
        log(f"nightly {days}d: seeded {len(h.docs)} in {h.seed_seconds:.1f}s")
        # The clock's "now" is at most this; an injected "now" later the same day
        # keeps every run's yesterday fixed even if the benchmark crosses midnight.
        case.nights = [data.day_start(today + datetime.timedelta(days=i))
                       + datetime.timedelta(hours=23, minutes=59) for i in range(2)]  # fmt: skip
        first = self._night(bench, case, "-first", case.nights[0])
        case.result.update(
            documents_seeded=len(h.docs), seed_seconds=round(h.seed_seconds, 2),
            first_run={k: first[k] for k in ("wall_seconds", "ok", "error")},
        )  # fmt: skip
        if not first["ok"]:
            raise Stop
        case.watermark = bench.audit(case.datasets[0], first["run_id"])["read_time"] - CLOCK_SKEW
        # The next night: yesterday's new documents, and edits of older ones.
        new = data.add_new_day(bench.db, bench.specs, h, today)
        edits = max(1, round(a.nightly_per_day * a.nightly_edit_share))
        edited, moved = data.edit_old_documents(bench.db, h, edits, case.rng)
        case.changed = {p for p, d in h.docs.items() if p in edited or (
            d.spec.change_field and p in new and d.at >= case.watermark)}  # fmt: skip
        case.in_window = {p for p, d in h.docs.items() if d.day == today}
        case.result.update(documents_in_window=len(case.in_window),
                           documents_changed=len(case.changed), documents_new=len(new),
                           documents_edited=len(edited), documents_moved=len(moved),
                           documents_needed=len(case.in_window | case.changed))  # fmt: skip
        log(f"nightly {days}d: +{len(new)} new, {len(edited)} edited ({len(moved)} moved); "
            f"needed {case.result['documents_needed']}")  # fmt: skip

    def run(self, bench: Bench, case: Night) -> None:
        case.result["run"] = self._night(bench, case, "", case.nights[1])
        if not case.result["run"]["ok"]:
            raise Stop

    def verify(self, bench: Bench, case: Night) -> None:
        r, dataset, second = case.result, case.datasets[0], case.result["run"]
        audit = bench.audit(dataset, second["run_id"])
        tables = audit["tables"]
        # The drift check's days: the --verify_days up to yesterday (= today here), less the window.
        verify = [self.today - datetime.timedelta(days=i)
                  for i in range(bench.args.verify_days - 1, 0, -1)]  # fmt: skip
        counts, reads = replay_nightly(bench.project, bench.specs, [self.today], verify,
                                       case.watermark, audit["read_time"])  # fmt: skip
        held = data.rows_per_table_day(bench.client, dataset, bench.specs)
        expected = case.history.expected_rows(bench.specs)
        needed, returned = r["documents_needed"], second["documents_returned"]
        returned_audit = sum(t["documents_returned"] for t in tables.values())
        read_audit = sum(t["documents_read"] for t in tables.values())
        previous = sum(int(t.get("previous_reads") or 0) for t in tables.values())
        r.update(
            documents_returned=returned, documents_returned_audit=returned_audit,
            documents_read_audit=read_audit, reads_per_needed=ratio(returned, needed),
            reads_per_needed_audit=ratio(returned_audit, needed), previous_reads=previous,
            all_reads_per_needed=ratio(returned_audit + previous, needed),
            scan=scan(bench.client, dataset, bench.specs, tables),
            count_queries=sum(t["count_queries"] for t in tables.values()),
            count_reads=counts["billed_reads"], count_replay=counts, read_replay=reads,
            rows_staged=sum(t["rows_written"] for t in tables.values()),
            wall_seconds=second["wall_seconds"], modes=sorted({t["mode"] for t in tables.values()}),
            drift_days={n: t["drift_days"] for n, t in tables.items() if t["drift_days"]},
            tables={n: {k: t.get(k) for k in ENTRY_KEYS} for n, t in tables.items()},
            tables_equal_firestore=held == expected,
        )  # fmt: skip
        r["ok"] = (audit["status"] == "succeeded" and r["modes"] == ["incremental"]
                   and held == expected and read_audit == needed and returned == returned_audit
                   and r["count_queries"] == counts["queries"])  # fmt: skip
        if not r["ok"]:
            log(f"nightly {case.size}d: not as expected: status {audit['status']}, modes "
                f"{r['modes']}, tables equal {held == expected}, read {read_audit} vs needed "
                f"{needed}, returned {returned} vs audit {returned_audit}, counts "
                f"{r['count_queries']} vs replayed {counts['queries']}")  # fmt: skip
        if bench.args.nightly_deletes and not case.warmup:
            r["deletes"] = self._deletes(bench, case)
            r["ok"] = r["ok"] and r["deletes"]["ok"]

    def _deletes(self, bench: Bench, case: Night) -> dict[str, Any]:
        """A separate night of hard deletes in a table without a change field: the same
        yesterday (nothing new to replace), so what it reads is the drift check's."""
        a, dataset, h = bench.args, case.datasets[0], case.history
        deleted = data.delete_in_verify_window(bench.db, h, self.today, a.verify_days,
                                          a.nightly_deletes, case.rng)  # fmt: skip
        third = self._night(bench, case, "-deletes", case.nights[1])
        deletes: dict[str, Any] = {"deleted": len(deleted), "run": third, "ok": third["ok"]}
        if not third["ok"]:
            return deletes
        after = bench.audit(dataset, third["run_id"])
        spec = next(s for s in bench.specs if s.collection == "interactions")
        entry = after["tables"][spec.name]
        days_hit = sorted({d.day.isoformat() for d in deleted})
        expected_read = sum(h.per_table_day()[spec.name][d] for d in days_hit)
        equal = data.rows_per_table_day(bench.client, dataset, bench.specs) == h.expected_rows(
            bench.specs
        )
        deletes.update(
            table=spec.name, drift_days=entry["drift_days"],
            drift_rebuild_read=entry["documents_returned"], drift_rebuild_expected=expected_read,
            documents_returned=third["documents_returned"],
            count_queries=sum(t["count_queries"] for t in after["tables"].values()),
            wall_seconds=third["wall_seconds"], tables_equal_firestore=equal,
        )  # fmt: skip
        deletes["ok"] = (after["status"] == "succeeded" and entry["drift_days"] == days_hit
                         and entry["documents_returned"] == expected_read and equal)  # fmt: skip
        if not deletes["ok"]:
            log(f"nightly {case.size}d deletes: not as expected: status {after['status']}, drift "
                f"{entry['drift_days']} vs {days_hit}, read {entry['documents_returned']} vs "
                f"{expected_read}, tables equal {equal}")  # fmt: skip
        return deletes

    def record(self, bench: Bench, cases: list[Night]) -> dict[str, Any]:
        a = bench.args
        warm = next((c.result for c in cases if c.warmup), None)
        histories = [c.result for c in cases if not c.warmup]
        measured = [h for h in histories if h.get("reads_per_needed") is not None]
        shortest, longest = min(a.nightly_histories), max(a.nightly_histories)

        def longest_over(figure: dict[int, float], shortest: int) -> float | None:
            if longest == shortest or not figure.get(shortest) or longest not in figure:
                return None
            return round(figure[longest] / figure[shortest], 3)

        walls = {h["history_days"]: h["wall_seconds"] for h in measured}
        scans = {h["history_days"]: h["scan"]["bytes"] for h in measured}
        wall_ratio = longest_over(walls, shortest)
        scan_ratio = longest_over(scans, shortest)
        # The same ratio from the shortest history the drift check's window fits in:
        # a shorter table has fewer days to verify, so the two differ by that work.
        covering = [d for d in scans if d >= a.verify_days and d != longest and scans[d]]
        windowed = (
            {"from_days": min(covering), "ratio": longest_over(scans, min(covering))}
            if covering and longest in scans else None
        )  # fmt: skip
        worst = {
            k: max((h[k] for h in measured), default=None)
            for k in ("reads_per_needed", "reads_per_needed_audit", "all_reads_per_needed")
        }
        return {
            "scenario": "incremental", "per_day": a.nightly_per_day,
            "edit_share": a.nightly_edit_share, "moved_share": data.MOVED_SHARE,
            "deletes": a.nightly_deletes, "verify_days": a.verify_days,
            "runner": "in_memory (the pipeline's default DirectRunner set-up)",
            "today": self.today.isoformat(),
            "reads_per_document": worst["reads_per_needed"],
            "reads_per_document_audit": worst["reads_per_needed_audit"],
            "wall_ratio_longest_to_shortest": wall_ratio,
            "scan_ratio_longest_to_shortest": scan_ratio,
            "scan_ratio_within_verify_window": windowed,
            "worst_all_reads_per_needed": worst["all_reads_per_needed"],
            "warmup": warm and {k: warm.get(k) for k in ("history_days", "wall_seconds", "ok")},
            "histories": histories,
            "targets": {
                "reads_per_needed_document": TARGET_NIGHTLY_READS,
                "wall_ratio_longest_to_shortest": TARGET_NIGHTLY_WALL_RATIO,
                "reads_met": within(worst["reads_per_needed"], TARGET_NIGHTLY_READS),
                "wall_met": within(wall_ratio, TARGET_NIGHTLY_WALL_RATIO),
                "scan_ratio_longest_to_shortest": TARGET_NIGHTLY_SCAN_RATIO,
                "scan_met": within(scan_ratio, TARGET_NIGHTLY_SCAN_RATIO),
            },
            "ok": len(measured) == len(histories) and all(h["ok"] for h in histories),
        }  # fmt: skip


SCENARIO = Nightly()


# --------------------------------------------------------------------------------------
# The bytes its statements would be billed: pipelines.services.bigquery's model of that SQL
# (commit_scans, drift_scans), over each day's column sizes in the run's tables.
# --------------------------------------------------------------------------------------


def column_bytes_per_day(
    client: Any, dataset: str, table: str, partition_column: str
) -> dict[str, tuple[int, int]]:
    """Per day: (bytes of the partition column, bytes of ``_document_path``)."""
    sql = (
        f"SELECT CAST(DATE(`{partition_column}`) AS STRING) AS day, COUNT(*) AS n, "
        f"SUM(BYTE_LENGTH(`_document_path`)) AS path_bytes "
        f"FROM `{client.project}.{dataset}.{table}` GROUP BY day"
    )
    out = {}
    for row in client.query(sql).result():
        n = int(row["n"])
        path = int(row["path_bytes"] or 0) + n * read_plan.STRING_OVERHEAD
        out[row["day"]] = (n * read_plan.FIXED_BYTES, path)
    return out


def statement_bytes(entry: Mapping[str, Any], sizes: Mapping[str, tuple[int, int]]) -> dict:
    """One table's statements in one run, from its ``_sync_runs`` entry: ``drift`` (the
    drift check before the read), ``commit``, their sum ``bytes``, and ``unlocated``: the
    same run had its delete scanned the table (the statement before ``delete_days``)."""
    replaced = entry.get("replaced_days") or ()
    incremental = entry.get("mode") == "incremental"
    commit = bq.commit_scans(replaced, entry.get("delete_days"), incremental=incremental)
    committed = bq.scanned_bytes(commit, sizes)
    if not incremental:  # a full run: no drift check, and its delete scans the table anyway
        return {"bytes": committed, "commit": committed, "drift": 0, "unlocated": None}
    verified, lookup = entry.get("verified_days") or (), entry.get("lookup_days")
    drift = bq.scanned_bytes(bq.drift_scans(verified, verified if lookup is None else lookup),
                             sizes)  # fmt: skip
    unlocated = bq.scanned_bytes(bq.commit_scans(replaced, None, incremental=True), sizes)
    scanned = [s.days for s in commit]
    return {
        "bytes": committed + drift, "commit": committed, "drift": drift,
        "unlocated": unlocated + drift, "partitions": len(sizes),
        "partitions_scanned": len(sizes) if None in scanned else len(frozenset().union(*scanned)),
    }  # fmt: skip


def scan(
    client: Any, dataset: str, specs: Iterable[TableSpec], entries: Mapping[str, Any]
) -> dict[str, Any]:
    """Per table and in total, the modelled bytes of a run's statements."""
    tables = {
        s.name: statement_bytes(entries[s.name], column_bytes_per_day(
            client, dataset, s.name, s.partition_column))
        for s in specs if s.name in entries
    }  # fmt: skip
    total = {k: sum(t[k] for t in tables.values()) for k in ("bytes", "commit", "drift")}
    return {**total, "unlocated": sum(t["unlocated"] or t["bytes"] for t in tables.values()),
            "tables": tables}  # fmt: skip


# --------------------------------------------------------------------------------------
# Its Firestore queries again, timed, as its plan ran them. The emulator scans the
# collection for every query and count(), so a nightly's wall time is mostly its
# queries. After the run the planner (pipelines.read_plan.plan_incremental) is asked
# again at the run's snapshot (Firestore is as it was), with real counts, and exactly
# what it counts (IncrementalPlan.count_spans) and reads is run, table after table:
# counts COUNT_THREADS in flight per round as the run's plan asks them, document
# queries one after the other. The planner's drift check compares with what BigQuery
# held before the run, which is gone; what it counts does not depend on that (every
# verified day is counted in its first round), and only the change query and the
# window's range reads are replayed, not the reads of drifted days.
# --------------------------------------------------------------------------------------


def billed_reads(counted: int) -> int:
    return max(1, math.ceil(counted / COUNT_DOCS_PER_READ))


def replay_nightly(
    project: str, specs: Sequence[TableSpec], window: Sequence[datetime.date],
    verify: Sequence[datetime.date], watermark: datetime.datetime,
    read_time: datetime.datetime, parts: int = 8,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """``(counts, reads)`` of a nightly over ``window`` with ``verify`` days checked;
    ``watermark`` applies to the tables with a change field (``parts``: ``--num_splits``)."""
    client, retry = fs.make_client(project), fs.read_retry(120.0)
    totals: collections.Counter[str] = collections.Counter()
    for spec in specs:
        tracked = watermark if spec.change_field else None
        _replay_table(client, retry, spec, window, verify, tracked, read_time, parts, totals)
    counts = {"queries": totals["count_queries"], "billed_reads": totals["billed_reads"],
              "documents_counted": totals["documents_counted"],
              "seconds": round(totals["count_seconds"], 3)}  # fmt: skip
    reads = {"queries": totals["read_queries"], "documents": totals["documents"],
             "seconds": round(totals["read_seconds"], 3)}  # fmt: skip
    return counts, reads


def _replay_table(
    client: Any, retry: Any, spec: TableSpec, window: Sequence[datetime.date],
    verify: Sequence[datetime.date], watermark: datetime.datetime | None,
    read_time: datetime.datetime, parts: int, totals: collections.Counter[str],
) -> None:  # fmt: skip
    counted: list[int] = []

    def count(field_name: str, spans: Sequence[tuple[Any, Any]]) -> list[int]:
        def one(span: tuple[Any, Any]) -> int:
            return fs.count_range(client, spec, field_name, *span, read_time, retry)

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(COUNT_THREADS) as pool:
            found = list(pool.map(one, spans))
        totals["count_seconds"] += time.perf_counter() - t0
        counted.extend(found)
        return found

    def read(ranges: Sequence[Any]) -> list[Any]:
        t0 = time.perf_counter()
        docs = [doc for r in ranges for doc in fs.stream_documents(
            fs.field_range_query(client, spec, r.field, r.start, r.end), spec.name, read_time,
            retry)]  # fmt: skip
        totals["read_seconds"] += time.perf_counter() - t0
        totals["read_queries"] += len(ranges)
        totals["documents"] += len(docs)
        return docs

    changed_times = []
    if watermark is not None:  # the change query, counted first to size it, as the run does
        field_name = data.change_field(spec)
        (changes,) = count(field_name, [(watermark, None)])
        changed = read(read_plan.change_ranges(spec.name, field_name, watermark, read_time,
                                     read_plan.slices_for(changes, parts)))  # fmt: skip
        changed_times = [t for doc in changed if (t := partition_time(spec, doc)) is not None]

    field_name = data.partition_field(spec)
    planned = read_plan.plan_incremental(
        spec.name, field_name, window, verify, watermark, changed_times,
        lambda spans: count(field_name, spans),
        lambda days: {}, lambda days: {},  # BigQuery before the run: see above
        parts,
    )  # fmt: skip
    queries = len(planned.count_spans) + (watermark is not None)
    if queries != len(counted):
        raise RuntimeError(f"{spec.name}: plan names {queries} counts, {len(counted)} were run")
    bounds = [read_plan.day_bounds(day) for day in window]
    read([r for r in planned.reads if any(lo <= r.start and r.end <= hi for lo, hi in bounds)])
    totals["count_queries"] += queries
    totals["documents_counted"] += sum(counted)
    totals["billed_reads"] += sum(billed_reads(n) for n in counted)
