"""The onboarding scenario (issue 26): a chunked backfill of a history, then the first nightly.

Seeds ``--onboarding_days`` days up to yesterday of ``--onboarding_per_day``
documents a day in two collections with a change field (tasks, projects), then
runs the chunks ``scripts/backfill.py`` would run (``pipelines.cli.backfill.chunks``
and ``chunk_command``: dated, ``--mode incremental``, ``--chunk_days`` days each,
every day of the history but yesterday) in this process on the real clock,
editing a few documents between chunks (some moved to another day, ``updated_at``
= now), then the nightly (no dates). Reported: per chunk the documents in its
days and those Firestore returned; for the nightly yesterday's documents, the
changed ones and what it returned; the nightly's tables against a full rebuild at
its snapshot; and, for comparison, the first chunk again as ``--mode full`` into
another dataset (a full run reads the whole collection, whatever its dates).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devtools import sample_data
from devtools.bench import log, seeding, sync_run
from devtools.bench.datasets import drop_dataset
from devtools.bench.intraday import compare_with_rebuild
from devtools.bench.seeding import SEED, Doc, History
from pipelines.cli import backfill

UTC = datetime.UTC
COLLECTIONS = ("tasks", "projects")
#: Documents edited between two chunks, as a share of a day's (30 % of them moved).
EDIT_SHARE = 0.05
TARGET_READS = 1.10
#: Reads a run may take beyond its documents (a retried page, a day's count): "a few".
SLACK = 3


def seed(db: Any, specs: list[Any], days: int, per_day: int, end: datetime.date) -> History:
    """Exactly ``per_day`` documents a day of ``specs``' collections: sample_data's
    documents of those collections (it writes all five, these are about a third)."""
    users, per = seeding.users_and_per(max(4 * per_day, 50))
    wanted = {s.collection: s for s in specs}
    history, kept = History(days, per_day, end, {}), collections.Counter()

    def recorded() -> Iterator[tuple[str, dict[str, Any]]]:
        for path, data in sample_data.documents(users, days, end, per, SEED):
            spec = wanted.get(path.split("/")[2])
            if spec is None or kept[data[seeding.partition_field(spec)].date()] == per_day:
                continue
            at = data[seeding.partition_field(spec)]
            kept[at.date()] += 1
            history.docs[path] = Doc(path, spec, at.date(), at)
            yield path, data

    started = time.perf_counter()
    if seeding.write_parallel(db, recorded()) != days * per_day:
        raise RuntimeError(f"seeded {len(history.docs)} documents, wanted {days * per_day}")
    history.seed_seconds = time.perf_counter() - started
    return history


def sync(argv: list[str]) -> tuple[Any, float]:
    """One run in this process (the real clock): its summary and wall seconds."""
    from pipelines import firestore_to_bq

    started = time.perf_counter()
    summary = firestore_to_bq.run(argv)
    if not summary.reconciles:
        raise RuntimeError(summary.render())
    return summary, round(time.perf_counter() - started, 2)


def in_days(history: History, first: datetime.date, last: datetime.date) -> int:
    return sum(first <= d.day <= last for d in history.docs.values())


def ratio(returned: int, needed: int) -> float | None:
    return round(returned / needed, 4) if needed else None


def measure_onboarding(args: argparse.Namespace, emu: Any, log_dir: Path) -> dict[str, Any]:
    from google.cloud import firestore

    from pipelines.convert.table_spec import load_specs, select_specs
    from pipelines.services import bigquery as bq

    db, client = firestore.Client(project=emu.project), bq.make_client(emu.project)
    specs = select_specs(load_specs(), COLLECTIONS)
    today = datetime.datetime.now(UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    dataset, full_dataset = "bench_onboarding", "bench_onboarding_full"
    for name in (dataset, full_dataset):
        drop_dataset(client, name)
    emu.reset_firestore()
    base = ["--project", emu.project, "--collections", ",".join(COLLECTIONS)]
    rng = random.Random(SEED)
    history = seed(db, specs, args.onboarding_days, args.onboarding_per_day, yesterday)
    log(f"onboarding: seeded {len(history.docs)} in {history.seed_seconds:.1f}s")
    edits = max(1, round(args.onboarding_per_day * EDIT_SHARE))
    plan = backfill.chunks(today - datetime.timedelta(days=args.onboarding_days),
                           yesterday - datetime.timedelta(days=1), args.chunk_days)  # fmt: skip
    result: dict[str, Any] = {
        "days": args.onboarding_days, "per_day": args.onboarding_per_day,
        "chunk_days": args.chunk_days, "collections": list(COLLECTIONS),
        "edits_between_chunks": edits, "today": today.isoformat(),
        "documents_seeded": len(history.docs), "seed_seconds": round(history.seed_seconds, 2),
        "chunks": [], "equal_to_rebuild": False, "ok": False,
    }  # fmt: skip
    changed: set[str] = set()
    try:
        for number, chunk in enumerate(plan):
            if number:  # between two chunks: a few edits, some of them moves
                changed |= seeding.edit_old_documents(db, history, edits, rng)[0]
            needed = in_days(history, *chunk)
            argv = backfill.chunk_command([], chunk, [*base, "--dataset", dataset])
            summary, wall = sync(argv)
            got = summary.documents_returned
            log(f"onboarding: chunk {chunk[0]}..{chunk[1]}: {got} returned / {needed}")
            result["chunks"].append({
                "first": chunk[0].isoformat(), "last": chunk[1].isoformat(),
                "documents_in_range": needed, "documents_returned": got,
                "reads_per_document": ratio(got, needed), "wall_seconds": wall,
                "ok": got <= TARGET_READS * needed + SLACK,
            })  # fmt: skip
        in_range = sum(c["documents_in_range"] for c in result["chunks"])
        returned = sum(c["documents_returned"] for c in result["chunks"])
        result["backfill"] = {
            "documents_in_range": in_range, "documents_returned": returned,
            "reads_per_document": ratio(returned, in_range),
            "wall_seconds": round(sum(c["wall_seconds"] for c in result["chunks"]), 2),
        }  # fmt: skip

        night = {p for p, d in history.docs.items() if d.day == yesterday}
        summary, wall = sync([*base, "--dataset", dataset, "--verify_days", str(args.verify_days)])
        entries = sync_run.audit_entries(client, dataset, summary.config.run_id).tables
        needed, got = len(night | changed), summary.documents_returned
        result["nightly"] = {
            "yesterday": yesterday.isoformat(), "documents_yesterday": len(night),
            "documents_changed": len(changed), "documents_needed": needed,
            "documents_returned": got, "reads_per_needed": ratio(got, needed),
            "modes": sorted({t.mode for t in entries.values() if t.mode is not None}),
            "drift_days": {n: sync_run.iso(t.counted.drift_days) for n, t in entries.items()
                           if t.counted.drift_days},
            "wall_seconds": wall, "ok": got <= TARGET_READS * needed + SLACK,
        }  # fmt: skip
        rebuild = compare_with_rebuild(emu.project, dataset, client, specs,
                                       {**os.environ, **emu.env()}, log_dir,
                                       summary.config.read_time, today)  # fmt: skip
        result["rebuild"], result["equal_to_rebuild"] = rebuild, rebuild["equal"]

        # For comparison: the first chunk as a full run reads every document held.
        first = plan[0]
        argv = backfill.chunk_command([], first, [*base, "--dataset", full_dataset,
                                                  "--mode", "full"])  # fmt: skip
        summary, wall = sync(argv)
        needed, got = in_days(history, *first), summary.documents_returned
        result["full_first_chunk"] = {
            "first": first[0].isoformat(), "last": first[1].isoformat(),
            "documents_in_range": needed, "documents_in_collections": len(history.docs),
            "documents_returned": got, "reads_per_document": ratio(got, needed),
            "wall_seconds": wall,
        }  # fmt: skip
    except Exception as exc:  # a failed run: reported, the scenario invalid
        log(f"onboarding: failed: {exc}")
        result["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return result
    finally:
        if not args.keep_data:
            for name in (dataset, full_dataset, f"{dataset}_rebuild"):
                drop_dataset(client, name)
    crossed = datetime.datetime.now(UTC).date() != today
    if crossed:
        log("onboarding: the clock crossed midnight: yesterday moved; run it again")
    result["ok"] = (
        not crossed and all(c["ok"] for c in result["chunks"]) and result["nightly"]["ok"]
        and result["nightly"]["modes"] == ["incremental"] and result["equal_to_rebuild"]
    )  # fmt: skip
    result["targets"] = {"reads_per_document": TARGET_READS, "slack_per_run": SLACK}
    return result
