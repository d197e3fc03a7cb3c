"""The incremental nightly's Firestore queries again, timed, as its plan ran them.

The emulator scans the collection for every query and ``count()``, so a
nightly's wall time is mostly its queries. After the run, the planner
(:func:`pipelines.plan.read_plan.plan_incremental`) is asked again at the run's
snapshot (Firestore is as it was), with real counts, and exactly what it counts
(``IncrementalPlan.count_spans``) and reads is run, table after table, each
kind timed: counts ``COUNT_THREADS`` in flight per round as the run's plan
asks them, document queries one after the other.

The planner's drift check compares with what BigQuery held before the run,
which is gone; what it counts does not depend on that (every verified day is
counted in its first round), and only the change query and the window's range
reads are replayed, not the reads of drifted days.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import math
import time
from collections.abc import Sequence
from typing import Any

from devtools.bench.seeding import change_field, partition_field
from pipelines.clock import day_bounds
from pipelines.convert.table_spec import TableSpec
from pipelines.plan.read_plan import FieldRange, change_ranges, plan_incremental, slices_for
from pipelines.services import firestore as fs
from pipelines.transforms.read_incremental import COUNT_THREADS, partition_time

#: Firestore bills a count() aggregation one read per this many documents, at least one.
COUNT_DOCS_PER_READ = 1000


def billed_reads(counted: int) -> int:
    return max(1, math.ceil(counted / COUNT_DOCS_PER_READ))


def replay_nightly(
    project: str,
    specs: Sequence[TableSpec],
    window: Sequence[datetime.date],
    verify: Sequence[datetime.date],
    watermark: datetime.datetime,
    read_time: datetime.datetime,
    parts: int = 8,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(counts, reads)`` of a nightly over ``window`` with ``verify`` days checked;
    ``watermark`` applies to the tables with a change field (``parts``: ``--num_splits``)."""
    client = fs.make_client(project)
    retry = fs.read_retry(120.0)
    totals: collections.Counter[str] = collections.Counter()
    for spec in specs:
        tracked = watermark if spec.change_field else None
        _replay_table(client, retry, spec, window, verify, tracked, read_time, parts, totals)
    counts = {
        "queries": totals["count_queries"],
        "billed_reads": totals["billed_reads"],
        "documents_counted": totals["documents_counted"],
        "seconds": round(totals["count_seconds"], 3),
    }
    reads = {
        "queries": totals["read_queries"],
        "documents": totals["documents"],
        "seconds": round(totals["read_seconds"], 3),
    }
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

    def read(ranges: Sequence[FieldRange]) -> list[Any]:
        t0 = time.perf_counter()
        docs = [
            doc
            for r in ranges
            for doc in fs.stream_documents(
                fs.field_range_query(client, spec, r.field, r.start, r.end),
                spec.name, read_time, retry,
            )
        ]  # fmt: skip
        totals["read_seconds"] += time.perf_counter() - t0
        totals["read_queries"] += len(ranges)
        totals["documents"] += len(docs)
        return docs

    changed_times = []
    if watermark is not None:  # the change query, counted first to size it, as the run does
        field_name = change_field(spec)
        (changes,) = count(field_name, [(watermark, None)])
        slices = slices_for(changes, parts)
        changed = read(change_ranges(spec.name, field_name, watermark, read_time, slices))
        changed_times = [t for doc in changed if (t := partition_time(spec, doc)) is not None]

    field_name = partition_field(spec)
    plan = plan_incremental(
        spec.name, field_name, window, verify, watermark, changed_times,
        lambda spans: count(field_name, spans),
        lambda days: {}, lambda days: {},  # BigQuery before the run: see the module docstring
        parts,
    )  # fmt: skip
    queries = len(plan.count_spans) + (watermark is not None)
    if queries != len(counted):
        raise RuntimeError(f"{spec.name}: plan names {queries} counts, {len(counted)} were run")
    bounds = [day_bounds(day) for day in window]
    read([r for r in plan.reads if any(lo <= r.start and r.end <= hi for lo, hi in bounds)])
    totals["count_queries"] += queries
    totals["documents_counted"] += sum(counted)
    totals["billed_reads"] += sum(billed_reads(n) for n in counted)
