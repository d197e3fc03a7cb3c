"""Write rows into day-partitioned tables, replacing each planned day as a whole.

Beam's ``WriteToBigQuery`` cannot be pointed at another endpoint, so the local
emulator could not test it; this sink uses the BigQuery client for both:

1. **Stage**: workers append batches of rows to a per-run staging table with
   load jobs (free, atomic per job).
2. **Commit**: once every batch of a table is staged (a ``CoGroupByKey`` is the
   barrier), one transaction deletes the table's planned days and inserts the
   staged rows of those days. A failure rolls back: the table is as before.
   A day with no rows left in the snapshot is emptied by the delete.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import audit, dead_letters
from pipelines import bigquery as bq
from pipelines.options import SyncConfig
from pipelines.table_spec import DOCUMENT_PATH_COLUMN
from pipelines.transforms.read_firestore import NAMESPACE

_LOG = logging.getLogger(__name__)
#: Flush a staging batch at this many bytes of JSON even if it has fewer rows.
MAX_BATCH_BYTES = 64 * 1024 * 1024


def destination_schemas(config: SyncConfig) -> dict[str, list[dict[str, str]]]:
    schemas = {spec.name: spec.bigquery_schema() for spec in config.tables}
    schemas[dead_letters.TABLE] = dead_letters.SCHEMA
    return schemas


def prepare_tables(config: SyncConfig) -> None:
    """Create the dataset, the tables and this run's staging tables (launcher side)."""
    client = bq.make_client(config.project, config.location)
    bq.ensure_dataset(client, config.dataset, config.location)
    expires = config.started_at + bq.STAGING_EXPIRY
    for spec in config.tables:
        bq.ensure_spec_table(client, config.dataset, spec)
        bq.ensure_table(
            client,
            config.dataset,
            bq.staging_table_name(config.run_id, spec.name),
            spec.bigquery_schema(),
            spec.partition_column,
            expires=expires,
        )
    bq.ensure_table(
        client, config.dataset, audit.TABLE, audit.SCHEMA, audit.PARTITION_COLUMN,
        description=audit.DESCRIPTION,
    )  # fmt: skip
    for name in (dead_letters.TABLE, bq.staging_table_name(config.run_id, dead_letters.TABLE)):
        bq.ensure_table(
            client,
            config.dataset,
            name,
            dead_letters.SCHEMA,
            dead_letters.PARTITION_COLUMN,
            dead_letters.CLUSTERING,
            expires=expires if name != dead_letters.TABLE else None,
        )


def drop_staging_tables(config: SyncConfig) -> None:
    """Remove this run's staging tables (they would expire on their own anyway)."""
    client = bq.make_client(config.project, config.location)
    for name in [*(s.name for s in config.tables), dead_letters.TABLE]:
        client.delete_table(
            f"{config.project}.{config.dataset}.{bq.staging_table_name(config.run_id, name)}",
            not_found_ok=True,
            timeout=bq.CALL_TIMEOUT,
        )


class _StageRowsFn(beam.DoFn):
    """Buffer rows per destination and append them to staging with load jobs."""

    def __init__(self, config: SyncConfig):
        self._config = config

    def setup(self) -> None:
        self._client = bq.make_client(self._config.project, self._config.location)
        self._schemas = destination_schemas(self._config)

    def start_bundle(self) -> None:
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self._bytes: dict[str, int] = {}

    def process(self, element: tuple[str, dict[str, Any]]) -> Iterator[tuple[str, int]]:
        destination, row = element
        buffer = self._buffers.setdefault(destination, [])
        buffer.append(row)
        # A cheap size estimate; the exact size is only known when serialised.
        self._bytes[destination] = (
            self._bytes.get(destination, 0)
            + 64
            + sum(len(v) for v in row.values() if isinstance(v, str))
        )
        if (
            len(buffer) >= self._config.load_batch_rows
            or self._bytes[destination] >= MAX_BATCH_BYTES
        ):
            yield destination, self._flush(destination)

    def finish_bundle(self) -> Iterator[beam.utils.windowed_value.WindowedValue]:
        for destination in list(self._buffers):
            if self._buffers[destination]:
                n = self._flush(destination)
                yield beam.utils.windowed_value.WindowedValue(
                    (destination, n), 0, [beam.transforms.window.GlobalWindow()]
                )

    def _flush(self, destination: str) -> int:
        rows = self._buffers.pop(destination)
        self._bytes.pop(destination, None)
        staging = bq.staging_table_name(self._config.run_id, destination)
        loaded = bq.load_rows(
            self._client, self._config.dataset, staging, self._schemas[destination], rows
        )
        if loaded != len(rows):
            raise RuntimeError(f"staging {destination}: loaded {loaded} of {len(rows)} rows")
        Metrics.counter(NAMESPACE, f"{destination}.rows_staged").inc(loaded)
        return loaded


