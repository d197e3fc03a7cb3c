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
read after the transaction confirms the lease (and settles the one race the
transaction cannot, two runs creating the same table's first row at once: the
earliest taker wins).

A lease is short-lived and renewed while its run lives, so a run that dies
(``kill -9``, a lost VM, a lost BigQuery) blocks the next one for minutes, not
hours. ``--lease_minutes`` (default 10) is its time to live; the run's own
process renews it every third of that (:class:`Heartbeat`, while the pipeline
runs in process or the launcher waits on a Dataflow job), and a Flex Template
job, whose launcher exits once the job is submitted, renews it from its workers
as they convert, stage and commit (:class:`WorkerRenewal`), after a start
allowance (:data:`HANDOVER_START`) that covers Dataflow's worker start-up. A
renewal only extends a lease the run still holds; it never takes one back.

A lease that lapsed while its run still lives cannot let two runs write one table:
each commit's transaction first checks that the run still holds the table's lease
(:func:`fence_sql`), and fails, changing nothing, when it was released or taken
by a newer run. A run that finds a lapsed lease takes the table over; what the
dead run left (its staging tables, its missing verdict) is settled by
:mod:`pipelines.state.leftovers`.

Values are literals built from validated names and typed times: the emulator takes
no query parameters inside multi-statement scripts.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from pipelines.refusals import LeaseHeld
from pipelines.services import bigquery as bq
from pipelines.state.commit_log import check_run_id, timestamp_literal

if TYPE_CHECKING:
    from pipelines.cli.options import SyncConfig

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
#: ``--lease_minutes``' default: how long a dead run's lease blocks the next run.
DEFAULT_TTL_MINUTES = 10
#: A lease is renewed when a third of its time to live has passed, so two renewals
#: in a row can fail (a BigQuery blip) before it lapses.
RENEW_FRACTION = 3
#: A Flex Template job's lease first lasts this much longer than ``--lease_minutes``:
#: nothing renews it between the launcher's exit and the first worker's renewal,
#: which waits for Dataflow to start its workers (typically 3-5 minutes; a slow
#: zone or a large worker image takes longer).
HANDOVER_START = datetime.timedelta(minutes=30)


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


def release_sql(
    project: str, dataset: str, run_id: str, lapsed_by: datetime.datetime | None = None
) -> str:
    """Give back every lease ``run_id`` holds (a no-op when it holds none); with
    ``lapsed_by``, only those that lapsed by then (a renewed one stays)."""
    lapsed = f" AND `expires_at` <= {timestamp_literal(lapsed_by)}" if lapsed_by else ""
    return (
        f"UPDATE {bq.table_sql(project, dataset, TABLE)} "
        "SET `run_id` = NULL, `taken_at` = NULL, `expires_at` = NULL "
        f"WHERE `run_id` = '{check_run_id(run_id)}'{lapsed}"
    )


def renew_sql(project: str, dataset: str, run_id: str, expires: datetime.datetime) -> str:
    """Extend the leases ``run_id`` still holds to at least ``expires``.

    A lease given back or taken over by another run has another ``run_id`` (or
    NULL) and is left alone; ``GREATEST`` keeps a renewal from shortening one."""
    until = timestamp_literal(expires)
    return (
        f"UPDATE {bq.table_sql(project, dataset, TABLE)} "
        f"SET `expires_at` = GREATEST(`expires_at`, {until}) "
        f"WHERE `run_id` = '{check_run_id(run_id)}'"
    )


def fence_sql(project: str, dataset: str, run_id: str, table: str) -> str:
    """A statement that fails unless ``run_id`` still holds ``table``'s lease.

    Run first inside a commit's transaction, so a run whose lease was given back
    (``status --release_leases``) or taken over after it lapsed rolls its commit
    back instead of writing over a newer holder. A lapsed lease nobody took is
    still this run's: the table has no other writer. ``IF(…, …, ERROR(…))``: a
    conditional BigQuery evaluates lazily; bqemulator takes no ``IF … THEN
    RAISE`` script statement, and this form works on both."""
    name = bq.check_identifier(table, "table")
    run = check_run_id(run_id)
    return (
        f"SELECT IF(EXISTS (SELECT 1 FROM {bq.table_sql(project, dataset, TABLE)} "
        f"WHERE `table_name` = '{name}' AND `run_id` = '{run}'), 'held', "
        f"ERROR('{FENCED} {name} by run {run}')) AS `lease`;"
    )


#: The start of the error a fenced commit fails with.
FENCED = "lease lost: another run took over, or it was given back; nothing replaced in"


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


def lapsed(
    client: bigquery.Client, dataset: str, now: datetime.datetime
) -> dict[str, list[Lease]]:
    """The leases of runs whose every lease has lapsed without being given back, by
    run id: their process ended (or stalled for a whole time to live) first."""
    try:
        job = bq.run_query(
            client,
            "SELECT table_name, run_id, taken_at, expires_at "
            f"FROM {bq.table_sql(client.project, dataset, TABLE)} WHERE run_id IS NOT NULL",
        )
    except api_exceptions.NotFound:
        return {}
    by_run: dict[str, list[Lease]] = {}
    for row in job.result():
        lease = Lease(row["table_name"], row["run_id"], row["taken_at"], row["expires_at"])
        by_run.setdefault(lease.run_id, []).append(lease)
    return {
        run: held for run, held in by_run.items() if all(x.expires_at <= now for x in held)
    }


