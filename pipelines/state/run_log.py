"""The audit table: one row per sync run, so "did last night's run work?" is a query.

Defined here, next to the pipeline, so the run that writes these rows and
``scripts/setup_bigquery.py`` that creates the table share one schema.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from pipelines.plan.windows import TableState
from pipelines.services import bigquery as bq
from pipelines.state import commit_log
from pipelines.state.verdict import (
    RunStatus,
    TableStatus,
    TableVerdict,
    entries,
    is_verdict,
    run_status,
)

if TYPE_CHECKING:
    from pipelines.cli.options import SyncConfig
    from pipelines.state.stamp import RunStamp

TABLE = "_sync_runs"
PARTITION_COLUMN = "started_at"
CLUSTERING: tuple[str, ...] = ()
DESCRIPTION = "One row per Firestore-to-BigQuery sync run: window, outcome and per-table counts."
SCHEMA: list[dict[str, str]] = [
    {"name": "run_id", "type": "STRING", "mode": "REQUIRED", "description": "Sync run."},
    {
        "name": "runner",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Beam runner, e.g. DataflowRunner.",
    },
    {
        "name": "window_start",
        "type": "DATE",
        "mode": "NULLABLE",
        "description": "First day of the window (UTC).",
    },
    {
        "name": "window_end",
        "type": "DATE",
        "mode": "NULLABLE",
        "description": "Last day of the window, inclusive (UTC).",
    },
    {
        "name": "read_time",
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "Firestore snapshot time.",
    },
    {
        "name": PARTITION_COLUMN,
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "Run start (partition column).",
    },
    {
        "name": "finished_at",
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "Run end.",
    },
    {
        "name": "status",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "running (written when the run starts), then succeeded, failed, "
        "not_reconciled or interrupted.",
    },
    {
        "name": "error",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Why the run failed, if it did.",
    },
    {
        "name": "tables",
        "type": "JSON",
        "mode": "NULLABLE",
        "description": "Per table: table, mode, status (succeeded, refused, failed, "
        "not_reconciled, or committed: replaced by a run interrupted before its counts were "
        "checked), replaced, replaced_days, advances_watermark, intraday (its replaced days "
        "are not complete), fresh (status's fresh as of: a success not given dates), "
        "documents_read, documents_returned, count_queries, previous_reads (previous versions "
        "read to find moved rows), delete_days (the days the delete of old rows named; null: "
        "it scanned the table), verified_days (counted by the drift check), lookup_days "
        "(where it looked up the changed documents' rows), rows_written, late_edits, "
        "dead_lettered, dead_letter_reasons (the commonest: field, reason without values, "
        "count), outside_window, days_replaced, late_edit_days, drift_days, rows_per_day, "
        "rows_before, error.",
    },
]


#: How far back ``table_states`` looks (the partition filter); a table last
#: synced before that is treated as never synced, i.e. gets a full run.
HISTORY = datetime.timedelta(days=400)


def table_states(
    client: bigquery.Client,
    dataset: str,
    tables: Iterable[str],
    now: datetime.datetime | None = None,
) -> dict[str, TableState]:
    """Each table's newest replaced day, last success, watermark and last failure.

    Read from ``_sync_runs`` (each run's verdict) and ``_sync_commits`` (written
    atomically with each replacement): a table a run replaced counts as replaced
    even when the run died before its verdict; a run that started and never
    finished (killed, or its server lost) reads as a failure of every table it
    did not commit.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    wanted = list(tables)
    since = [bigquery.ScalarQueryParameter("since", "TIMESTAMP", now - HISTORY)]
    job = bq.run_query(
        client,
        "SELECT run_id, read_time, started_at, status, error, tables, window_start, window_end "
        f"FROM {bq.table_sql(client.project, dataset, TABLE)} "
        f"WHERE {PARTITION_COLUMN} >= @since ORDER BY {PARTITION_COLUMN}",
        query_parameters=since,
    )
    return fold_states([dict(r) for r in job.result()], committed(client, dataset, now=now), wanted)


