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

import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam

from pipelines.plan.day_plan import TablePlan, add_tallies, table_days
from pipelines.plan.read_plan import IncrementalPlan
from pipelines.plan.windows import TableWindow
from pipelines.transforms import metrics


class _PlanDaysFn(beam.DoFn):
    def __init__(
        self,
        windows: Mapping[str, TableWindow],
        required_days: Sequence[datetime.date],
        yesterday: datetime.date | None,
        dry_run: bool,
    ):
        self._windows = dict(windows)
        self._required_days = tuple(required_days)
        self._yesterday = yesterday
        self._dry_run = dry_run

    def process(
        self,
        element: tuple[str, Mapping[str, Iterable[Any]]],
        read_plans: Mapping[str, IncrementalPlan],
    ) -> Iterator[tuple[str, TablePlan]]:
        table, grouped = element
        tally = add_tallies(grouped["tally"])
        plan = table_days(
            self._windows[table], tally, read_plans.get(table), self._required_days,
            self._yesterday,
        )  # fmt: skip
        metrics.counter(table, metrics.DOCUMENTS_READ).inc(plan.read)
        metrics.counter(table, metrics.ROWS).inc(plan.rows + plan.late_rows)
        metrics.counter(table, metrics.DEAD_LETTERED).inc(plan.dead_lettered)
        metrics.counter(table, metrics.OUTSIDE_WINDOW).inc(plan.outside_window)
        metrics.counter(table, metrics.LATE_EDIT_DAYS).inc(len(plan.late_days))
        for day, n in plan.rows_per_day.items():
            metrics.counter(table, metrics.ROWS_PER_DAY, day).inc(n)
        if self._dry_run:  # its summary has no verdict to read the reasons from
            for field, kind, n in plan.dead_letter_reasons:
                metrics.reason_counter(table, field, kind).inc(n)
        yield table, plan  # keyed once: the write and the audit take them as a dict


class PlanDays(beam.PTransform):
    """``(table, TablePlan)`` for every table of the run, including tables with no documents.

    ``windows``: each table's window; ``required_days``: what a dated full run
    replaces whatever the data says (the window and its look-back);
    ``yesterday``: no edited document's day past it is replaced (None: no limit);
    ``dry_run``: count dead-letter reasons in metrics, as no verdict will hold them.
    ``read_plans``: ``(table, IncrementalPlan)`` pairs from ``ReadIncremental``.
    """

    def __init__(
        self,
        windows: Iterable[TableWindow],
        required_days: Sequence[datetime.date],
        yesterday: datetime.date | None = None,
        dry_run: bool = False,
        read_plans=None,
    ):
        super().__init__()
        self._windows = {w.table: w for w in windows}
        self._args = (self._windows, required_days, yesterday, dry_run)
        self._read_plans = read_plans

    def expand(self, tallies):
        read_plans = self._read_plans
        if read_plans is None:
            read_plans = tallies.pipeline | "NoReadPlans" >> beam.Create([])
        tables = tallies.pipeline | "Tables" >> beam.Create(
            [(table, None) for table in self._windows]
        )
        return (
            {"table": tables, "tally": tallies}
            | "JoinTallies" >> beam.CoGroupByKey()
            | "Plan"
            >> beam.ParDo(_PlanDaysFn(*self._args), read_plans=beam.pvalue.AsDict(read_plans))
        )
