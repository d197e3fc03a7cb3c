"""Documents in, typed rows and dead letters out, each routed to its destination."""

from __future__ import annotations

import datetime
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

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


def hash_key(config: SyncConfig) -> bytes | None:
    """The HMAC key: from Secret Manager on workers, or an environment variable locally.

    Never from the repository or the pipeline options, which Dataflow shows in its UI.
    """
    if config.hash_key_secret:
        from google.cloud import secretmanager

        client = secretmanager.SecretManagerServiceClient()
        return client.access_secret_version(name=config.hash_key_secret).payload.data
    key = os.environ.get(config.hash_key_env)
    return key.encode("utf-8") if key else None


class _ConvertFn(beam.DoFn):
    """Every document ends as exactly one of: a row, a dead letter, or outside the plan.

    A document whose day is not being replaced is left alone (its day keeps the
    rows of an earlier run); one with no usable day is always dead-lettered,
    since no run would ever write it.
    """

    def __init__(self, config: SyncConfig):
        self._config = config
        self._specs = {s.name: s for s in config.tables}

    TALLY = "tally"

    def setup(self) -> None:
        key = hash_key(self._config)
        self._hasher = hmac_hasher(key) if key else None
        self._counters: dict[str, Any] = {}

    def start_bundle(self) -> None:
        self._tally: dict[str, Counter] = defaultdict(Counter)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        # One small record per bundle carries the counts to the run audit as data,
        # so the audit does not depend on a runner's metrics API.
        for table, counts in self._tally.items():
            yield beam.pvalue.TaggedOutput(
                self.TALLY, WindowedValue((table, dict(counts)), 0, [GlobalWindow()])
            )

    def _inc(self, name: str) -> None:
        table, _, outcome = name.partition(".")
        if "@" not in outcome:
            self._tally[table][outcome] += 1
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
        self._tally[doc.table]["read"] += 1
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


def _add_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter = Counter()
    for c in counts:
        total.update(c)
    return dict(total)


class ConvertDocuments(beam.PTransform):
    """``(destination table, row)`` for every document, dead letters included.

    Returns ``(rows, tallies)``: tallies are ``(table, {read, rows, dead_lettered,
    outside_window})``, one per table, for the run audit.
    """

    def __init__(self, config: SyncConfig, plan):
        super().__init__()
        self._config = config
        self._plan = plan

    def expand(self, docs):
        # Sets make membership tests cheap; the plan is a handful of days per table.
        plan = self._plan | "PlanAsSets" >> beam.MapTuple(lambda t, days: (t, frozenset(days)))
        outputs = docs | "Convert" >> beam.ParDo(
            _ConvertFn(self._config), plan=beam.pvalue.AsDict(plan)
        ).with_outputs(_ConvertFn.TALLY, main="rows")
        tallies = outputs[_ConvertFn.TALLY] | "SumTallies" >> beam.CombinePerKey(_add_counts)
        return outputs.rows, tallies
