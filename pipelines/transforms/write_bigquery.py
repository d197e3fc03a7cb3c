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

import dataclasses
import datetime
import functools
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.convert.table_spec import DOCUMENT_PATH_COLUMN, TableSpec
from pipelines.plan.day_plan import TablePlan
from pipelines.plan.windows import TableWindow
from pipelines.services import bigquery as bq
from pipelines.services import error_text
from pipelines.state import commit_log, dead_letters, leases
from pipelines.state.leases import WorkerRenewal
from pipelines.state.stamp import RunStamp
from pipelines.state.tables import destination_schemas, drop_staging_of
from pipelines.transforms import metrics

_LOG = logging.getLogger(__name__)
#: Flush a staging batch at this many bytes of JSON even if it has fewer rows.
MAX_BATCH_BYTES = 256 * 1024 * 1024
#: Bytes of a staging batch kept in memory before it spills to a temporary file.
SPOOL_IN_MEMORY = 4 * 1024 * 1024


class _StageRowsFn(beam.DoFn):
    """Append rows to this run's staging tables with load jobs.

    Each row is serialised as it arrives into a per-destination buffer that
    spills to a temporary file past a few MB, so a worker's memory does not grow
    with the batch; a batch is uploaded (streamed by the resumable upload) when
    it reaches ``--load_batch_rows`` rows or ``MAX_BATCH_BYTES``.
    """

    def __init__(
        self,
        target: bq.Target,
        run_id: str,
        schemas: Mapping[str, list[dict[str, str]]],
        load_batch_rows: int,
        renewal: WorkerRenewal | None = None,
    ):
        self._target = target
        self._run_id = run_id
        self._schemas = dict(schemas)
        self._load_batch_rows = load_batch_rows
        self._renewal = renewal

    def setup(self) -> None:
        self._client = self._target.client()

    def start_bundle(self) -> None:
        self._batches: dict[str, _Batch] = {}

    def process(self, element: tuple[str, dict[str, Any]]) -> Iterator[tuple[str, int]]:
        destination, row = element
        batch = self._batches.get(destination)
        if batch is None:
            batch = self._batches[destination] = _Batch()
        batch.write(bq.encode_row(row).encode("utf-8"))
        if batch.rows >= self._load_batch_rows or batch.size >= MAX_BATCH_BYTES:
            yield destination, self._flush(destination)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for destination in list(self._batches):
            yield GlobalWindows.windowed_value((destination, self._flush(destination)))

    def _flush(self, destination: str) -> int:
        if self._renewal is not None:
            self._renewal.beat()
        batch = self._batches.pop(destination)
        with batch.buffer:
            bq.load_file(
                self._client,
                self._target.dataset,
                bq.staging_table_name(self._run_id, destination),
                self._schemas[destination],
                batch.buffer,
            )
        metrics.counter(destination, metrics.ROWS_STAGED).inc(batch.rows)
        return batch.rows


class _Batch:
    """Newline-delimited JSON in memory up to ``SPOOL_IN_MEMORY``, then in a temp file."""

    def __init__(self) -> None:
        # "r+b", not the default "w+b": the BigQuery client refuses to upload a
        # file whose mode is not a read mode, and the in-memory file reports it.
        self.buffer: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by _flush
            max_size=SPOOL_IN_MEMORY, mode="r+b"
        )
        self.rows = 0
        self.size = 0

    def write(self, line: bytes) -> None:
        self.buffer.write(line)
        self.rows += 1
        self.size += len(line)


