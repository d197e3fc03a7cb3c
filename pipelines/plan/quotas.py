"""BigQuery limits a run's plan must stay inside, checked before anything is read.

Pure functions over the :class:`~pipelines.plan.windows.RunPlan` (``plan_run`` calls
:func:`check`), so each limit is a unit test of the plan. The numbers, from
https://cloud.google.com/bigquery/quotas and the pages it links:

* 4,000 partitions modified by one job (query or load): each table's commit is one
  script whose DELETE and INSERT each touch every replaced day.
* 100,000 partition modifications in one multi-statement transaction: a commit is one
  transaction per table, so it touches its days plus one ``_sync_commits`` partition.
* 10,000 partitions per partitioned table.
* 1,500 table modifications per table per day: every load job counts against the
  table it loads, here the run's staging table (``--load_batch_rows`` sizes them);
  DML statements do not count, so the commits do not.
* 2 mutating DML statements (UPDATE, DELETE, MERGE) running per table, 20 queued:
  a run sends one commit per table, and the table lease (:mod:`pipelines.state.leases`)
  lets one run at a time write a table.

A plan over a limit is refused with one line saying what to run instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.plan.windows import RunPlan, TableWindow
from pipelines.refusals import OverQuota, backfill_command

PARTITIONS_PER_JOB = 4_000
PARTITIONS_PER_TRANSACTION = 100_000
PARTITIONS_PER_TABLE = 10_000
TABLE_MODIFICATIONS_PER_DAY = 1_500
MUTATING_DML_RUNNING_PER_TABLE = 2
MUTATING_DML_QUEUED_PER_TABLE = 20
#: Days per chunk suggested for a backfill that is too long for one commit.
CHUNK_DAYS = 365


@dataclass(frozen=True)
class TableNeeds:
    """What one table's run asks of BigQuery, as far as the plan knows before reading."""

    table: str
    #: Days the commit replaces for certain (None: every day that holds data, a
    #: whole-history rebuild, known only after reading). Late edits can add days.
    days: int | None
    #: Load jobs into the table's staging table (None: no estimate of the rows).
    load_jobs: int | None
    #: Mutating DML statements the run sends to the table (its commit).
    mutating_dml: int = 1

    @property
    def transaction_partitions(self) -> int | None:
        """Partitions the table's commit transaction modifies: its days, one
        ``_sync_commits`` partition."""
        return None if self.days is None else self.days + 1


def planned_days(window: TableWindow, lookback_days: int) -> int | None:
    """Days a table's commit replaces whatever the data says."""
    if window.all_days:
        return None
    days = len(window.days)
    if not window.incremental:
        days += lookback_days  # a dated full run also rebuilds its look-back
    return days + len(window.verify)  # every drift-checked day may be rebuilt


def needs(
    plan: RunPlan,
    *,
    lookback_days: int = 0,
    load_batch_rows: int,
    num_splits: int,
    expected_rows: Mapping[str, int] | None = None,
) -> list[TableNeeds]:
    """Per table: days per commit and load jobs into staging.

    Load jobs: one per ``load_batch_rows`` rows, plus one per bundle that ends
    part-full (at least one per read split); ``expected_rows`` is an estimate,
    e.g. what the table's last successful run wrote.
    """
    out = []
    for window in plan:
        rows = (expected_rows or {}).get(window.table)
        loads = None if rows is None else math.ceil(rows / load_batch_rows) + num_splits
        out.append(TableNeeds(window.table, planned_days(window, lookback_days), loads))
    return out


def check(
    plan: RunPlan,
    *,
    lookback_days: int = 0,
    load_batch_rows: int,
    num_splits: int,
    expected_rows: Mapping[str, int] | None = None,
    target: str = "",
) -> None:
    """Raise :class:`OverQuota` if the plan would exceed a limit.

    ``target``: ``--project P --dataset D`` for the command offered instead."""
    found = needs(
        plan,
        lookback_days=lookback_days,
        load_batch_rows=load_batch_rows,
        num_splits=num_splits,
        expected_rows=expected_rows,
    )
    for need in found:
        window = plan.window(need.table)
        if need.days is not None and need.days > PARTITIONS_PER_JOB:
            raise _too_many_days(need, window, lookback_days, target)
        if (
            need.transaction_partitions is not None
            and need.transaction_partitions > PARTITIONS_PER_TRANSACTION
        ):  # unreachable while the job limit holds; kept so the limit is stated
            raise OverQuota(f"{need.table}: over {PARTITIONS_PER_TRANSACTION:,} partitions")
        if need.load_jobs is not None and need.load_jobs > TABLE_MODIFICATIONS_PER_DAY:
            spare = TABLE_MODIFICATIONS_PER_DAY - num_splits
            rows = (expected_rows or {})[need.table]
            least = math.ceil(rows / max(spare, 1))
            raise OverQuota(
                f"{need.table}: about {need.load_jobs:,} load jobs into its staging table "
                f"(~{rows:,} rows at --load_batch_rows {load_batch_rows:,}) exceed BigQuery's "
                f"{TABLE_MODIFICATIONS_PER_DAY:,} table modifications per table per day; "
                f"raise --load_batch_rows to at least {min(least, 1_000_000):,}"
            )
        if need.mutating_dml > MUTATING_DML_RUNNING_PER_TABLE:
            raise OverQuota(
                f"{need.table}: {need.mutating_dml} mutating DML statements at once exceed "
                f"BigQuery's {MUTATING_DML_RUNNING_PER_TABLE} per table"
            )


def _too_many_days(
    need: TableNeeds, window: TableWindow, lookback_days: int, target: str
) -> OverQuota:
    """Too many days for one commit: fewer drift-checked days, or the range in chunks."""
    limit = f"BigQuery's {PARTITIONS_PER_JOB:,} partitions modified by one job"
    if window.verify:
        return OverQuota(
            f"{need.table}: replacing up to {need.days:,} days in one commit (with "
            f"{len(window.verify):,} drift-checked days) exceeds {limit}; "
            f"lower --verify_days by at least {need.days - PARTITIONS_PER_JOB:,}"
        )
    chunk = max(1, min(CHUNK_DAYS, PARTITIONS_PER_JOB - lookback_days))
    lookback = f" --lookback_days {lookback_days}" if lookback_days else ""
    sync_args = f"{target}--collections {need.table}{lookback}"
    backfill = backfill_command(window.start, window.end, sync_args, chunk)
    return OverQuota(
        f"{need.table}: replacing {need.days:,} days in one commit exceeds {limit}; "
        f"run it in chunks: {backfill}",
        instead=backfill,
    )

