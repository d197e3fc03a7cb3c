"""pipelines.transforms.metrics reads back what a pipeline counted: no server, Beam's own runner."""

from __future__ import annotations

import datetime

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipelines.transforms import metrics


def _count(element: int) -> int:
    metrics.counter("tasks", metrics.DOCUMENTS_READ).inc()
    metrics.counter("tasks", metrics.ROWS_PER_DAY, datetime.date(2026, 11, 2)).inc(element)
    return element


def test_counters_are_summed_over_steps_and_read_back_by_name() -> None:
    pipeline = beam.Pipeline(runner=FnApiRunner())
    numbers = pipeline | beam.Create([1, 2, 3])
    _ = numbers | "First" >> beam.Map(_count)
    _ = numbers | "Second" >> beam.Map(_count)  # the same counters from another step
    result = pipeline.run()
    result.wait_until_finish()
    values = metrics.committed(result)
    assert values["tasks.documents_read"] == 6
    assert metrics.per_day(values, "tasks", metrics.ROWS_PER_DAY) == {"2026-11-02": 12}
