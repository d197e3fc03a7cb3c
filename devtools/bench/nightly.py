"""The nightly scenario: the incremental nightly against the length of history held.

For each ``--nightly-histories`` length, on its own (Firestore emptied, a fresh
dataset): seed ``--nightly-per-day`` documents a day up to yesterday, run a
first nightly (a full rebuild, untimed); then the next night: one day's new
documents on today (the next run's "yesterday"), ``--nightly-edit-share`` of a
day's documents edited among the older ones of tables with a change field
(some moved to another day), and the nightly, timed, acting as of an injected
"now". Reported per history: documents needed (on the window's day, or changed
since the watermark, each once), documents returned per needed document,
count() aggregations and their billed reads, rows staged, wall time, and the
same queries replayed as the plan ran them (:mod:`.replay`). Then a separate
night with the same yesterday after ``--nightly-deletes`` hard deletes inside
the verify window: the days the drift check rebuilt and what it read. Every
run's tables are checked against what Firestore holds, day by day; every
figure is the run's summary or its ``_sync_runs`` row.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
from pathlib import Path
from typing import Any

from devtools.bench import log, scan_bytes, sync_run
from devtools.bench.datasets import drop_dataset, rows_per_table_day
from devtools.bench.replay import replay_nightly
from devtools.bench.seeding import (
    MOVED_SHARE,
    SEED,
    History,
    add_new_day,
    day_start,
    delete_in_verify_window,
    edit_old_documents,
    seed_history,
)
from pipelines.convert.table_spec import TableSpec
from pipelines.state.verdict import TableVerdict

UTC = datetime.UTC
TARGET_NIGHTLY_READS = 1.10
TARGET_NIGHTLY_WALL_RATIO = 1.5
#: Modelled bytes of the nightly's statements, longest / shortest history (issue: 1.2x).
TARGET_NIGHTLY_SCAN_RATIO = 1.2
#: What a table's entry in the report keeps of its ``_sync_runs`` entry.
def entry_figures(t: TableVerdict) -> dict[str, Any]:
    """The figures of a table's ``_sync_runs`` entry the report keeps."""
    c = t.counted
    return {"mode": t.mode, "status": t.status.value, "documents_read": c.documents_read,
            "documents_returned": c.documents_returned, "count_queries": c.count_queries,
            "late_edits": c.late_edits, "drift_days": sync_run.iso(c.drift_days),
            "replaced_days": sync_run.iso(t.replaced_days),
            "rows_written": c.rows_written}  # fmt: skip


def run_nightly(
    project: str, dataset: str, now: datetime.datetime, env: dict[str, str], log_dir: Path,
    name: str, extra: list[str],
) -> dict[str, Any]:  # fmt: skip
    """One run without dates (the nightly) as a subprocess, acting as of ``now``."""
    args = ["--project", project, "--dataset", dataset, *extra]
    done = sync_run.run(args, env, log_dir, name, now=now)
    ok = done.ok and done.run_id is not None
    if not ok:
        log(f"{name} failed (exit {done.exit_code}): {done.error}")
    return {
        "wall_seconds": round(done.wall_seconds, 3),
        "peak_rss_bytes": done.peak_rss_bytes,
        "exit_code": done.exit_code,
        "run_id": done.run_id,
        "documents_returned": done.documents_returned(),
        "error": None if ok else done.error or "the run reported no run id",
        "ok": ok,
    }


def expected_rows(history: History, specs: list[TableSpec]) -> dict[str, dict[str, int]]:
    """Rows per table and day a full rebuild would give: Firestore as the benchmark wrote it."""
    per = history.per_table_day()
    return {s.name: dict(per.get(s.name, {})) for s in specs}


def measure_history(
    args: argparse.Namespace, emu: Any, db: Any, client: Any, specs: list[TableSpec],
    env: dict[str, str], log_dir: Path, days: int, today: datetime.date,
) -> dict[str, Any]:  # fmt: skip
    """Seed ``days`` of history, a first nightly (untimed), then the next night (timed),
    and a night of hard deletes (timed apart)."""
    from pipelines.plan.windows import CLOCK_SKEW

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
    first_audit = sync_run.audit_entries(client, dataset, first["run_id"])
    watermark = first_audit.read_time - CLOCK_SKEW

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
    audit = sync_run.audit_entries(client, dataset, second["run_id"])
    tables = audit.tables
    returned_audit = sum(t.counted.documents_returned for t in tables.values())
    read_audit = sum(t.counted.documents_read for t in tables.values())
    count_queries = sum(t.counted.count_queries for t in tables.values())
    # The drift check's days: the --verify_days up to yesterday (= today here), less the window.
    verify = [today - datetime.timedelta(days=i) for i in range(args.verify_days - 1, 0, -1)]
    counts, reads = replay_nightly(project, specs, [today], verify, watermark, audit.read_time)
    held = rows_per_table_day(client, dataset, specs)
    expected = expected_rows(history, specs)
    returned = second["documents_returned"]
    previous = sum(t.counted.previous_reads for t in tables.values())
    scan = scan_bytes.run_bytes(client, dataset, specs, tables)
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
        previous_reads=previous,
        all_reads_per_needed=round((returned_audit + previous) / needed, 4),
        scan=scan,
        count_queries=count_queries,
        count_reads=counts["billed_reads"],
        count_replay=counts,
        read_replay=reads,
        rows_staged=sum(t.counted.rows_written for t in tables.values()),
        wall_seconds=second["wall_seconds"],
        modes=sorted({t.mode for t in tables.values() if t.mode is not None}),
        drift_days={
            n: sync_run.iso(t.counted.drift_days) for n, t in tables.items() if t.counted.drift_days
        },
        tables={n: entry_figures(t) for n, t in tables.items()},
        tables_equal_firestore=held == expected,
    )
    ok = (
        audit.succeeded
        and result["modes"] == ["incremental"]
        and held == expected
        and read_audit == needed
        and returned == returned_audit
        and count_queries == counts["queries"]
    )
    if not ok:
        log(f"nightly {days}d: not as expected: status {audit.status.value}, modes "
            f"{result['modes']}, tables equal {held == expected}, read {read_audit} vs needed "
            f"{needed}, returned {returned} vs audit {returned_audit}, counts {count_queries} "
            f"vs replayed {counts['queries']}")  # fmt: skip

    if args.nightly_deletes:
        result["deletes"] = measure_deletes(
            args, project, db, client, specs, env, log_dir, history, today, night[1], rng
        )
        ok = ok and result["deletes"]["ok"]
    result["ok"] = ok
    if not args.keep_data:
        drop_dataset(client, dataset)
    return result


