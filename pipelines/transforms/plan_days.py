"""Decide, per table, which days this run replaces.

The window's days, the ``--lookback_days`` before it, and every day holding a
document whose ``updated_field`` falls inside the window: a task completed
three days after it was created is rebuilt into its creation day by the next
nightly run. The plan is small and becomes a side input of conversion.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import firestore as fs
from pipelines.convert import convert_value
from pipelines.options import SyncConfig
from pipelines.table_spec import TableSpec
from pipelines.transforms.read_firestore import NAMESPACE

UTC = datetime.UTC


def window_bounds(config: SyncConfig) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.combine(config.start_date, datetime.time(), tzinfo=UTC)
    end = datetime.datetime.combine(
        config.end_date + datetime.timedelta(days=1), datetime.time(), tzinfo=UTC
    )
    return start, end


class _PlanDaysFn(beam.DoFn):
    def __init__(self, config: SyncConfig):
        self._config = config

    def setup(self) -> None:
        self._client = fs.make_client(self._config.project, self._config.database)
        self._retry = fs.read_retry(self._config.firestore_retry_timeout)
        self._planning_reads = Metrics.counter(NAMESPACE, "firestore.planning_reads")

    def process(self, spec: TableSpec) -> Iterator[tuple[str, list[datetime.date]]]:
        config = self._config
        days = {
            config.rebuild_floor + datetime.timedelta(days=i)
            for i in range((config.end_date - config.rebuild_floor).days + 1)
        }
        since, until = window_bounds(config)
        late = Metrics.counter(NAMESPACE, f"{spec.name}.late_edit_days")
        for value in fs.edited_days(
            self._client, spec, since, until, config.read_time, self._retry
        ):
            self._planning_reads.inc()
            try:
                day = datetime.date.fromisoformat(convert_value(spec.partition, value)[:10])
            except (TypeError, ValueError):
                continue  # no usable day: the full read dead-letters it
            if day not in days:
                late.inc()
                days.add(day)
        yield spec.name, sorted(days)


class PlanDays(beam.PTransform):
    """``(table, [days to replace])`` for every table of the run."""

    def __init__(self, config: SyncConfig):
        super().__init__()
        self._config = config

    def expand(self, pbegin):
        return (
            pbegin
            | "Tables" >> beam.Create(list(self._config.tables))
            | "PlanDays" >> beam.ParDo(_PlanDaysFn(self._config))
        )