def fold_states(
    rows: Iterable[Mapping[str, Any]],
    commits: Mapping[str, Mapping[str, Mapping[str, Any]]],
    tables: Iterable[str],
) -> dict[str, TableState]:
    """The pure half of :func:`table_states`: ``_sync_runs`` rows (start rows and
    verdicts, any order) and ``_sync_commits`` rows by run and table, folded in
    the order the runs started."""
    runs: dict[str, dict[str, Any]] = {}
    for row in rows:
        run = runs.setdefault(row["run_id"], dict(row))
        if is_verdict(row):  # the verdict supersedes the start row
            run.update(dict(row))
    wanted = list(tables)
    facts: dict[str, dict[str, Any]] = {t: {} for t in wanted}
    for run in sorted(runs.values(), key=lambda r: r["started_at"]):
        by_table = {e.table: e for e in entries(run)}
        landed = commits.get(run["run_id"], {})
        for table in wanted:
            _record(facts[table], run, by_table, by_table.get(table), landed.get(table))
    return {table: TableState(table, **fact) for table, fact in facts.items()}


def _record(
    fact: dict[str, Any],
    run: Mapping[str, Any],
    run_entries: Mapping[str, TableVerdict],
    entry: TableVerdict | None,
    commit: Mapping[str, Any] | None,
) -> None:
    """Fold one run's outcome for one table into that table's facts.

    ``run_entries``: all of the run's entries, by table (a verdict that names
    other tables only did not touch this one)."""
    ended = run_status(run)
    if entry is not None:
        replaced_ok = entry.status.replaced_ok
    elif commit is not None:
        replaced_ok = True  # the run died before its verdict; the commit stands
    elif ended is RunStatus.SUCCEEDED or (ended is not RunStatus.RUNNING and run_entries):
        return  # the run did not touch this table
    else:  # failed before any commit, or never finished
        replaced_ok = False
    if not replaced_ok:
        error = (entry.error if entry is not None else None) or run["error"]
        if entry is None and ended is RunStatus.RUNNING:
            error = "unfinished: started but never recorded an outcome (interrupted or lost)"
        fact.update(
            last_failure_run_id=run["run_id"],
            last_failure_at=run["started_at"],
            last_failure_error=error,
        )
        return
    fact.update(last_success_run_id=run["run_id"], last_success_read_time=run["read_time"])
    if entry is not None and entry.counts is not None:
        fact["last_rows"] = entry.counts.rows_written
    if entry.advances_watermark if entry is not None else commit["advances_watermark"]:
        fact["watermark"] = run["read_time"]
    intraday = entry is not None and entry.intraday
    if _fresh(entry, commit):
        fact["fresh_read_time"] = run["read_time"]
    if intraday:
        fact["intraday_read_time"] = run["read_time"]
    dated = _dated_window(run, entry)
    if dated is not None:
        fact["dated_windows"] = (*fact.get("dated_windows", ()), dated)
    # An intraday run declares no day complete: its days never move newest_day
    # (its commit row's newest_day is NULL too).
    days = list(entry.replaced_days) if entry is not None and not intraday else []
    if commit is not None and commit["newest_day"] is not None:
        days.append(commit["newest_day"])
    # Nor is a day complete before it is over: a run after intraday runs may
    # replace today (windows.wrote_today); the next nightly still replaces it whole.
    days = [d for d in days if d < run["started_at"].astimezone(datetime.UTC).date()]
    if days and (fact.get("newest_day") is None or max(days) > fact["newest_day"]):
        fact["newest_day"] = max(days)


def _dated_window(
    run: Mapping[str, Any], entry: TableVerdict | None
) -> tuple[datetime.date, datetime.date, datetime.datetime] | None:
    """A dated run's window and snapshot, for ``windows.backfill_watermark``: only
    from a verdict that says the run was dated (:attr:`TableVerdict.dated`) and
    replaced the table; older verdicts, and commits without one, give none."""
    if entry is None or not entry.dated:
        return None
    start, end, snapshot = run.get("window_start"), run.get("window_end"), run.get("read_time")
    if start is None or end is None or snapshot is None:
        return None
    return _date(start), _date(end), snapshot


def _date(value: Any) -> datetime.date:
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))


def _fresh(entry: TableVerdict | None, commit: Mapping[str, Any] | None) -> bool:
    """Whether a table's success leaves it as of the run's snapshot (not a dated run):
    the verdict's :attr:`TableVerdict.makes_fresh`. A commit without a verdict:
    never, as it does not say whether its run was given dates (a dated incremental
    run advances the watermark too), and too early is safe, "fresh as of" a later
    time than true is not."""
    if entry is None:
        return False
    return entry.makes_fresh


