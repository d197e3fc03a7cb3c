"""The snapshot horizon: a run's read must end while Firestore still serves its snapshot.

Every query of a run reads at one ``read_time``. Firestore serves any
``read_time`` within the past hour; with point-in-time recovery (PITR) also
whole-minute ``read_time`` values up to 7 days back, and nothing else
(https://firebase.google.com/docs/firestore/pitr). A query issued later fails
with ``FAILED_PRECONDITION`` ("The requested snapshot version is too old"), so
a read that outlasts the horizon would die part-way, as would any range
retried after it. So before reading, the launcher

1. learns the horizon from the Firestore Admin API (``projects.databases.get``:
   ``pointInTimeRecoveryEnablement``, ``versionRetentionPeriod``); where it
   cannot be read (the emulator, or no ``datastore.databases.get`` permission)
   it assumes one hour, the horizon of every database, and says so;
2. with PITR, floors the snapshot to the whole minute, so it stays readable for
   the whole retention period instead of one hour;
3. estimates the read from ``count()`` aggregations (one read per 1,000
   documents: each full-mode collection once; an incremental table's change
   query and window) and ``--read_docs_per_second``;
4. refuses, with one line saying what to do, a run whose read would not end
   before the horizon less :data:`START_ALLOWANCE` of it (worker start-up,
   retries, the drifted days an incremental run re-reads on top).

The pure parts (:func:`snapshot_time`, :func:`check_fits`) are unit-tested;
:func:`database_horizon` and :func:`documents_to_read` are the service calls.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.api_core import exceptions as api_exceptions

from pipelines.refusals import BadSetting, SnapshotTooShort, backfill_command

if TYPE_CHECKING:
    from pipelines.cli.options import SyncConfig

_LOG = logging.getLogger(__name__)
ONE_HOUR = datetime.timedelta(hours=1)
#: Share of the horizon kept free of the estimated read: Dataflow's worker
#: start-up (minutes), retried ranges, and what the estimate cannot know.
START_ALLOWANCE = 0.1
#: Seconds of horizon to assume where it cannot be read (default one hour):
#: lets a test scale the horizon down against the emulator.
ASSUMED_HORIZON_ENV = "F2BQ_ASSUMED_SNAPSHOT_HORIZON_SECONDS"


@dataclass(frozen=True)
class Horizon:
    """How long Firestore serves a snapshot, and how that was learned."""

    #: How long a whole-minute snapshot stays readable (PITR), else any snapshot.
    retention: datetime.timedelta = ONE_HOUR
    pitr: bool = False
    #: "" when read from the Admin API; otherwise why it is assumed.
    assumed: str = ""

    def describe(self) -> str:
        what = _duration(self.retention) + (" with point-in-time recovery" if self.pitr else "")
        return f"{what} ({'assumed: ' + self.assumed if self.assumed else 'Firestore Admin API'})"

    def deadline(self, read_time: datetime.datetime) -> datetime.datetime:
        """The last moment a query at ``read_time`` is served."""
        if self.pitr and read_time == snapshot_time(read_time, self):
            return read_time + self.retention
        return read_time + min(ONE_HOUR, self.retention)


def assumed_horizon(why: str) -> Horizon:
    seconds = os.environ.get(ASSUMED_HORIZON_ENV, "").strip()
    try:
        retention = datetime.timedelta(seconds=float(seconds)) if seconds else ONE_HOUR
    except (ValueError, OverflowError):
        raise BadSetting(f"${ASSUMED_HORIZON_ENV} must be a number of seconds") from None
    return Horizon(retention, pitr=False, assumed=why)


def database_horizon(project: str, database: str, emulator: bool) -> Horizon:
    """The database's horizon from ``projects.databases.get``, or one hour assumed."""
    if emulator:
        horizon = assumed_horizon("the Firestore emulator has no Admin API")
        _LOG.info("snapshot horizon: %s", horizon.describe())
        return horizon
    from google.cloud.firestore_admin_v1 import FirestoreAdminClient
    from google.cloud.firestore_admin_v1.types import Database

    try:
        found = FirestoreAdminClient().get_database(
            name=f"projects/{project}/databases/{database}", timeout=30
        )
    except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
        horizon = assumed_horizon(f"databases.get failed: {type(exc).__name__}")
        _LOG.warning("snapshot horizon: %s", horizon.describe())
        return horizon
    enabled = Database.PointInTimeRecoveryEnablement.POINT_IN_TIME_RECOVERY_ENABLED
    pitr = found.point_in_time_recovery_enablement == enabled
    retention = found.version_retention_period or ONE_HOUR
    horizon = Horizon(retention if pitr else min(retention, ONE_HOUR), pitr=pitr)
    _LOG.info("snapshot horizon: %s", horizon.describe())
    return horizon


