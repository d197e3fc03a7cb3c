"""Append one row per run to the ``_sync_runs`` audit table, from inside the pipeline.

Runs last (its inputs are side inputs, so it waits for every commit), on any
runner, whether or not the launcher waits for the job. If a table's commit
failed, the row says which tables were and were not replaced, and then the step
fails so the job itself shows as failed.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from pipelines import audit
from pipelines import bigquery as bq
from pipelines.options import SyncConfig
from pipelines.tally import TablePlan

UTC = datetime.UTC


class TablesNotReplaced(RuntimeError):
    """Some tables' commits failed; the others were replaced."""


def audit_row(
    config: SyncConfig,
    runner: str,
    status: str,
    tables: Sequence[Mapping[str, Any]],
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "run_id": config.run_id,
        "runner": runner,
        "window_start": config.start_date.isoformat(),
        "window_end": config.end_date.isoformat(),
        "read_time": config.read_time_text,
        "started_at": config.started_text,
        "finished_at": datetime.datetime.now(UTC).isoformat(),
        "status": status,
        "error": error,
        "tables": list(tables),
    }


def write_audit_row(config: SyncConfig, row: Mapping[str, Any]) -> None:
    """Append ``row``; a retried attempt of the same run and status is a no-op."""
    client = bq.make_client(config.project, config.location)
    try:
        bq.load_rows(
            client,
            config.dataset,
            audit.TABLE,
            audit.SCHEMA,
            [row],
            job_id=f"f2bq_audit_{config.run_id}_{row['status']}",
        )
    except api_exceptions.Conflict:
        pass  # this exact row was written by an earlier attempt


def read_audit_row(config: SyncConfig) -> dict[str, Any] | None:
    """The run's audit row, if the pipeline got as far as writing it."""
    client = bq.make_client(config.project, config.location)
    job = bq.run_query(
        client,
        f"SELECT * FROM {bq.table_sql(config.project, config.dataset, audit.TABLE)} "
        "WHERE run_id = @run_id ORDER BY finished_at DESC LIMIT 1",
        query_parameters=[bigquery.ScalarQueryParameter("run_id", "STRING", config.run_id)],
    )
    rows = [dict(r) for r in job.result()]
    return rows[0] if rows else None


class _RecordRunFn(beam.DoFn):
    def __init__(self, config: SyncConfig, runner: str):
        self._config = config
        self._runner = runner

    def process(
        self, _: Any, commits: list[dict[str, Any]], plans: Mapping[str, TablePlan]
    ) -> Iterator[dict[str, Any]]:
        by_table = {c["table"]: c for c in commits}
        tables = []
        for spec in self._config.tables:
            commit = by_table.get(spec.name, {})
            plan = plans[spec.name]
            written = commit.get("written") or {}
            tables.append(
                {
                    "table": spec.name,
                    "documents_read": plan.read,
                    "rows_written": sum(written.values()),
                    "dead_lettered": plan.dead_lettered,
                    "outside_window": plan.outside_window,
                    "days_replaced": len(plan.days) if commit.get("replaced") else 0,
                    "late_edit_days": [d.isoformat() for d in plan.late_days],
                    "replaced": bool(commit.get("replaced")),
                    "rows_per_day": {d.isoformat(): n for d, n in sorted(written.items())},
                    "error": commit.get("error"),
                }
            )
        failed = [c for c in commits if c.get("error")]
        error = "; ".join(f"{c['table']}: {c['error']}" for c in failed) or None
        row = audit_row(
            self._config, self._runner, "failed" if failed else "succeeded", tables, error
        )
        write_audit_row(self._config, row)
        if failed:
            replaced = [t["table"] for t in tables if t["replaced"]]
            raise TablesNotReplaced(
                f"not replaced: {', '.join(c['table'] for c in failed)}; "
                f"replaced: {', '.join(replaced) or 'none'} ({error})"
            )
        yield row


class RecordRun(beam.PTransform):
    """Write the run's audit row once every commit is done."""

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
                plans=beam.pvalue.AsDict(
                    self._plans | "ByTable" >> beam.Map(lambda p: (p.table, p))
                ),
            )
        )