def finished_runs(
    client: bigquery.Client, dataset: str, since: datetime.datetime
) -> set[str]:
    """Runs started since ``since`` that recorded a verdict (any status but running)."""
    try:
        job = bq.run_query(
            client,
            f"SELECT DISTINCT run_id FROM {bq.table_sql(client.project, dataset, TABLE)} "
            f"WHERE {PARTITION_COLUMN} >= @since AND status != '{RunStatus.RUNNING.value}'",
            query_parameters=[bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)],
        )
    except api_exceptions.NotFound:
        return set()
    return {row["run_id"] for row in job.result()}


def committed(
    client: bigquery.Client,
    dataset: str,
    run_id: str | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``_sync_commits`` rows by run and table (of one run, or of the last ``HISTORY``)."""
    now = now or datetime.datetime.now(datetime.UTC)
    where = f"{commit_log.PARTITION_COLUMN} >= @since"
    params = [bigquery.ScalarQueryParameter("since", "TIMESTAMP", now - HISTORY)]
    if run_id is not None:
        where += " AND run_id = @run_id"
        params.append(bigquery.ScalarQueryParameter("run_id", "STRING", run_id))
    try:
        job = bq.run_query(
            client,
            f"SELECT * FROM {bq.table_sql(client.project, dataset, commit_log.TABLE)} "
            f"WHERE {where}",
            query_parameters=params,
        )
    except api_exceptions.NotFound:  # a dataset written before commits were logged
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in job.result():
        out.setdefault(row["run_id"], {})[row["table_name"]] = dict(row)
    return out


def audit_row(
    stamp: RunStamp,
    runner: str,
    window: tuple[datetime.date, datetime.date],
    status: RunStatus,
    tables: Sequence[TableVerdict],
    error: str | None = None,
) -> dict[str, Any]:
    """The run's ``_sync_runs`` row; a ``running`` row (written at the start) has no end.
    ``window``: the first and last day any table replaces."""
    window_start, window_end = window
    return {
        "run_id": stamp.run_id,
        "runner": runner,
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "read_time": stamp.read_time_text,
        "started_at": stamp.started_text,
        "finished_at": (
            None if status is RunStatus.RUNNING else datetime.datetime.now(datetime.UTC).isoformat()
        ),
        "status": status.value,
        "error": error,
        "tables": [t.to_json() for t in tables],
    }


def committed_entries(
    tables: Iterable[str],
    landed: Mapping[str, Mapping[str, Any]],
    planned: Mapping[str, tuple[str, bool, bool]] | None = None,
) -> list[TableVerdict]:
    """Per-table entries of a run that ended before its verdict, from what
    ``_sync_commits`` says landed (no counts: the run never reached them).
    ``planned``: each table's (mode, intraday, fresh: ``TableWindow.makes_fresh``)
    as the run planned them, where known (a commit row says its own mode; without
    the plan a commit is not fresh, see :func:`_fresh`)."""
    out = []
    for table in tables:
        commit = landed.get(table)
        mode, intraday, fresh = (planned or {}).get(table, (None, False, False))
        if commit is not None:
            mode, intraday = commit["mode"], commit["newest_day"] is None and intraday
        out.append(
            TableVerdict(
                table=table,
                mode=mode,
                status=TableStatus.COMMITTED if commit else TableStatus.FAILED,
                replaced=commit is not None,
                advances_watermark=bool(commit and commit["advances_watermark"]),
                intraday=intraday,
                fresh=commit is not None and fresh,
                replaced_days=(commit["newest_day"],) if commit and commit["newest_day"] else (),
                error=None if commit else "not replaced: the run stopped first",
            )
        )
    return out


def abandoned_row(
    run_id: str,
    tables: Iterable[str],
    landed: Mapping[str, Mapping[str, Any]],
    started: Mapping[str, Any] | None,
    taken_at: datetime.datetime,
    why: str,
) -> dict[str, Any]:
    """The verdict of a run that ended without writing one, written by the run
    that found its leases lapsed (``pipelines.state.leftovers``). ``started``: its
    ``running`` row, if it wrote one (its window and snapshot); else the lease's
    ``taken_at`` stands for its start."""
    def text(value: Any) -> str | None:
        return value.isoformat() if hasattr(value, "isoformat") else value

    started = started or {}
    return {
        "run_id": run_id,
        "runner": started.get("runner"),
        "window_start": text(started.get("window_start")),
        "window_end": text(started.get("window_end")),
        "read_time": text(started.get("read_time")),
        "started_at": text(started.get("started_at") or taken_at),
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "status": RunStatus.INTERRUPTED.value,
        "error": why,
        "tables": [t.to_json() for t in committed_entries(tables, landed)],
    }


def write_audit_row(target: bq.Target, row: Mapping[str, Any]) -> None:
    """Append ``row`` to the run's dataset (see :func:`append_row`)."""
    append_row(target.client(), target.dataset, row)


def append_row(client: bigquery.Client, dataset: str, row: Mapping[str, Any]) -> None:
    """Append ``row``; a retried attempt of the same run and status is a no-op
    (so two runs that find one dead run write its verdict once)."""
    try:
        job_id = f"f2bq_audit_{row['run_id']}_{row['status']}"
        bq.load_rows(client, dataset, TABLE, SCHEMA, [row], job_id=job_id)
    except api_exceptions.Conflict:
        pass  # this exact row was written by an earlier attempt


def read_audit_row(config: SyncConfig) -> dict[str, Any] | None:
    """The run's verdict row, if the pipeline got as far as writing it."""
    client = bq.make_client(config.project, config.location)
    rows = verdict_rows(client, config.dataset, config.run_id, started=config.started_at)
    return rows[0] if rows else None


def verdict_rows(
    client: bigquery.Client,
    dataset: str,
    run_id: str,
    started: datetime.datetime | None = None,
    *,
    since: datetime.datetime | None = None,
    with_start: bool = False,
) -> list[dict[str, Any]]:
    """A run's verdict rows (not the ``running`` row it writes first), newest first.
    ``started``: the run's start, which prunes ``_sync_runs`` to one partition;
    ``since``: a lower bound on it, which prunes to the partitions after it.
    ``with_start``: the ``running`` row too (last)."""
    params = [bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]
    running = RunStatus.RUNNING.value
    pruned = "" if with_start else f" AND status != '{running}'"
    if started is not None:
        pruned += f" AND {PARTITION_COLUMN} = @started"
        params.append(bigquery.ScalarQueryParameter("started", "TIMESTAMP", started))
    if since is not None:
        pruned += f" AND {PARTITION_COLUMN} >= @since"
        params.append(bigquery.ScalarQueryParameter("since", "TIMESTAMP", since))
    job = bq.run_query(
        client,
        f"SELECT * FROM {bq.table_sql(client.project, dataset, TABLE)} "
        f"WHERE run_id = @run_id{pruned} "
        f"ORDER BY status = '{running}', finished_at DESC",
        query_parameters=params,
    )
    return [dict(r) for r in job.result()]


def succeeded_windows(
    client: bigquery.Client,
    dataset: str,
    since: datetime.datetime,
    tables: Iterable[str],
) -> list[tuple[datetime.date, datetime.date]]:
    """Windows of runs since ``since`` that replaced every one of ``tables`` successfully.

    A run counts when its row says ``succeeded`` and its ``tables`` entries hold
    each of ``tables`` with status ``succeeded`` and ``replaced`` true (as
    :func:`~pipelines.state.verdict.entries` reads them: the first verdicts,
    which had no status of their own, count as the fold counts them): a run of
    fewer tables (``--collections``) did not do another run's work. ``since``
    bounds the scan by the partition column. A dataset or ``_sync_runs`` that
    does not exist yet means no run has replaced anything: ``[]``. This is what
    ``firestore-to-bq backfill`` resumes from, so every machine sees the same progress.
    """
    wanted = set(tables)
    try:
        job = bq.run_query(
            client,
            "SELECT window_start, window_end, status, tables "
            f"FROM {bq.table_sql(client.project, dataset, TABLE)} "
            f"WHERE {PARTITION_COLUMN} >= @since AND status = @succeeded "
            "AND window_start IS NOT NULL AND window_end IS NOT NULL "
            f"ORDER BY {PARTITION_COLUMN}",
            query_parameters=[
                bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
                bigquery.ScalarQueryParameter("succeeded", "STRING", RunStatus.SUCCEEDED.value),
            ],
        )
    except api_exceptions.NotFound:
        return []
    windows = []
    for row in job.result():
        replaced = {
            e.table for e in entries(dict(row)) if e.status is TableStatus.SUCCEEDED and e.replaced
        }
        if wanted <= replaced:
            windows.append((row["window_start"], row["window_end"]))
    return windows