def snapshot_time(read_time: datetime.datetime, horizon: Horizon) -> datetime.datetime:
    """``read_time`` floored to the whole minute with PITR (only whole minutes are
    kept past the hour); unchanged without it."""
    if not horizon.pitr:
        return read_time
    return read_time.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class ReadEstimate:
    documents: int
    seconds: float
    deadline: datetime.datetime


def usable_until(
    deadline: datetime.datetime, read_time: datetime.datetime, now: datetime.datetime
) -> datetime.timedelta:
    """Time left to read at ``read_time`` before ``deadline``, less the
    :data:`START_ALLOWANCE` of its horizon."""
    return (deadline - now) - (deadline - read_time) * START_ALLOWANCE


def check_fits(
    documents: int,
    docs_per_second: float,
    read_time: datetime.datetime,
    now: datetime.datetime,
    horizon: Horizon,
    remedy: Callable[[float], str],
    instead: Callable[[float], str | None] = lambda _fraction: None,
) -> ReadEstimate:
    """The estimate, or :class:`SnapshotTooShort` when the read would not end
    before the horizon less its :data:`START_ALLOWANCE`; ``remedy(fraction)``
    says what to do, given the share of the read that would fit, and
    ``instead(fraction)`` is the command among it (:func:`chunked_backfill`)."""
    seconds = documents / docs_per_second
    deadline = horizon.deadline(read_time)
    usable = usable_until(deadline, read_time, now)
    estimate = ReadEstimate(documents, seconds, deadline)
    if datetime.timedelta(seconds=seconds) <= usable:
        return estimate
    fraction = max(0.0, usable.total_seconds()) / seconds if seconds else 0.0
    raise SnapshotTooShort(
        f"this run would read about {documents:,} documents, about "
        f"{_duration(datetime.timedelta(seconds=seconds))} at --read_docs_per_second "
        f"{docs_per_second:g}, but Firestore serves its snapshot only until "
        f"{deadline:%Y-%m-%dT%H:%M:%SZ} (horizon {horizon.describe()}, {START_ALLOWANCE:.0%} "
        f"kept for start-up); nothing was read: {remedy(fraction)}",
        instead=instead(fraction),
    )


def remedy(
    project: str,
    dataset: str | None,
    database: str,
    dated: tuple[datetime.date, datetime.date] | None,
    fraction: float,
    collections: str,
) -> str:
    """What to do instead: PITR, and for a dated run the chunked backfill that fits.

    A whole-history run (the first nightly, a full run without dates) cannot be
    chunked: its reads are whole collections, so only a longer horizon helps.
    """
    pitr = (
        f"enable point-in-time recovery (gcloud firestore databases update "
        f"--database='{database}' --enable-pitr --project {project}), which keeps "
        "the run's whole-minute snapshot for 7 days"
    )
    backfill = chunked_backfill(project, dataset, dated, fraction, collections)
    if backfill is None:
        return pitr + ", or measure the run's rate and raise --read_docs_per_second"
    return f"{pitr}, or backfill in pieces that each fit: {backfill}"


def chunked_backfill(
    project: str,
    dataset: str | None,
    dated: tuple[datetime.date, datetime.date] | None,
    fraction: float,
    collections: str,
) -> str | None:
    """The backfill of a dated run's days in chunks of which each reads ``fraction``
    of the run's documents or less; None for a whole-history run, which has no days
    to cut into chunks."""
    if dated is None:
        return None
    start, end = dated
    days = (end - start).days + 1
    chunk = max(1, math.floor(days * fraction))
    sync_args = f"--project {project} --dataset {dataset}" + (
        f" --collections {collections}" if collections else ""
    )
    return backfill_command(start, end, sync_args, chunk)


