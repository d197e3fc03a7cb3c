"""Decide, per table, which days this run replaces, from what the read saw.

The window's days, the ``--lookback_days`` before it, and every day holding a
document Firestore says was written during the window (its ``update_time``):
a task created on Monday and completed on Thursday is rewritten into Monday's
partition by Thursday's nightly run. Planning reads no extra documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.options import SyncConfig
from pipelines.tally import TablePlan, add_tallies, plan_table
from pipelines.transforms.read_firestore import NAMESPACE


class _PlanFn(beam.DoFn):
    def __init__(self, config: SyncConfig):
        self._config = config

    def process(self, element: tuple[str, Mapping[str, Iterable[Any]]]) -> Iterator[TablePlan]:
        table, grouped = element
        plan = plan_table(table, add_tallies(grouped["tally"]), self._config.required_days)
        counter = lambda name, n: Metrics.counter(NAMESPACE, f"{table}.{name}").inc(n)  # noqa: E731
        counter("rows", plan.rows)
        counter("dead_lettered", plan.dead_lettered)
        counter("outside_window", plan.outside_window)
        counter("late_edit_days", len(plan.late_days))
        for day, n in plan.rows_per_day.items():
            counter(f"rows@{day.isoformat()}", n)
        yield plan


class PlanDays(beam.PTransform):
    """``TablePlan`` for every table of the run, including tables with no documents."""

    def __init__(self, config: SyncConfig):
        super().__init__()
        self._config = config

    def expand(self, tallies):
        tables = tallies.pipeline | "Tables" >> beam.Create(
            [(spec.name, None) for spec in self._config.tables]
        )
        return (
            {"table": tables, "tally": tallies}
            | "JoinTallies" >> beam.CoGroupByKey()
            | "Plan" >> beam.ParDo(_PlanFn(self._config))
        )
