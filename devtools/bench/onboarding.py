"""The onboarding scenario (issue 26): a chunked backfill of a history, then the first nightly.

*Seed* ``--onboarding_days`` days up to yesterday of ``--onboarding_per_day``
documents a day in two collections with a change field (tasks, projects). *Run*
the chunks ``scripts/backfill.py`` would run (``pipelines.backfill.chunks`` and
``chunk_command``: dated, ``--mode incremental``, ``--chunk_days`` days each,
every day of the history but yesterday) in this process on the real clock,
editing a few documents between chunks (some moved to another day, ``updated_at``
= now), then the nightly (no dates). Reported: per chunk the documents in its
days and those Firestore returned; for the nightly yesterday's documents, the
changed ones and what it returned. *Verify* the nightly's tables against a full
rebuild at its snapshot; and, for comparison, run the first chunk again as
``--mode full`` into another dataset (a full run reads the whole collection,
whatever its dates).
"""

from __future__ import annotations

import datetime
import random
import time
from dataclasses import dataclass, field
from typing import Any

from devtools.bench import data, log
from devtools.bench.data import History
from devtools.bench.intraday import compare_with_rebuild
from devtools.bench.scenario import Bench, Case, Scenario, Stop, ratio
from pipelines.cli import backfill
from pipelines.convert.table_spec import TableSpec

UTC = datetime.UTC
COLLECTIONS = ("tasks", "projects")
#: Documents edited between two chunks, as a share of a day's (30 % of them moved).
EDIT_SHARE = 0.05
TARGET_READS = 1.10
#: Reads a run may take beyond its documents (a retried page, a day's count): "a few".
SLACK = 3


@dataclass
class Onboard(Case):
    today: datetime.date = field(init=False)
    history: History = field(init=False)
    specs: list[TableSpec] = field(init=False)
    plan: list[tuple[datetime.date, datetime.date]] = field(init=False)
    read_time: datetime.datetime = field(init=False)