def measure_deletes(
    args: argparse.Namespace, project: str, db: Any, client: Any, specs: list[TableSpec],
    env: dict[str, str], log_dir: Path, history: History, today: datetime.date,
    now: datetime.datetime, rng: random.Random,
) -> dict[str, Any]:  # fmt: skip
    """A separate night of hard deletes in a table without a change field: the same
    yesterday (nothing new to replace), so what it reads is the drift check's."""
    days = history.days
    dataset = f"bench_nightly_{days}d"
    deleted = delete_in_verify_window(db, history, today, args.verify_days, args.nightly_deletes,
                                      rng)  # fmt: skip
    extra = ["--verify_days", str(args.verify_days)]
    third = run_nightly(project, dataset, now, env, log_dir, f"nightly-{days}d-deletes", extra)
    deletes: dict[str, Any] = {"deleted": len(deleted), "run": third, "ok": third["ok"]}
    if not third["ok"]:
        return deletes
    after = sync_run.audit_entries(client, dataset, third["run_id"])
    spec = next(s for s in specs if s.collection == "interactions")
    entry = after.tables[spec.name]
    drift_days = sync_run.iso(entry.counted.drift_days)
    days_hit = sorted({d.day.isoformat() for d in deleted})
    left = history.per_table_day()[spec.name]
    expected_read = sum(left[d] for d in days_hit)
    held = rows_per_table_day(client, dataset, specs)
    expected = expected_rows(history, specs)
    deletes.update(
        table=spec.name,
        drift_days=drift_days,
        drift_rebuild_read=entry.counted.documents_returned,
        drift_rebuild_expected=expected_read,
        documents_returned=third["documents_returned"],
        count_queries=sum(t.counted.count_queries for t in after.tables.values()),
        wall_seconds=third["wall_seconds"],
        tables_equal_firestore=held == expected,
    )
    deletes["ok"] = (
        after.succeeded
        and drift_days == days_hit
        and entry.counted.documents_returned == expected_read
        and held == expected
    )
    if not deletes["ok"]:
        log(f"nightly {days}d deletes: not as expected: status {after.status.value}, drift "
            f"{drift_days} vs {days_hit}, read {entry.counted.documents_returned} vs "
            f"{expected_read}, tables equal {held == expected}")  # fmt: skip
    return deletes


def measure_nightly(args: argparse.Namespace, emu: Any, log_dir: Path) -> dict[str, Any]:
    """Every history length of the nightly scenario, one after the other, each on its own."""
    from google.cloud import firestore

    from pipelines.convert.table_spec import load_specs
    from pipelines.services import bigquery as bq

    env = {**os.environ, **emu.env()}
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
    scans = {h["history_days"]: h["scan"]["bytes"] for h in measured}
    scan_ratio = (
        round(scans[longest] / scans[shortest], 3)
        if longest in scans and shortest in scans and longest != shortest and scans[shortest]
        else None
    )
    # The same ratio from the shortest history the drift check's window fits in:
    # a shorter table has fewer days to verify, so the two differ by that work.
    covering = [d for d in scans if d >= args.verify_days and d != longest and scans[d]]
    windowed = (
        {"from_days": min(covering), "ratio": round(scans[longest] / scans[min(covering)], 3)}
        if covering and longest in scans
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
        "scan_ratio_longest_to_shortest": scan_ratio,
        "scan_ratio_within_verify_window": windowed,
        "worst_all_reads_per_needed": max(
            (h["all_reads_per_needed"] for h in measured), default=None
        ),
        "warmup": warmup,
        "histories": histories,
        "targets": {
            "reads_per_needed_document": TARGET_NIGHTLY_READS,
            "wall_ratio_longest_to_shortest": TARGET_NIGHTLY_WALL_RATIO,
            "reads_met": worst is not None and worst <= TARGET_NIGHTLY_READS,
            "wall_met": ratio is not None and ratio <= TARGET_NIGHTLY_WALL_RATIO,
            "scan_ratio_longest_to_shortest": TARGET_NIGHTLY_SCAN_RATIO,
            "scan_met": scan_ratio is not None and scan_ratio <= TARGET_NIGHTLY_SCAN_RATIO,
        },
        "ok": len(measured) == len(histories) and all(h["ok"] for h in histories),
    }
