"""``_sync_leases``: which run may write each table now, so two runs never fight over one.

Real BigQuery aborts one of two transactions that mutate the same table
("Transaction is aborted due to concurrent update",
https://cloud.google.com/bigquery/docs/transactions#transaction_concurrency) and
runs at most 2 mutating DML statements per table at once, queueing 20
(https://cloud.google.com/bigquery/docs/data-manipulation-language). A 100M-document
weekly run can still be going when the nightly starts, and a backfill can start at
any time; bqemulator serialises transactions, so no local test would see them collide.

So a run leases its tables before it reads anything, and gives them back when it
ends (succeeded, failed or interrupted). The table holds one row per synced table:
the run holding it, since when, and until when. Taking is one transaction that
creates missing rows and then, only if none of the run's tables is held by another
run whose lease has not expired, UPDATEs every one of them to this run. Two runs
that find the same table free both update its row, and BigQuery aborts one of the
two transactions; the aborted one is run again and then finds the lease held. A
lease expires after ``--lease_minutes`` (default 6 hours), so a run killed outright
blocks the next runs only until then. A read after the transaction confirms the
lease (and settles the one race the transaction cannot, two runs creating the same
table's first row at once: the earliest taker wins).

Values are literals built from validated names and typed times: the emulator takes
no query parameters inside multi-statement scripts.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from pipelines import bigquery as bq
from pipelines.commit_log import check_run_id, timestamp_literal

if TYPE_CHECKING:
    from pipelines.options import SyncConfig

_LOG = logging.getLogger(__name__)
TABLE = "_sync_leases"
PARTITION_COLUMN = "created_at"
CLUSTERING: tuple[str, ...] = ("table_name",)
DESCRIPTION = (
    "One row per synced table: the run that holds the table's lease (may write it) and "
    "until when; NULL run_id: free."
)
SCHEMA: list[dict[str, str]] = [
    {"name": "table_name", "type": "STRING", "mode": "REQUIRED", "description": "Table."},
    {
        "name": PARTITION_COLUMN,
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "When the row was first written (partition column).",
    },
    {
        "name": "run_id",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Run holding the lease; NULL when the table is free.",
    },
    {
        "name": "taken_at",
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "When the run took the lease.",
    },
    {
        "name": "expires_at",
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "When the lease lapses even if the run never gives it back.",
    },
]
#: Seconds between looks at a held lease while waiting.
POLL_SECONDS = 10.0


@dataclass(frozen=True)
class Lease:
    table: str
    run_id: str
    taken_at: datetime.datetime
    expires_at: datetime.datetime

    def describe(self) -> str:
        return (
            f"held by run {self.run_id} since {_when(self.taken_at)}, "
            f"expires {_when(self.expires_at)}"
        )


def _when(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LeaseHeld(RuntimeError):
    """Another run holds a lease on one of this run's tables; the message is one line."""


def _names(tables: Iterable[str]) -> str:
    return ", ".join(f"'{bq.check_identifier(t, 'table')}'" for t in sorted(set(tables)))


def take_sql(
    project: str,
    dataset: str,
    run_id: str,
    tables: Sequence[str],
    now: datetime.datetime,
    expires: datetime.datetime,
) -> str:
    """The transaction that leases every one of ``tables`` to ``run_id``, or none."""
    target = bq.table_sql(project, dataset, TABLE)
    names, at = _names(tables), timestamp_literal(now)
    run = check_run_id(run_id)
    return (
        "BEGIN TRANSACTION;\n"
        f"INSERT INTO {target} (`table_name`, `{PARTITION_COLUMN}`)\n"
        f"SELECT name, {at} FROM UNNEST([{names}]) AS name\n"
        f"WHERE name NOT IN (SELECT `table_name` FROM {target});\n"
        f"UPDATE {target} SET `run_id` = '{run}', `taken_at` = {at}, "
        f"`expires_at` = {timestamp_literal(expires)}\n"
        f"WHERE `table_name` IN ({names}) AND NOT EXISTS (\n"
        f"  SELECT 1 FROM {target} WHERE `table_name` IN ({names}) AND `run_id` IS NOT NULL\n"
        f"  AND `run_id` != '{run}' AND `expires_at` > {at});\n"
        "COMMIT TRANSACTION;"
    )