def sync(argv: list[str]) -> tuple[Any, float]:
    """One run in this process (the real clock): its summary and wall seconds."""
    from pipelines import firestore_to_bq

    started = time.perf_counter()
    try:
        summary = firestore_to_bq.run(argv)
    except Exception as exc:  # a failed run: reported, the scenario invalid
        log(f"onboarding: failed: {exc}")
        raise Stop(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    if not summary.reconciles:
        log(f"onboarding: failed: {summary.render()}")
        raise Stop(summary.render().splitlines()[0])
    return summary, round(time.perf_counter() - started, 2)


class Onboarding(Scenario):
    key = "onboarding"

    def cases(self, bench: Bench) -> list[Onboard]:
        a = bench.args
        return [Onboard(a.onboarding_days, ("bench_onboarding", "bench_onboarding_full",
                                            "bench_onboarding_rebuild"))]  # fmt: skip

    def base(self, bench: Bench, dataset: str, *extra: str) -> list[str]:
        return ["--project", bench.project, "--collections", ",".join(COLLECTIONS),
                "--dataset", dataset, *extra]  # fmt: skip

    def seed(self, bench: Bench, case: Onboard) -> None:
        from pipelines.convert.table_spec import load_specs, select_specs

        a = bench.args
        case.specs = select_specs(load_specs(), COLLECTIONS)
        case.today = datetime.datetime.now(UTC).date()
        yesterday = case.today - datetime.timedelta(days=1)
        # sample_data writes all five collections, these two are about a third of them.
        h = case.history = data.seed_history(bench.db, case.specs, a.onboarding_days,
                                             a.onboarding_per_day, yesterday,
                                             max(4 * a.onboarding_per_day, 50))  # fmt: skip
        log(f"onboarding: seeded {len(h.docs)} in {h.seed_seconds:.1f}s")
        first = case.today - datetime.timedelta(days=a.onboarding_days)
        case.plan = backfill.chunks(first, yesterday - datetime.timedelta(days=1), a.chunk_days)
        case.result.update({
            "days": a.onboarding_days, "per_day": a.onboarding_per_day,
            "chunk_days": a.chunk_days, "collections": list(COLLECTIONS),
            "edits_between_chunks": max(1, round(a.onboarding_per_day * EDIT_SHARE)),
            "today": case.today.isoformat(), "documents_seeded": len(h.docs),
            "seed_seconds": round(h.seed_seconds, 2), "chunks": [], "equal_to_rebuild": False,
        })  # fmt: skip

    def run(self, bench: Bench, case: Onboard) -> None:
        """The chunks, a few edits between two, then the nightly."""
        r, h, dataset = case.result, case.history, case.datasets[0]
        rng, changed = random.Random(data.SEED), set[str]()
        for number, chunk in enumerate(case.plan):
            if number:  # between two chunks: a few edits, some of them moves
                changed |= data.edit_old_documents(bench.db, h, r["edits_between_chunks"], rng)[0]
            needed = h.in_days(*chunk)
            summary, wall = sync(backfill.chunk_command([], chunk, self.base(bench, dataset)))
            got = summary.documents_returned
            log(f"onboarding: chunk {chunk[0]}..{chunk[1]}: {got} returned / {needed}")
            r["chunks"].append({
                "first": chunk[0].isoformat(), "last": chunk[1].isoformat(),
                "documents_in_range": needed, "documents_returned": got,
                "reads_per_document": ratio(got, needed), "wall_seconds": wall,
                "ok": got <= TARGET_READS * needed + SLACK,
            })  # fmt: skip
        in_range = sum(c["documents_in_range"] for c in r["chunks"])
        returned = sum(c["documents_returned"] for c in r["chunks"])
        r["backfill"] = {
            "documents_in_range": in_range, "documents_returned": returned,
            "reads_per_document": ratio(returned, in_range),
            "wall_seconds": round(sum(c["wall_seconds"] for c in r["chunks"]), 2),
        }  # fmt: skip

        yesterday = case.today - datetime.timedelta(days=1)
        night = {p for p, d in h.docs.items() if d.day == yesterday}
        summary, wall = sync(self.base(bench, dataset, "--verify_days",
                                       str(bench.args.verify_days)))  # fmt: skip
        case.read_time = summary.config.read_time
        entries = bench.audit(dataset, summary.config.run_id)["tables"]
        needed, got = len(night | changed), summary.documents_returned
        r["nightly"] = {
            "yesterday": yesterday.isoformat(), "documents_yesterday": len(night),
            "documents_changed": len(changed), "documents_needed": needed,
            "documents_returned": got, "reads_per_needed": ratio(got, needed),
            "modes": sorted({t["mode"] for t in entries.values()}),
            "drift_days": {n: t["drift_days"] for n, t in entries.items() if t["drift_days"]},
            "wall_seconds": wall, "ok": got <= TARGET_READS * needed + SLACK,
        }  # fmt: skip

    def verify(self, bench: Bench, case: Onboard) -> None:
        r, first = case.result, case.plan[0]
        rebuild = compare_with_rebuild(bench, case.datasets[0], case.read_time, case.today,
                                       case.specs)  # fmt: skip
        r["rebuild"], r["equal_to_rebuild"] = rebuild, rebuild["equal"]
        # For comparison: the first chunk as a full run reads every document held.
        summary, wall = sync(backfill.chunk_command(
            [], first, self.base(bench, case.datasets[1], "--mode", "full")))  # fmt: skip
        needed, got = case.history.in_days(*first), summary.documents_returned
        r["full_first_chunk"] = {
            "first": first[0].isoformat(), "last": first[1].isoformat(),
            "documents_in_range": needed, "documents_in_collections": len(case.history.docs),
            "documents_returned": got, "reads_per_document": ratio(got, needed),
            "wall_seconds": wall,
        }  # fmt: skip
        crossed = datetime.datetime.now(UTC).date() != case.today
        if crossed:
            log("onboarding: the clock crossed midnight: yesterday moved; run it again")
        night = r["nightly"]
        r["ok"] = (not crossed and all(c["ok"] for c in r["chunks"]) and night["ok"]
                   and night["modes"] == ["incremental"] and r["equal_to_rebuild"])  # fmt: skip
        r["targets"] = {"reads_per_document": TARGET_READS, "slack_per_run": SLACK}

    def record(self, bench: Bench, cases: list[Onboard]) -> dict[str, Any]:
        return cases[0].result


SCENARIO = Onboarding()
