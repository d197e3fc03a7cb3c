"""Append one row per run to the ``_sync_runs`` audit table, from inside the pipeline.

Runs last (its inputs are side inputs, so it waits for every commit), on any
runner, whether or not the launcher waits for the job. If a table's commit
failed, the row says which tables were and were not replaced, and then the step
fails so the job itself shows as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam

from pipelines.cli.options import SyncConfig
from pipelines.plan.day_plan import TablePlan
from pipelines.state.run_log import audit_row, write_audit_row

_LOG = logging.getLogger(__name__)


class TablesNotReplaced(RuntimeError):
    """Some tables' commits failed; the others were replaced."""


def table_verdict(plan: TablePlan, commit: Mapping[str, Any]) -> dict[str, Any]:
    """One table's audit entry: what was read, written and replaced, and its status.

    ``succeeded`` needs a commit and counts that reconcile: every document read
    is written, dead-lettered or outside the replaced days, and the table holds
    exactly the rows planned.
    """
    written = commit.get("written") or {}
    rows_written = sum(written.values()) + int(commit.get("late_written") or 0)
    accounted = plan.rows + plan.late_rows + plan.dead_lettered + plan.outside_window
    if commit.get("refused"):
        status = "refused"
    elif not commit.get("replaced"):
        status = "failed"
    elif plan.read != accounted or rows_written != plan.rows + plan.late_rows:
        status = "not_reconciled"
    else:
        status = "succeeded"
    error = commit.get("error")
    if status == "not_reconciled":
        error = (
            f"counts do not reconcile: read {plan.read}, planned {plan.rows + plan.late_rows} "
            f"row(s) + {plan.dead_lettered} dead + {plan.outside_window} outside, "
            f"table holds {rows_written}"
        )
    replaced_days = sorted(set(written) | set(plan.days)) if commit.get("replaced") else []
    return {
        "table": plan.table,
        "mode": plan.mode,
        "status": status,
        "replaced": bool(commit.get("replaced")),
        "replaced_days": [d.isoformat() for d in replaced_days],
        "documents_read": plan.read,
        "documents_returned": plan.returned,
        "count_queries": plan.count_queries,
        # Previous versions read to find moved rows; the days the old-row delete
        # named (None: it scanned the table's whole history).
        "previous_reads": plan.previous_reads,
        "delete_days": (
            None if plan.located_days is None else [d.isoformat() for d in plan.located_days]
        ),
        # What the drift check scanned: partition column of the verified days,
        # and _document_path too on the lookup days.
        "verified_days": [d.isoformat() for d in plan.verified_days],
        "lookup_days": [d.isoformat() for d in plan.lookup_days],
        "rows_written": rows_written,
        "late_edits": plan.late_rows,
        "dead_lettered": plan.dead_lettered,
        # Field names and reason kinds (dead_letters.reason_kind), never a value.
        "dead_letter_reasons": [
            {"field": field, "reason": kind, "count": n}
            for field, kind, n in plan.dead_letter_reasons
        ],
        "outside_window": plan.outside_window,
        "days_replaced": len(replaced_days),
        "late_edit_days": [d.isoformat() for d in plan.late_days],
        "drift_days": [d.isoformat() for d in plan.drift_days],
        "rows_per_day": {d.isoformat(): n for d, n in sorted(written.items())},
        "rows_before": {d.isoformat(): n for d, n in sorted((commit.get("before") or {}).items())},
        "error": error,
    }


def run_status(tables: Sequence[Mapping[str, Any]], dead_letters_ok: bool) -> str:
    statuses = {t["status"] for t in tables}
    if not dead_letters_ok or statuses & {"failed", "refused"}:
        return "failed"
    if "not_reconciled" in statuses:
        return "not_reconciled"
    return "succeeded"


class _RecordRunFn(beam.DoFn):
    def __init__(self, config: SyncConfig, runner: str):
        self._config = config
        self._runner = runner

    def process(
        self, _: Any, commits: list[dict[str, Any]], plans: Mapping[str, TablePlan]
    ) -> Iterator[dict[str, Any]]:
        from pipelines.state import dead_letters
        from pipelines.state.tables import drop_staging_tables

        by_table = {c["table"]: c for c in commits}
        tables = []
        for spec in self._config.tables:
            entry = table_verdict(plans[spec.name], by_table.get(spec.name, {}))
            window = self._config.window(spec.name)
            succeeded = entry["status"] == "succeeded"
            entry["advances_watermark"] = succeeded and window.advances_watermark
            entry["intraday"] = window.intraday  # its replaced days are not complete
            entry["fresh"] = succeeded and window.makes_fresh  # status's "fresh as of"
            tables.append(entry)
        letters = by_table.get(dead_letters.TABLE, {})
        status = run_status(tables, bool(letters.get("replaced")))
        problems = [f"{t['table']}: {t['error']}" for t in tables if t["status"] != "succeeded"]
        if letters.get("error"):
            problems.append(f"{dead_letters.TABLE}: {letters['error']}")
        error = "; ".join(problems) or None
        row = audit_row(self._config, self._runner, status, tables, error)
        write_audit_row(self._config, row)
        drop_staging_tables(self._config.target, self._config.run_id, self._config.tables)
        _give_back_leases(self._config)
        if status != "succeeded":
            replaced = [t["table"] for t in tables if t["replaced"]]
            not_replaced = [t["table"] for t in tables if not t["replaced"]]
            raise TablesNotReplaced(
                f"{status}: not replaced: {', '.join(not_replaced) or 'none'}; "
                f"replaced: {', '.join(replaced) or 'none'} ({error})"
            )
        yield row


def _give_back_leases(config: SyncConfig) -> None:
    """The run is over once its verdict is written: its tables are free again (here,
    inside the job, so a Flex Template launch that does not wait gives them back too).
    A failure only leaves the lease to lapse at its expiry."""
    from pipelines.state import leases

    try:
        leases.release(config)
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the lease expires
        _LOG.warning("could not give back the leases of run %s: %s", config.run_id, exc)


class RecordRun(beam.PTransform):
    """Write the run's audit row once every commit is done.

    ``plans``: ``(table, TablePlan)`` pairs, as ``PlanDays`` makes them.
    """

    def __init__(self, config: SyncConfig, runner: str, plans):
        super().__init__()
        self._config = config
        self._runner = runner
        self._plans = plans

    def expand(self, commits):
        return (
            commits.pipeline
            | "Once" >> beam.Create([None])
            | "RecordRun"
            >> beam.ParDo(
                _RecordRunFn(self._config, self._runner),
                commits=beam.pvalue.AsList(commits),
                plans=beam.pvalue.AsDict(self._plans),
            )
        )
