"""Decide, per table, which days this run replaces, from what the read saw.

Full mode with dates: the window's days, the ``--lookback_days`` before it, and
every day holding a document Firestore says was written during the window (its
``update_time``): a task created on Monday and completed on Thursday is
rewritten into Monday's partition. Full mode without dates: every day up to
yesterday (today too once intraday runs have written it: the window's
``horizon``). Incremental mode: the days its read plan chose (the window and the
drifted days), plus an upsert of every changed document up to the horizon.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam

from pipelines.cli.options import SyncConfig
from pipelines.plan.day_plan import (
    TablePlan,
    add_tallies,
    plan_full_rebuild,
    plan_incremental_table,
    plan_table,
)
from pipelines.plan.read_plan import IncrementalPlan
from pipelines.transforms import metrics


class _PlanDaysFn(beam.DoFn):
    def __init__(self, config: SyncConfig):
        self._config = config

    def process(
        self,
        element: tuple[str, Mapping[str, Iterable[Any]]],
        read_plans: Mapping[str, IncrementalPlan],
    ) -> Iterator[tuple[str, TablePlan]]:
        table, grouped = element
        tally = add_tallies(grouped["tally"])
        window = self._config.window(table)
        if window.incremental:
            read_plan = read_plans[table]
            if window.located_at is not None:  # old rows the drift query found
                tally.previous |= set(read_plan.rows_found.values())
            plan = plan_incremental_table(
                table,
                tally,
                read_plan.days,
                read_plan.drift_days,
                window.horizon or window.end,
                read_plan.count_queries,
                located=window.located_at is not None,
            )
            plan = dataclasses.replace(
                plan, verified_days=tuple(window.verify), lookup_days=read_plan.lookup_days
            )
        elif window.all_days:
            plan = plan_full_rebuild(table, tally, window.horizon or window.end, window.end)
        else:
            horizon = self._config.plan.yesterday if self._config.plan else None
            plan = plan_table(table, tally, self._config.required_days, horizon)
        metrics.counter(table, metrics.DOCUMENTS_READ).inc(plan.read)
        metrics.counter(table, metrics.ROWS).inc(plan.rows + plan.late_rows)
        metrics.counter(table, metrics.DEAD_LETTERED).inc(plan.dead_lettered)
        metrics.counter(table, metrics.OUTSIDE_WINDOW).inc(plan.outside_window)
        metrics.counter(table, metrics.LATE_EDIT_DAYS).inc(len(plan.late_days))
        for day, n in plan.rows_per_day.items():
            metrics.counter(table, metrics.ROWS_PER_DAY, day).inc(n)
        if self._config.dry_run:  # its summary has no verdict to read the reasons from
            for field, kind, n in plan.dead_letter_reasons:
                metrics.reason_counter(table, field, kind).inc(n)
        yield table, plan  # keyed once: the write and the audit take them as a dict


class PlanDays(beam.PTransform):
    """``(table, TablePlan)`` for every table of the run, including tables with no documents.

    ``read_plans``: ``(table, IncrementalPlan)`` pairs from ``ReadIncremental``.
    """

    def __init__(self, config: SyncConfig, read_plans=None):
        super().__init__()
        self._config = config
        self._read_plans = read_plans

    def expand(self, tallies):
        read_plans = self._read_plans
        if read_plans is None:
            read_plans = tallies.pipeline | "NoReadPlans" >> beam.Create([])
        tables = tallies.pipeline | "Tables" >> beam.Create(
            [(spec.name, None) for spec in self._config.tables]
        )
        return (
            {"table": tables, "tally": tallies}
            | "JoinTallies" >> beam.CoGroupByKey()
            | "Plan"
            >> beam.ParDo(
                _PlanDaysFn(self._config),
                read_plans=beam.pvalue.AsDict(read_plans),
            )
        )