class Holder:
    """One run's leases: take them, renew them while the run lives, give them back.

    ``clock``: the moment the leases are dated by (tests act as of another day).
    ``sent``: whether a take transaction was sent, i.e. whether the run may hold a
    lease now and must record how it ended and give them back."""

    def __init__(
        self,
        client: bigquery.Client,
        dataset: str,
        run_id: str,
        tables: Sequence[str],
        ttl: datetime.timedelta,
        clock: Callable[[], datetime.datetime] | None = None,
    ):
        self.client, self.dataset, self.run_id = client, dataset, run_id
        self.tables = list(tables)
        self.ttl = ttl
        self.clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self.sent = False
        #: Runs found dead when taking (:func:`lapsed`), for ``pipelines.state.leftovers``.
        self.found_lapsed: dict[str, list[Lease]] = {}

    def take(self, wait_seconds: float, sleep=time.sleep, monotonic=time.monotonic) -> None:
        """Lease every table, waiting up to ``wait_seconds`` for a held one; raises
        :class:`LeaseHeld` naming the holder (and then holds nothing)."""
        project = self.client.project
        retry = bq.concurrent_update_retry()
        start = monotonic()
        while True:
            at = self.clock()
            self.found_lapsed = lapsed(self.client, self.dataset, at)
            self.sent = True
            retry(bq.run_query)(
                self.client,
                take_sql(project, self.dataset, self.run_id, self.tables, at, at + self.ttl),
            )
            blockers = blocking(held(self.client, self.dataset, self.tables, at), self.run_id)
            if not blockers:
                _LOG.info(
                    "run %s leased %s until %s", self.run_id, ", ".join(self.tables), at + self.ttl
                )
                return
            # Taken by no one, or lost a first-row race: give back whatever this run got.
            self.release()
            self.sent = False
            waited = monotonic() - start
            if waited + POLL_SECONDS > wait_seconds:
                raise LeaseHeld(refusal(blockers, waited))
            _LOG.warning("waiting for a lease: %s", refusal(blockers, waited))
            sleep(POLL_SECONDS)

    def renew(self, ttl: datetime.timedelta | None = None) -> None:
        expires = self.clock() + (ttl or self.ttl)
        bq.concurrent_update_retry()(bq.run_query)(
            self.client, renew_sql(self.client.project, self.dataset, self.run_id, expires)
        )

    def release(self) -> None:
        bq.concurrent_update_retry()(bq.run_query)(
            self.client, release_sql(self.client.project, self.dataset, self.run_id)
        )

    @contextlib.contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew the leases every third of their time to live until the block ends.

        A renewal that fails is logged and tried again at the next beat: the lease
        outlives two failed beats, and a lapsed one is safe (:func:`fence_sql`)."""
        stop = threading.Event()
        interval = self.ttl.total_seconds() / RENEW_FRACTION

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    self.renew()
                except Exception as exc:  # noqa: BLE001 - the next beat tries again
                    _LOG.warning("could not renew the leases of run %s: %s", self.run_id, exc)

        thread = threading.Thread(target=beat, name=f"lease-{self.run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()  # first: a signal during the join must not leave it beating
            thread.join(timeout=1.0)


def holder(
    config: SyncConfig, clock: Callable[[], datetime.datetime] | None = None, handover: bool = False
) -> Holder:
    """The run's :class:`Holder`; ``handover``: a Flex Template launch, whose first
    lease also covers Dataflow's start-up (:data:`HANDOVER_START`)."""
    ttl = datetime.timedelta(minutes=config.lease_minutes)
    if handover:
        ttl += HANDOVER_START
    return Holder(
        bq.make_client(config.project, config.location),
        config.dataset,
        config.run_id,
        [spec.name for spec in config.tables],
        ttl,
        clock,
    )


def take(
    config: SyncConfig,
    now: datetime.datetime | None = None,
    sleep=time.sleep,
    clock=time.monotonic,
) -> Holder:
    """Lease every table of the run (see :meth:`Holder.take`), as of ``now``."""
    lease_holder = holder(config, (lambda: now) if now is not None else None)
    lease_holder.take(config.lease_wait_seconds, sleep=sleep, monotonic=clock)
    return lease_holder


def release(config: SyncConfig, client: bigquery.Client | None = None) -> None:
    """Give back the run's leases; a dry run took none."""
    if config.dry_run or not config.dataset:
        return
    release_run(config.target, config.run_id, client)


def release_run(target: bq.Target, run_id: str, client: bigquery.Client | None = None) -> None:
    """Give back every lease ``run_id`` holds in ``target``'s dataset."""
    client = client or target.client()
    bq.concurrent_update_retry()(bq.run_query)(
        client, release_sql(target.project, target.dataset, run_id)
    )


class WorkerRenewal:
    """Renewal from the pipeline's own steps, for a job no launcher waits on.

    Called once per element by the steps every document passes through; renews
    at most once per third of the time to live per worker process (a class-level
    clock shared by every DoFn instance and thread), so a 100-worker job sends
    about three renewals per worker per time to live, not one per element."""

    _lock = threading.Lock()
    _last: dict[str, float] = {}

    def __init__(self, project: str, location: str | None, dataset: str, run_id: str, minutes: int):
        self.project, self.location, self.dataset = project, location, dataset
        self.run_id, self.ttl = run_id, datetime.timedelta(minutes=minutes)
        self._client: bigquery.Client | None = None

    def beat(self, monotonic=time.monotonic) -> None:
        now = monotonic()
        with self._lock:
            last = self._last.get(self.run_id)
            if last is not None and now - last < self.ttl.total_seconds() / RENEW_FRACTION:
                return
            self._last[self.run_id] = now
        try:
            self._client = self._client or bq.make_client(self.project, self.location)
            expires = datetime.datetime.now(datetime.UTC) + self.ttl
            bq.run_query(self._client, renew_sql(self.project, self.dataset, self.run_id, expires))
        except Exception as exc:  # noqa: BLE001 - the next beat tries again; the fence holds
            _LOG.warning("could not renew the leases of run %s: %s", self.run_id, exc)