class _CommitFn(beam.DoFn):
    """Replace a table's planned days from staging in one transaction."""

    def __init__(
        self,
        target: bq.Target,
        specs: Sequence[TableSpec],
        windows: Mapping[str, TableWindow],
        stamp: RunStamp,
        guards: Guards,
        renewal: WorkerRenewal | None = None,
    ):
        self._target = target
        self._specs = {spec.name: spec for spec in specs}
        self._windows = dict(windows)
        self._stamp = stamp
        self._guards = guards
        self._renewal = renewal

    def setup(self) -> None:
        self._client = self._target.client()

    def process(
        self, element: tuple[str, Mapping[str, Iterable[Any]]], plans: Mapping[str, TablePlan]
    ) -> Iterator[dict]:
        table, grouped = element
        if self._renewal is not None:
            self._renewal.beat()
        staged = sum(grouped.get("staged", ()))
        plan = plans.get(table)
        result: dict[str, Any] = {"table": table, "staged": staged}
        try:
            if table == dead_letters.TABLE:
                self._append_dead_letters(staged, plans)
                result["replaced"] = True
            else:
                result.update(self._replace_days(plan, staged))
        except Exception as exc:  # noqa: BLE001 - reported per table, re-raised by RecordRun
            # One table failing must not hide which others were replaced: the
            # transaction rolled this one back, and the audit step fails the run.
            message = error_text.one_line(exc, keep=error_text.names(self._specs.values()))
            _LOG.error("commit of %s failed: %s", table, message)
            metrics.counter(table, metrics.COMMIT_FAILED).inc()
            result.update(replaced=False, error=message)
        finally:
            if table != dead_letters.TABLE:  # tables' commits read the dead letters' staging
                drop_staging_of(self._client, self._target.dataset, self._stamp.run_id, [table])
        yield result

    def _append_dead_letters(self, staged: int, plans: Mapping[str, TablePlan]) -> None:
        if not staged:
            return
        target = self._target
        bq.run_query(
            self._client,
            bq.dead_letters_sql(
                target.project,
                target.dataset,
                dead_letters.TABLE,
                bq.staging_table_name(self._stamp.run_id, dead_letters.TABLE),
                [f["name"] for f in dead_letters.SCHEMA],
                dead_letters.KEY_COLUMNS,
                [plan.answered for plan in plans.values()],
            ),
        )

    def _replace_days(self, plan: TablePlan, staged: int) -> dict[str, Any]:
        target, run_id, window = self._target, self._stamp.run_id, self._windows[plan.table]
        spec = self._specs[plan.table]
        days = list(plan.days)
        if not days and not plan.read:
            return {"replaced": True, "written": {}, "late_written": 0}  # nothing to do
        count = functools.partial(
            bq.rows_per_day, self._client, target.dataset, plan.table, spec.partition_column
        )
        before = count(days, through=plan.through)
        refusal = dead_letter_refusal(plan, self._guards.max_dead_letter_share, run_id)
        if refusal is None and not self._guards.allow_shrink:
            refusal = shrink_refusal(plan, before)
        if refusal:
            _LOG.error("%s: not replaced: %s", plan.table, refusal)
            metrics.counter(plan.table, metrics.REFUSED).inc()
            return {"replaced": False, "refused": True, "error": refusal, "before": before}
        staging = bq.staging_table_name(run_id, plan.table)
        sql = bq.replace_days_sql(
            target.project,
            target.dataset,
            plan.table,
            staging,
            spec.column_names,
            spec.partition_column,
            days,
            (DOCUMENT_PATH_COLUMN,),
            through=plan.through,
            upsert_through=plan.upsert_through,
            dead_staging=(
                bq.staging_table_name(run_id, dead_letters.TABLE)
                if plan.incremental
                else None
            ),
            located=plan.located_days,
            fence=leases.fence_sql(target.project, target.dataset, run_id, plan.table),
            record=commit_log.insert_sql(
                target.project,
                target.dataset,
                run_id=run_id,
                table=plan.table,
                committed_at=datetime.datetime.now(datetime.UTC),
                read_time=self._stamp.read_time,
                mode=plan.mode,
                days=days,
                advances_watermark=window.advances_watermark,
                complete=not window.intraday,
            ),
        )
        # The whole transaction again if BigQuery aborted it for a concurrent
        # update (nothing of it was applied); any other error is final.
        retry = bq.concurrent_update_retry(
            on_error=lambda exc: _LOG.warning(
                "commit of %s aborted by a concurrent update; retrying", plan.table
            )
        )
        retry(bq.run_query)(self._client, sql)
        _LOG.info("replaced %d day(s) of %s from %d staged row(s)", len(days), plan.table, staged)
        written = count(days, through=plan.through)
        late = 0
        if plan.incremental:
            late = bq.count_rows_elsewhere(
                self._client, target.dataset, plan.table, staging, spec.partition_column, days,
                located=plan.located_days, upsert_through=plan.upsert_through,
            )
        metrics.counter(plan.table, metrics.DAYS_REPLACED).inc(len(days))
        metrics.counter(plan.table, metrics.ROWS_WRITTEN).inc(sum(written.values()) + late)
        for day, n in written.items():
            metrics.counter(plan.table, metrics.WRITTEN_PER_DAY, day).inc(n)
        return {"replaced": True, "written": written, "late_written": late, "before": before}