class _CommitFn(beam.DoFn):
    """Replace a table's planned days from staging in one transaction."""

    def __init__(self, config: SyncConfig):
        self._config = config
        self._specs = {s.name: s for s in config.tables}

    def setup(self) -> None:
        self._client = bq.make_client(self._config.project, self._config.location)

    def process(self, element: tuple[str, Mapping[str, Iterable[Any]]]) -> Iterator[dict]:
        table, grouped = element
        staged = sum(grouped.get("staged", ()))
        days: list[datetime.date] = sorted({d for plan in grouped.get("plan", ()) for d in plan})
        result: dict[str, Any] = {"table": table, "staged": staged, "days": days}
        try:
            if table == dead_letters.TABLE:
                self._append_dead_letters(staged)
            else:
                result["written"] = self._replace_days(table, days, staged)
            result["replaced"] = True
        except Exception as exc:  # noqa: BLE001 - reported per table, re-raised by RecordRun
            # One table failing must not hide which others were replaced: the
            # transaction rolled this one back, and the audit step fails the run.
            _LOG.error("commit of %s failed: %s: %s", table, type(exc).__name__, exc)
            Metrics.counter(NAMESPACE, f"{table}.commit_failed").inc()
            result.update(replaced=False, error=f"{type(exc).__name__}: {_first_line(exc)}")
        finally:
            self._drop(bq.staging_table_name(self._config.run_id, table))
        yield result

    def _append_dead_letters(self, staged: int) -> None:
        if not staged:
            return
        config = self._config
        bq.run_query(
            self._client,
            bq.append_sql(
                config.project,
                config.dataset,
                dead_letters.TABLE,
                bq.staging_table_name(config.run_id, dead_letters.TABLE),
                [f["name"] for f in dead_letters.SCHEMA],
                dead_letters.KEY_COLUMNS,
            ),
        )

    def _replace_days(
        self, table: str, days: list[datetime.date], staged: int
    ) -> dict[datetime.date, int]:
        config = self._config
        spec = self._specs[table]
        if days:
            sql = bq.replace_days_sql(
                config.project,
                config.dataset,
                table,
                bq.staging_table_name(config.run_id, table),
                spec.column_names,
                spec.partition_column,
                days,
                (DOCUMENT_PATH_COLUMN,),
            )
            bq.run_query(self._client, sql)
            _LOG.info("replaced %d day(s) of %s from %d staged rows", len(days), table, staged)
        written = bq.rows_per_day(self._client, config.dataset, table, spec.partition_column, days)
        Metrics.counter(NAMESPACE, f"{table}.days_replaced").inc(len(days))
        Metrics.counter(NAMESPACE, f"{table}.rows_written").inc(sum(written.values()))
        for day, n in written.items():
            Metrics.counter(NAMESPACE, f"{table}.written@{day.isoformat()}").inc(n)
        return written

    def _drop(self, staging: str) -> None:
        self._client.delete_table(
            f"{self._config.project}.{self._config.dataset}.{staging}",
            not_found_ok=True,
            timeout=bq.CALL_TIMEOUT,
        )


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "…"


class WriteDayPartitions(beam.PTransform):
    """Stage ``(destination, row)`` pairs, then commit each table's planned days."""

    def __init__(self, config: SyncConfig, plan):
        super().__init__()
        self._config = config
        self._plan = plan

    def expand(self, rows):
        staged = rows | "StageRows" >> beam.ParDo(_StageRowsFn(self._config))
        # The dead-letter table is committed like the others, with no days to replace.
        plan = (
            self._plan,
            rows.pipeline | "DeadLetterPlan" >> beam.Create([(dead_letters.TABLE, [])]),
        ) | "AllDestinations" >> beam.Flatten()
        return (
            {"plan": plan, "staged": staged}
            | "WaitForStaging" >> beam.CoGroupByKey()
            | "Commit" >> beam.ParDo(_CommitFn(self._config))
        )