def documents_to_read(config: SyncConfig) -> dict[str, int]:
    """Per table, the documents its read returns at most, from ``count()``s at the
    snapshot: a full-mode collection whole; an incremental table's change query
    and the days of its window (drifted days come on top: the allowance)."""
    from pipelines.clock import day_bounds
    from pipelines.plan.windows import change_query_field
    from pipelines.services import firestore as fs

    client = fs.make_client(config.project, config.database)
    retry = fs.read_retry(config.firestore_retry_timeout)
    counts = {}
    for spec in config.tables:
        window = config.window(spec.name)
        if not window.incremental:
            counts[spec.name] = fs.count_all(client, spec, config.read_time, retry)
            continue
        n = 0
        field = change_query_field(spec, window)
        if field is not None:
            n += fs.count_range(
                client, spec, field, window.watermark, None, config.read_time, retry
            )
        if not window.empty:
            lo, hi = day_bounds(window.start)[0], day_bounds(window.end)[1]
            field = spec.partition.source[0]
            n += fs.count_range(client, spec, field, lo, hi, config.read_time, retry)
        counts[spec.name] = n
    return counts


def guard(config: SyncConfig) -> SyncConfig:
    """The config at its horizon-safe snapshot; raises :class:`SnapshotTooShort`
    before anything is read when the read cannot end in time."""
    from pipelines.services import firestore as fs

    horizon = database_horizon(config.project, config.database, fs.emulator_host() is not None)
    read_time = snapshot_time(config.read_time, horizon)
    if read_time != config.read_time:
        _LOG.info("snapshot floored to the whole minute (point-in-time recovery): %s", read_time)
        config = dataclasses.replace(config, read_time=read_time)
    counts = documents_to_read(config)
    total = sum(counts.values())
    now = datetime.datetime.now(datetime.UTC)
    dated = (config.start_date, config.end_date) if config.explicit_dates else None
    collections = ",".join(s.name for s in config.tables)

    def hint(fraction: float) -> str:
        return remedy(config.project, config.dataset, config.database, dated, fraction, collections)

    def instead(fraction: float) -> str | None:
        return chunked_backfill(config.project, config.dataset, dated, fraction, collections)

    estimate = check_fits(
        total, config.read_docs_per_second, read_time, now, horizon, hint, instead
    )
    config = unlocated_past_horizon(config, horizon, estimate.seconds, now)
    _LOG.info(
        "read estimate: %d document(s), %s at %g/s; snapshot served until %s",
        total,
        _duration(datetime.timedelta(seconds=estimate.seconds)),
        config.read_docs_per_second,
        f"{estimate.deadline:%Y-%m-%dT%H:%M:%SZ}",
    )
    return config


def located_in_time(
    located_at: datetime.datetime, horizon: Horizon, seconds: float, now: datetime.datetime
) -> bool:
    """Whether Firestore still serves ``located_at`` when a read of ``seconds`` ends
    (less :data:`START_ALLOWANCE` of its horizon): previous versions are looked
    up there during the read."""
    usable = usable_until(horizon.deadline(located_at), located_at, now)
    return datetime.timedelta(seconds=seconds) <= usable


def unlocated_past_horizon(
    config: SyncConfig, horizon: Horizon, seconds: float, now: datetime.datetime
) -> SyncConfig:
    """The config with each table's ``located_at`` dropped where its snapshot is past
    the horizon: that table's delete scans ``_document_path`` over the whole
    table, as it must to find a moved document's old row (say so: it is billed)."""
    if config.plan is None:
        return config
    windows = []
    for window in config.plan.windows:
        if window.located_at is not None and not located_in_time(
            window.located_at, horizon, seconds, now
        ):
            _LOG.warning(
                "%s: previous snapshot %s is past the snapshot horizon (%s): the delete of "
                "changed documents' old rows scans the whole table; point-in-time recovery "
                "keeps it readable for 7 days",
                window.table,
                f"{window.located_at:%Y-%m-%dT%H:%M:%SZ}",
                horizon.describe(),
            )
            window = dataclasses.replace(window, located_at=None)
        windows.append(window)
    plan = dataclasses.replace(config.plan, windows=tuple(windows))
    return dataclasses.replace(config, plan=plan)


def _duration(delta: datetime.timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