@dataclasses.dataclass(frozen=True)
class Guards:
    """What a commit refuses: a table whose dead letters exceed
    ``max_dead_letter_share`` of its documents read (None: no limit), and a day
    that would lose more than half its rows unless ``allow_shrink``."""

    max_dead_letter_share: float | None = None
    allow_shrink: bool = False


#: The shrink guard: a day holding at least this many rows may not lose more than half.
SHRINK_MIN_ROWS = 100


def shrink_refusal(plan: TablePlan, before: Mapping[datetime.date, int]) -> str | None:
    """Why replacing would lose too much, or None (the caller names the table).

    An empty read over days that hold rows (a wrong project, database or
    collection reads as nothing) or a day losing more than half of its rows.
    """
    held = sum(before.values())
    if plan.read == 0 and held:
        days = sorted(d for d, n in before.items() if n)
        return (
            "the read returned no documents but "
            f"{_span(days)} hold {held} row(s); check --project, --firestore_database "
            "and --collections, or re-run with --allow_shrink to empty them"
        )
    after = plan.rows_per_day
    shrunk = {
        d: (n, after.get(d, 0))
        for d, n in sorted(before.items())
        if n >= SHRINK_MIN_ROWS and after.get(d, 0) < n / 2
    }
    if shrunk:
        detail = ", ".join(f"{d}: {b} -> {a}" for d, (b, a) in shrunk.items())
        return (
            f"{len(shrunk)} day(s) would lose more than half "
            f"their rows ({detail}); re-run with --allow_shrink if that is right"
        )
    return None


def dead_letter_refusal(plan: TablePlan, limit: float | None, run_id: str = "") -> str | None:
    """Why too many of the table's documents are dead letters, or None (the caller
    names the table): more than ``--max_dead_letter_share`` of the documents read.

    Checked before the shrink guard, and not lifted by ``--allow_shrink``."""
    if limit is None or not plan.read or plan.dead_lettered / plan.read <= limit:
        return None
    share = plan.dead_lettered / plan.read
    top = dead_letters.reasons_text(plan.dead_letter_reasons[:1]) or "see _dead_letters"
    return (
        f"{plan.dead_lettered} of {plan.read} documents read were dead-lettered "
        f"({share:.1%}), more than --max_dead_letter_share {limit:g}; top reason: {top}; "
        f"read them in {dead_letters.TABLE}"
        + (f", run_id {run_id}" if run_id else "")
        + "; fix the schema or the documents, or raise the limit"
    )


def _span(days: list[datetime.date]) -> str:
    if not days:
        return "no days"
    return f"{days[0]}" if len(days) == 1 else f"{len(days)} days ({days[0]}..{days[-1]})"


class WriteDayPartitions(beam.PTransform):
    """Stage ``(destination, row)`` pairs, then commit each table's planned days.

    ``target``: the dataset written; ``specs`` and ``windows``: its tables and
    what this run does to each; ``stamp``: the run's id (staging tables, the
    lease fence, ``_sync_commits``) and snapshot; ``plans``: ``(table,
    TablePlan)`` pairs, as ``PlanDays`` makes them; ``load_batch_rows``: rows per
    load job; ``guards``: the refusals a commit applies. ``renewal``: renews the
    run's leases while staging and committing, for a job no launcher waits on.
    Each commit checks the lease in its transaction.
    """

    def __init__(
        self,
        target: bq.Target,
        specs: Sequence[TableSpec],
        windows: Iterable[TableWindow],
        stamp: RunStamp,
        plans,
        load_batch_rows: int = 500_000,
        guards: Guards | None = None,
        renewal: WorkerRenewal | None = None,
    ):
        super().__init__()
        self._schemas = destination_schemas(specs)
        self._stage = (target, stamp.run_id, self._schemas, load_batch_rows, renewal)
        windows = {w.table: w for w in windows}
        self._commit = (target, tuple(specs), windows, stamp, guards or Guards(), renewal)
        self._plans = plans

    def expand(self, rows):
        staged = rows | "StageRows" >> beam.ParDo(_StageRowsFn(*self._stage))
        # Every destination is committed, even one with nothing staged: a day
        # with no documents left is emptied.
        destinations = rows.pipeline | "Destinations" >> beam.Create(
            [(name, None) for name in self._schemas]
        )
        return (
            {"destination": destinations, "staged": staged}
            | "WaitForStaging" >> beam.CoGroupByKey()
            | "Commit"
            >> beam.ParDo(_CommitFn(*self._commit), plans=beam.pvalue.AsDict(self._plans))
        )
