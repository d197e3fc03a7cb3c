"""Read what changed: an incremental run's documents, each once, in parallel.

Shaped like :mod:`read_firestore` (split, reshuffle, query), in two rounds:

1. the change query (``change_field >= watermark``; an intraday run's on a table
   without a change field: ``partition_field >= watermark``), split by time;
2. a plan per table (:func:`pipelines.plan.read_plan.plan_incremental`) that knows
   what the change query returned, counts the days it needs to (``count()``
   aggregations, and BigQuery's rows for the drift check), and emits the
   partition-range reads still needed, split by time; a document both rounds
   return is passed on once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam

from pipelines.convert import time_source
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import TableSpec
from pipelines.plan.read_plan import (
    FieldRange,
    IncrementalPlan,
    change_ranges,
    old_row_days,
    plan_incremental,
    slices_for,
)
from pipelines.plan.windows import TableWindow, change_query_field
from pipelines.services import bigquery as bq
from pipelines.services import firestore as fs
from pipelines.state import dead_letters
from pipelines.transforms import metrics

READS = "reads"
#: Count aggregations in flight at once per table.
COUNT_THREADS = 8


def partition_time(spec: TableSpec, doc: FirestoreDocument) -> datetime.datetime | None:
    """The document's partition time if range queries match its value: a Firestore
    timestamp, or a number for an epoch partition column."""
    value = doc.data.get(spec.partition.source[0])
    return time_source.instant_of(spec.partition.timestamp_source, value)


class _ChangeRangesFn(beam.DoFn):
    def __init__(
        self,
        source: fs.Source,
        specs: Mapping[str, TableSpec],
        read_time: datetime.datetime,
        num_splits: int,
    ):
        self._source = source
        self._specs = dict(specs)
        self._read_time = read_time
        self._num_splits = num_splits

    def setup(self) -> None:
        self._client = self._source.client()
        self._retry = self._source.retry()

    def process(self, window: TableWindow) -> Iterator[FieldRange]:
        spec = self._specs[window.table]
        field = change_query_field(spec, window)
        if field is None:  # a table without a change field, outside intraday
            return
        # Counted first (one read per 1,000 documents) so that a quiet night is
        # one query, not --num_splits mostly empty ones.
        changed = fs.count_range(
            self._client, spec, field, window.watermark, None, self._read_time, self._retry
        )
        yield from change_ranges(
            spec.name,
            field,
            window.watermark,
            self._read_time,
            slices_for(changed, self._num_splits),
        )


class _ReadFieldRangeFn(beam.DoFn):
    """Stream one field range at the snapshot; transient errors resume at the cursor.

    A range read's document that the change query also returned is passed on
    marked ``duplicate``, so it is counted as returned but converted once.
    """

    def __init__(
        self, source: fs.Source, specs: Mapping[str, TableSpec], read_time: datetime.datetime
    ):
        self._source = source
        self._specs = dict(specs)
        self._read_time = read_time

    def setup(self) -> None:
        self._client = self._source.client()
        self._retry = self._source.retry()
        self._seen: tuple[int, frozenset] = (0, frozenset())

    def _changed(self, changed: Sequence[tuple[str, str, Any]] | None) -> frozenset:
        if changed is None:
            return frozenset()
        if self._seen[0] != id(changed):
            self._seen = (id(changed), frozenset((t, p) for t, p, _ in changed))
        return self._seen[1]

    def process(self, rng: FieldRange, changed=None) -> Iterator[FirestoreDocument]:
        spec = self._specs[rng.table]
        seen = self._changed(changed)
        query = fs.field_range_query(self._client, spec, rng.field, rng.start, rng.end)
        returned = metrics.counter(rng.table, metrics.DOCUMENTS_RETURNED)
        for doc in fs.stream_documents(
            query, spec.name, self._read_time, self._retry, changed=rng.changed
        ):
            returned.inc()
            if (doc.table, doc.path) in seen:
                yield FirestoreDocument(doc.table, doc.path, {}, doc.update_time, duplicate=True)
            else:
                yield doc


class _PlanReadsFn(beam.DoFn):
    """Per table: count, compare, and emit the range reads still needed."""

    def __init__(
        self,
        source: fs.Source,
        target: bq.Target,
        specs: Mapping[str, TableSpec],
        read_time: datetime.datetime,
        num_splits: int,
        letters_since: datetime.datetime,
    ):
        self._source = source
        self._target = target
        self._specs = dict(specs)
        self._read_time = read_time
        self._num_splits = num_splits
        self._letters_since = letters_since

    def setup(self) -> None:
        self._firestore = self._source.client()
        self._bigquery = self._target.client()
        self._retry = self._source.retry()

    def process(self, window: TableWindow, changed: Sequence[tuple[str, str, Any]]):
        spec, dataset, read_time = self._specs[window.table], self._target.dataset, self._read_time
        mine = [(path, when) for table, path, when in changed if table == spec.name]
        field = spec.partition.source[0]

        def count_one(span: tuple[datetime.datetime, datetime.datetime]) -> int:
            lo, hi = span
            client, retry = self._firestore, self._retry
            return fs.count_range(client, spec, field, lo, hi, read_time, retry)

        def count(spans):
            # One round trip each, so in parallel: a nightly asks ~35 per table.
            with concurrent.futures.ThreadPoolExecutor(COUNT_THREADS) as pool:
                return list(pool.map(count_one, spans))

        def held(days):
            return bq.rows_per_day(self._bigquery, dataset, spec.name, spec.partition_column, days)

        def lettered(days):
            return dead_letters.days_with_letters(
                self._bigquery, dataset, spec.name, days, self._letters_since
            )

        # Where the changed documents' rows are now, on the days worth a look:
        # the drift check's count of them, and old rows found without a read.
        # Looked up once, when the plan asks (only the verified days whose count
        # leaves room for one), or after it for a plan with no verified day.
        found: dict[str, datetime.date] = {}
        looked: list[tuple[datetime.date, ...]] = []

        def look_up(verify: Sequence[datetime.date]) -> None:
            if looked:
                return
            looked.append(())
            if not mine:
                return
            paths = [path for path, _ in mine]
            current = [when.date() for _, when in mine if when is not None]
            size = bq.table_row_count(self._bigquery, dataset, spec.name)
            looked[0] = old_row_days(verify, current if window.located_at else (), size, paths)
            found.update(
                bq.days_of_paths(
                    self._bigquery, dataset, spec.name, spec.partition_column,
                    looked[0], paths,
                )  # fmt: skip
            )

        def leaving(days):
            look_up(days)
            on = collections.Counter(found.values())
            return {day: on[day] for day in days}

        plan = plan_incremental(
            spec.name,
            field,
            window.days,
            window.verify,
            window.watermark,
            [when for _, when in mine if when is not None],
            count,
            held,
            leaving,
            self._num_splits,
            lettered,
        )
        look_up(())
        plan = dataclasses.replace(plan, rows_found=found, lookup_days=looked[0])
        if window.watermark is not None:  # _ChangeRangesFn counted the change query
            plan = dataclasses.replace(plan, count_queries=plan.count_queries + 1)
        metrics.counter(spec.name, metrics.COUNT_QUERIES).inc(plan.count_queries)
        for rng in plan.reads:
            yield beam.pvalue.TaggedOutput(READS, rng)
        yield spec.name, plan  # keyed here, as PlanDays' side input takes it


class ReadIncremental(beam.PTransform):
    """``(documents, plans)`` for the tables of ``windows`` (all incremental);
    ``plans`` holds ``(table, IncrementalPlan)`` pairs.

    ``source`` is read at ``read_time``, in up to ``num_splits`` ranges per query;
    ``target`` holds the tables' rows (the drift check counts them) and their dead
    letters, looked at from ``letters_since`` on."""

    def __init__(
        self,
        source: fs.Source,
        target: bq.Target,
        specs: Sequence[TableSpec],
        windows: Sequence[TableWindow],
        read_time: datetime.datetime,
        num_splits: int,
        letters_since: datetime.datetime,
    ):
        super().__init__()
        self._windows = list(windows)
        self._specs = {spec.name: spec for spec in specs}
        self._source, self._read_time = source, read_time
        self._plan_args = (source, target, self._specs, read_time, num_splits, letters_since)
        self._num_splits = num_splits

    def expand(self, pbegin):
        specs, read = self._specs, (self._source, self._specs, self._read_time)
        windows = pbegin | "Windows" >> beam.Create(self._windows)
        changed_docs = (
            windows
            | "ChangeRanges" >> beam.ParDo(_ChangeRangesFn(*read, self._num_splits))
            | "ReshuffleChanges" >> beam.Reshuffle()
            | "ReadChanges" >> beam.ParDo(_ReadFieldRangeFn(*read))
        )
        changed = changed_docs | "ChangedKeys" >> beam.Map(
            lambda d: (d.table, d.path, partition_time(specs[d.table], d))
        )
        planned = windows | "PlanReads" >> beam.ParDo(
            _PlanReadsFn(*self._plan_args), changed=beam.pvalue.AsList(changed)
        ).with_outputs(READS, main="plans")
        range_docs = (
            planned[READS]
            | "ReshuffleRanges" >> beam.Reshuffle()
            | "ReadRanges"
            >> beam.ParDo(_ReadFieldRangeFn(*read), changed=beam.pvalue.AsList(changed))
        )
        docs = (changed_docs, range_docs) | "AllDocuments" >> beam.Flatten()
        return docs, planned.plans


__all__ = ["IncrementalPlan", "ReadIncremental", "partition_time"]
