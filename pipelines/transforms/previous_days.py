"""The days changed documents were on when the table's rows were last written.

An incremental run upserts each document it reads and must remove the
document's old row, which is on its day now unless it moved. Without knowing
where it was, the delete has to look up ``_document_path`` over the whole table,
every partition of its history, every night (billed by the bytes of that
column). So before the commit, the documents that changed since the snapshot
the table's rows hold (``TableWindow.located_at``) and existed then, and whose
row the plan's BigQuery lookup did not find (``read_plan.old_row_days``: the
verified days, and their days now where that is free), are read at that
snapshot (one batched get per :data:`BATCH` documents, one read each,
partition field only) and their day there goes into the tally: the delete then
names only days (see ``bigquery.replace_days_sql``).

A document unchanged since that snapshot has its row on its day now; one
created after it has no row. Firestore's own ``update_time`` and
``create_time`` decide, so no app field is trusted.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

import apache_beam as beam

from pipelines.convert.conversion import dead_letter_day
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import TableSpec
from pipelines.plan.day_plan import Tally
from pipelines.plan.read_plan import IncrementalPlan
from pipelines.services import firestore as fs
from pipelines.transforms import metrics

#: Documents per batched get (Firestore takes more; this bounds one RPC's size).
BATCH = 300


def needs_lookup(doc: FirestoreDocument, located_at: datetime.datetime | None) -> bool:
    """Changed since ``located_at`` and existing then: its old row may be elsewhere."""
    if located_at is None or doc.duplicate or doc.update_time is None:
        return False
    if doc.update_time <= located_at:
        return False
    return doc.create_time is None or doc.create_time <= located_at


class _PreviousDaysFn(beam.DoFn):
    """A batch of documents in; per table, a :class:`Tally` of their previous days."""

    def __init__(
        self,
        project: str,
        database: str,
        specs: Mapping[str, TableSpec],
        located_at: Mapping[str, datetime.datetime],
        timeout: float,
    ):
        self._project = project
        self._database = database
        self._specs = specs
        self._located_at = located_at
        self._timeout = timeout

    def setup(self) -> None:
        self._client = fs.make_client(self._project, self._database)
        self._retry = fs.read_retry(self._timeout)

    def process(self, batch: Iterable[FirestoreDocument]) -> Iterator[tuple[str, Tally]]:
        paths: dict[str, list[str]] = defaultdict(list)
        for doc in batch:
            paths[doc.table].append(doc.path)
        for table, wanted in paths.items():
            spec = self._specs[table]
            tally = Tally(previous_reads=len(wanted))
            metrics.counter(table, metrics.PREVIOUS_READS).inc(len(wanted))
            for old in fs.previous_versions(
                self._client, spec, wanted, self._located_at[table], self._retry
            ):
                day = dead_letter_day(spec, old)
                if day is not None:
                    tally.previous.add(day)
            yield table, tally


def _unknown(
    doc: FirestoreDocument,
    located_at: Mapping[str, datetime.datetime],
    plans: Mapping[str, IncrementalPlan],
) -> bool:
    """Its old row may be elsewhere and BigQuery's lookup did not find it."""
    plan = plans.get(doc.table)
    found = plan.rows_found if plan is not None else {}
    return needs_lookup(doc, located_at.get(doc.table)) and doc.path not in found


class PreviousDays(beam.PTransform):
    """``(table, Tally)`` of the days changed documents were on at each table's
    ``located_at``; nothing for tables without one.

    ``read_plans``: ``(table, IncrementalPlan)`` pairs; a document whose old row
    its plan found in BigQuery (``rows_found``) is not read again.
    """

    def __init__(
        self,
        project: str,
        specs: Iterable[TableSpec],
        located_at: Mapping[str, datetime.datetime],
        *,
        read_plans=None,
        database: str = "(default)",
        retry_timeout: float = 600.0,
    ):
        super().__init__()
        self._project = project
        self._specs = {s.name: s for s in specs}
        self._located_at = dict(located_at)
        self._read_plans = read_plans
        self._database = database
        self._timeout = retry_timeout

    def expand(self, docs):
        plans = self._read_plans
        if plans is None:
            plans = docs.pipeline | "NoReadPlans" >> beam.Create([])
        return (
            docs
            | "ChangedSince"
            >> beam.Filter(_unknown, self._located_at, beam.pvalue.AsDict(plans))
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=BATCH)
            | "ReadPrevious"
            >> beam.ParDo(
                _PreviousDaysFn(
                    self._project, self._database, self._specs, self._located_at, self._timeout
                )
            )
        )
