"""Documents in, typed rows and dead letters out, each routed to its destination."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import dead_letters
from pipelines.convert import (
    ConversionError,
    document_day,
    document_to_row,
    hmac_hasher,
    partition_day,
)
from pipelines.document import FirestoreDocument
from pipelines.options import SyncConfig
from pipelines.transforms.read_firestore import NAMESPACE


class _ConvertFn(beam.DoFn):
    """Every document ends as exactly one of: a row, a dead letter, or outside the plan.

    A document whose day is not being replaced is left alone (its day keeps the
    rows of an earlier run); one with no usable day is always dead-lettered,
    since no run would ever write it.
    """

    def __init__(self, config: SyncConfig):
        self._config = config
        self._specs = {s.name: s for s in config.tables}

    def setup(self) -> None:
        key = os.environ.get(self._config.hash_key_env)
        self._hasher = hmac_hasher(key.encode("utf-8")) if key else None
        self._counters: dict[str, Any] = {}

    def _inc(self, name: str) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(NAMESPACE, name)
        counter.inc()

    def process(
        self, doc: FirestoreDocument, plan: Mapping[str, list[datetime.date]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        config = self._config
        spec = self._specs[doc.table]
        days = plan.get(doc.table, ())
        try:
            row = document_to_row(spec, doc, config.run_id, config.read_time_text, self._hasher)
        except ConversionError as error:
            day = document_day(spec, doc)
            if day is not None and day not in days:
                self._inc(f"{doc.table}.outside_window")
                return
            self._inc(f"{doc.table}.dead_lettered")
            yield (
                dead_letters.TABLE,
                dead_letters.dead_letter_row(
                    doc, error, day, config.run_id, config.read_time_text, config.started_text
                ),
            )
            return
        day = partition_day(spec, row)
        if day not in days:
            self._inc(f"{doc.table}.outside_window")
            return
        self._inc(f"{doc.table}.rows")
        self._inc(f"{doc.table}.rows@{day.isoformat()}")
        yield doc.table, row


class ConvertDocuments(beam.PTransform):
    """``(destination table, row)`` for every document, dead letters included."""

    def __init__(self, config: SyncConfig, plan):
        super().__init__()
        self._config = config
        self._plan = plan

    def expand(self, docs):
        # Sets make membership tests cheap; the plan is a handful of days per table.
        plan = self._plan | "PlanAsSets" >> beam.MapTuple(lambda t, days: (t, frozenset(days)))
        return docs | "Convert" >> beam.ParDo(
            _ConvertFn(self._config), plan=beam.pvalue.AsDict(plan)
        )