def release_sql(project: str, dataset: str, run_id: str) -> str:
    """Give back every lease ``run_id`` holds (a no-op when it holds none)."""
    return (
        f"UPDATE {bq.table_sql(project, dataset, TABLE)} "
        "SET `run_id` = NULL, `taken_at` = NULL, `expires_at` = NULL "
        f"WHERE `run_id` = '{check_run_id(run_id)}'"
    )


def held(
    client: bigquery.Client,
    dataset: str,
    tables: Iterable[str],
    now: datetime.datetime,
) -> dict[str, Lease]:
    """The unexpired lease of each of ``tables`` that has one (the earliest taker's)."""
    wanted = sorted(set(tables))
    try:
        job = bq.run_query(
            client,
            "SELECT table_name, run_id, taken_at, expires_at "
            f"FROM {bq.table_sql(client.project, dataset, TABLE)} "
            "WHERE table_name IN UNNEST(@tables) AND run_id IS NOT NULL AND expires_at > @now "
            "ORDER BY taken_at, run_id",
            query_parameters=[
                bigquery.ArrayQueryParameter("tables", "STRING", wanted),
                bigquery.ScalarQueryParameter("now", "TIMESTAMP", now),
            ],
        )
    except api_exceptions.NotFound:  # no run has leased anything here yet
        return {}
    leases: dict[str, Lease] = {}
    for row in job.result():
        leases.setdefault(
            row["table_name"],
            Lease(row["table_name"], row["run_id"], row["taken_at"], row["expires_at"]),
        )
    return leases


def blocking(leases: Mapping[str, Lease], run_id: str) -> list[Lease]:
    """The leases that stop ``run_id``: those another run holds."""
    return [lease for _, lease in sorted(leases.items()) if lease.run_id != run_id]


def refusal(blockers: Sequence[Lease], waited: float) -> str:
    """One line naming the run in the way and when its lease lapses."""
    first = blockers[0]
    others = sorted({b.run_id for b in blockers} - {first.run_id})
    names = ", ".join(b.table for b in blockers if b.run_id == first.run_id)
    more = f" (and {', '.join(others)})" if others else ""
    return (
        f"{names}: lease {first.describe()}{more}; nothing was written"
        + (f" (waited {waited:.0f} s)" if waited else "")
        + "; run again when it has finished, or raise --lease_wait_seconds"
    )


def take(
    config: SyncConfig,
    now: datetime.datetime | None = None,
    sleep=time.sleep,
    clock=time.monotonic,
) -> None:
    """Lease every table of the run, waiting up to ``--lease_wait_seconds`` for a
    held one; raises :class:`LeaseHeld` naming the holder."""
    client = bq.make_client(config.project, config.location)
    tables = [spec.name for spec in config.tables]
    retry = bq.concurrent_update_retry()
    start = clock()
    while True:
        at = now or datetime.datetime.now(datetime.UTC)
        expires = at + datetime.timedelta(minutes=config.lease_minutes)
        retry(bq.run_query)(
            client, take_sql(config.project, config.dataset, config.run_id, tables, at, expires)
        )
        blockers = blocking(held(client, config.dataset, tables, at), config.run_id)
        if not blockers:
            _LOG.info("run %s leased %s until %s", config.run_id, ", ".join(tables), expires)
            return
        # Taken by no one, or lost a first-row race: give back whatever this run got.
        release(config, client)
        waited = clock() - start
        if waited + POLL_SECONDS > config.lease_wait_seconds:
            raise LeaseHeld(refusal(blockers, waited))
        _LOG.warning("waiting for a lease: %s", refusal(blockers, waited))
        sleep(POLL_SECONDS)


def release(config: SyncConfig, client: bigquery.Client | None = None) -> None:
    """Give back the run's leases; a dry run took none."""
    if config.dry_run or not config.dataset:
        return
    client = client or bq.make_client(config.project, config.location)
    bq.concurrent_update_retry()(bq.run_query)(
        client, release_sql(config.project, config.dataset, config.run_id)
    )
