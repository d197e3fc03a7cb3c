"""Append one row per run to the ``_sync_runs`` audit table, from inside the pipeline.

Runs last (its inputs are side inputs, so it waits for every commit), on any
runner, whether or not the launcher waits for the job. If a table's commit
failed, the row says which tables were and were not replaced, and then the step
fails so the job itself shows as failed.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam

from pipelines.plan.day_plan import TablePlan
from pipelines.plan.windows import TableWindow
from pipelines.services import bigquery as bq
from pipelines.state.run_log import audit_row, write_audit_row
from pipelines.state.stamp import RunStamp
from pipelines.state.verdict import Counts, RunStatus, TableStatus, TableVerdict, worst

_LOG = logging.getLogger(__name__)


class TablesNotReplaced(RuntimeError):
    """Some tables' commits failed; the others were replaced."""


def table_verdict(plan: TablePlan, commit: Mapping[str, Any], window: TableWindow) -> TableVerdict:
    """One table's audit entry: what was read, written and replaced, and its status.

    ``succeeded`` needs a commit and counts that reconcile: every document read
    is written, dead-lettered or outside the replaced days, and the table holds
    exactly the rows planned. ``window``: what the run set out to do to the table,
    which says whether a success moves its watermark and "fresh as of".
    """
    written = commit.get("written") or {}
    rows_written = sum(written.values()) + int(commit.get("late_written") or 0)
    accounted = plan.rows + plan.late_rows + plan.dead_lettered + plan.outside_window
    if commit.get("refused"):
        status = TableStatus.REFUSED
    elif not commit.get("replaced"):
        status = TableStatus.FAILED
    elif plan.read != accounted or rows_written != plan.rows + plan.late_rows:
        status = TableStatus.NOT_RECONCILED
    else:
        status = TableStatus.SUCCEEDED
    error = commit.get("error")
    if status is TableStatus.NOT_RECONCILED:
        error = (
            f"counts do not reconcile: read {plan.read}, planned {plan.rows + plan.late_rows} "
            f"row(s) + {plan.dead_lettered} dead + {plan.outside_window} outside, "
            f"table holds {rows_written}"
        )
    replaced_days = sorted(set(written) | set(plan.days)) if commit.get("replaced") else []
    succeeded = status is TableStatus.SUCCEEDED
    return TableVerdict(
        table=plan.table,
        mode=plan.mode,
        status=status,
        replaced=bool(commit.get("replaced")),
        replaced_days=tuple(replaced_days),
        advances_watermark=succeeded and window.advances_watermark,
        intraday=window.intraday,  # its replaced days are not complete
        fresh=succeeded and window.makes_fresh,  # status's "fresh as of"
        error=error,
        counts=Counts(
            documents_read=plan.read,
            documents_returned=plan.returned,
            count_queries=plan.count_queries,
            # Previous versions read to find moved rows; the days the old-row delete
            # named (None: it scanned the table's whole history).
            previous_reads=plan.previous_reads,
            delete_days=plan.located_days,
            # What the drift check scanned: partition column of the verified days,
            # and _document_path too on the lookup days.
            verified_days=plan.verified_days,
            lookup_days=plan.lookup_days,
            rows_written=rows_written,
            late_edits=plan.late_rows,
            dead_lettered=plan.dead_lettered,
            # Field names and reason kinds (dead_letters.reason_kind), never a value.
            dead_letter_reasons=plan.dead_letter_reasons,
            outside_window=plan.outside_window,
            days_replaced=len(replaced_days),
            late_edit_days=plan.late_days,
            drift_days=plan.drift_days,
            rows_per_day=dict(sorted(written.items())),
            rows_before=dict(sorted((commit.get("before") or {}).items())),
        ),
    )


class _RecordRunFn(beam.DoFn):
    def __init__(
        self,
        target: bq.Target,
        stamp: RunStamp,
        windows: Sequence[TableWindow],
        window: tuple[datetime.date, datetime.date],
        runner: str,
    ):
        self._target = target
        self._stamp = stamp
        self._windows = tuple(windows)
        self._window = window
        self._runner = runner

    def process(
        self, _: Any, commits: list[dict[str, Any]], plans: Mapping[str, TablePlan]
    ) -> Iterator[dict[str, Any]]:
        from pipelines.state import dead_letters
        from pipelines.state.tables import drop_staging_of

        by_table = {c["table"]: c for c in commits}
        tables = [
            table_verdict(plans[window.table], by_table.get(window.table, {}), window)
            for window in self._windows
        ]
        letters = by_table.get(dead_letters.TABLE, {})
        status = worst(tables, bool(letters.get("replaced")))
        problems = [
            f"{t.table}: {t.error}" for t in tables if t.status is not TableStatus.SUCCEEDED
        ]
        if letters.get("error"):
            problems.append(f"{dead_letters.TABLE}: {letters['error']}")
        error = "; ".join(problems) or None
        row = audit_row(self._stamp, self._runner, self._window, status, tables, error)
        write_audit_row(self._target, row)
        destinations = [*(w.table for w in self._windows), dead_letters.TABLE]
        target, run_id = self._target, self._stamp.run_id
        drop_staging_of(target.client(), target.dataset, run_id, destinations)
        _give_back_leases(self._target, self._stamp.run_id)
        if status is not RunStatus.SUCCEEDED:
            replaced = [t.table for t in tables if t.replaced]
            not_replaced = [t.table for t in tables if not t.replaced]
            raise TablesNotReplaced(
                f"{status.value}: not replaced: {', '.join(not_replaced) or 'none'}; "
                f"replaced: {', '.join(replaced) or 'none'} ({error})"
            )
        yield row


def _give_back_leases(target: bq.Target, run_id: str) -> None:
    """The run is over once its verdict is written: its tables are free again (here,
    inside the job, so a Flex Template launch that does not wait gives them back too).
    A failure only leaves the lease to lapse at its expiry."""
    from pipelines.state import leases

    try:
        leases.release_run(target, run_id)
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the lease expires
        _LOG.warning("could not give back the leases of run %s: %s", run_id, exc)


class RecordRun(beam.PTransform):
    """Write the run's audit row once every commit is done, then drop its staging
    tables and give back its leases.

    ``target``: the dataset; ``stamp``: the run's id and snapshot; ``windows``:
    what it did to each table; ``window``: the first and last day any table
    replaces; ``runner``: recorded in the row; ``plans``: ``(table, TablePlan)``
    pairs, as ``PlanDays`` makes them.
    """

    def __init__(
        self,
        target: bq.Target,
        stamp: RunStamp,
        windows: Sequence[TableWindow],
        window: tuple[datetime.date, datetime.date],
        runner: str,
        plans,
    ):
        super().__init__()
        self._args = (target, stamp, tuple(windows), window, runner)
        self._plans = plans

    def expand(self, commits):
        return (
            commits.pipeline
            | "Once" >> beam.Create([None])
            | "RecordRun"
            >> beam.ParDo(
                _RecordRunFn(*self._args),
                commits=beam.pvalue.AsList(commits),
                plans=beam.pvalue.AsDict(self._plans),
            )
        )
