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
import io
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue
from google.cloud import bigquery

from pipelines import audit, dead_letters
from pipelines import bigquery as bq
from pipelines.options import SyncConfig
from pipelines.table_spec import DOCUMENT_PATH_COLUMN
from pipelines.tally import TablePlan
from pipelines.transforms.read_firestore import NAMESPACE

_LOG = logging.getLogger(__name__)
#: Flush a staging batch at this many bytes of JSON even if it has fewer rows.
MAX_BATCH_BYTES = 256 * 1024 * 1024
#: Bytes of a staging batch kept in memory before it spills to a temporary file.
SPOOL_IN_MEMORY = 4 * 1024 * 1024


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
        # Staging holds every day of the collection: clustered, not partitioned,
        # so a long history cannot hit the 4,000-partitions-per-job limit.
        bq.ensure_table(
            client,
            config.dataset,
            bq.staging_table_name(config.run_id, spec.name),
            spec.bigquery_schema(),
            None,
            (spec.partition_column,),
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
    for destination in destination_schemas(config):
        drop_staging_table(client, config, destination)


def drop_staging_table(client: bigquery.Client, config: SyncConfig, destination: str) -> None:
    client.delete_table(
        f"{config.project}.{config.dataset}.{bq.staging_table_name(config.run_id, destination)}",
        not_found_ok=True,
        timeout=bq.CALL_TIMEOUT,
    )


class _StageRowsFn(beam.DoFn):
    """Append rows to this run's staging tables with load jobs.

    Each row is serialised as it arrives into a per-destination buffer that
    spills to a temporary file past a few MB, so a worker's memory does not grow
    with the batch; a batch is uploaded (streamed by the resumable upload) when
    it reaches ``--load_batch_rows`` rows or ``MAX_BATCH_BYTES``.
    """

    def __init__(self, config: SyncConfig):
        self._config = config

    def setup(self) -> None:
        self._client = bq.make_client(self._config.project, self._config.location)
        self._schemas = destination_schemas(self._config)

    def start_bundle(self) -> None:
        self._batches: dict[str, _Batch] = {}

    def process(self, element: tuple[str, dict[str, Any]]) -> Iterator[tuple[str, int]]:
        destination, row = element
        batch = self._batches.get(destination)
        if batch is None:
            batch = self._batches[destination] = _Batch()
        batch.write(bq.encode_row(row).encode("utf-8"))
        if batch.rows >= self._config.load_batch_rows or batch.size >= MAX_BATCH_BYTES:
            yield destination, self._flush(destination)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for destination in list(self._batches):
            yield WindowedValue((destination, self._flush(destination)), 0, [GlobalWindow()])

    def _flush(self, destination: str) -> int:
        batch = self._batches.pop(destination)
        with batch.buffer:
            bq.load_file(
                self._client,
                self._config.dataset,
                bq.staging_table_name(self._config.run_id, destination),
                self._schemas[destination],
                batch.buffer,
            )
        Metrics.counter(NAMESPACE, f"{destination}.rows_staged").inc(batch.rows)
        return batch.rows


class _Batch:
    """Newline-delimited JSON in memory up to ``SPOOL_IN_MEMORY``, then in a temp file."""

    def __init__(self) -> None:
        self.buffer: IO[bytes] = io.BytesIO()
        self.rows = 0
        self.size = 0

    def write(self, line: bytes) -> None:
        if self.size + len(line) > SPOOL_IN_MEMORY and isinstance(self.buffer, io.BytesIO):
            spilled = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _flush
            spilled.write(self.buffer.getvalue())
            self.buffer = spilled
        self.buffer.write(line)
        self.rows += 1
        self.size += len(line)


class _CommitFn(beam.DoFn):
    """Replace a table's planned days from staging in one transaction."""

    def __init__(self, config: SyncConfig):
        self._config = config
        self._specs = {s.name: s for s in config.tables}

    def setup(self) -> None:
        self._client = bq.make_client(self._config.project, self._config.location)

    def process(
        self, element: tuple[str, Mapping[str, Iterable[Any]]], plans: Mapping[str, TablePlan]
    ) -> Iterator[dict]:
        table, grouped = element
        staged = sum(grouped.get("staged", ()))
        plan = plans.get(table)
        result: dict[str, Any] = {"table": table, "staged": staged}
        try:
            if table == dead_letters.TABLE:
                self._append_dead_letters(staged, plans)
            else:
                result["written"] = self._replace_days(plan, staged)
            result["replaced"] = True
        except Exception as exc:  # noqa: BLE001 - reported per table, re-raised by RecordRun
            # One table failing must not hide which others were replaced: the
            # transaction rolled this one back, and the audit step fails the run.
            message = f"{type(exc).__name__}: {_first_line(exc)}"
            _LOG.error("commit of %s failed: %s", table, message)
            Metrics.counter(NAMESPACE, f"{table}.commit_failed").inc()
            result.update(replaced=False, error=message)
        finally:
            drop_staging_table(self._client, self._config, table)
        yield result

    def _append_dead_letters(self, staged: int, plans: Mapping[str, TablePlan]) -> None:
        if not staged:
            return
        config = self._config
        bq.run_query(
            self._client,
            bq.dead_letters_sql(
                config.project,
                config.dataset,
                dead_letters.TABLE,
                bq.staging_table_name(config.run_id, dead_letters.TABLE),
                [f["name"] for f in dead_letters.SCHEMA],
                dead_letters.KEY_COLUMNS,
                {name: plan.days for name, plan in plans.items()},
            ),
        )

    def _replace_days(self, plan: TablePlan, staged: int) -> dict[datetime.date, int]:
        config = self._config
        spec = self._specs[plan.table]
        days = list(plan.days)
        sql = bq.replace_days_sql(
            config.project,
            config.dataset,
            plan.table,
            bq.staging_table_name(config.run_id, plan.table),
            spec.column_names,
            spec.partition_column,
            days,
            (DOCUMENT_PATH_COLUMN,),
        )
        bq.run_query(self._client, sql)
        _LOG.info("replaced %d day(s) of %s from %d staged rows", len(days), plan.table, staged)
        written = bq.rows_per_day(
            self._client, config.dataset, plan.table, spec.partition_column, days
        )
        Metrics.counter(NAMESPACE, f"{plan.table}.days_replaced").inc(len(days))
        Metrics.counter(NAMESPACE, f"{plan.table}.rows_written").inc(sum(written.values()))
        for day, n in written.items():
            Metrics.counter(NAMESPACE, f"{plan.table}.written@{day.isoformat()}").inc(n)
        return written


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "…"


class WriteDayPartitions(beam.PTransform):
    """Stage ``(destination, row)`` pairs, then commit each table's planned days."""

    def __init__(self, config: SyncConfig, plans):
        super().__init__()
        self._config = config
        self._plans = plans

    def expand(self, rows):
        staged = rows | "StageRows" >> beam.ParDo(_StageRowsFn(self._config))
        # Every destination is committed, even one with nothing staged: a day
        # with no documents left is emptied.
        destinations = rows.pipeline | "Destinations" >> beam.Create(
            [(name, None) for name in destination_schemas(self._config)]
        )
        return (
            {"destination": destinations, "staged": staged}
            | "WaitForStaging" >> beam.CoGroupByKey()
            | "Commit"
            >> beam.ParDo(
                _CommitFn(self._config),
                plans=beam.pvalue.AsDict(
                    self._plans | "ByTable" >> beam.Map(lambda p: (p.table, p))
                ),
            )
        )
