"""Command-line options of the sync, as Beam ``PipelineOptions``.

Every option here is also a Flex Template parameter, so names are stable and
help texts are what a user sees in the Dataflow console.
"""

from __future__ import annotations

import datetime
import re
import secrets
from dataclasses import dataclass

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from pipelines.cli.usage import UsageError
from pipelines.clock import ONE_DAY, UTC, day_bounds, day_range, midnight
from pipelines.convert.conversion import Hashing, format_timestamp
from pipelines.convert.table_spec import (
    SCHEMAS_DIR_ENV,
    SchemaError,
    TableSpec,
    load_specs,
    schemas_dir,
    select_specs,
)
from pipelines.plan.windows import RunPlan, TableWindow, window_text
from pipelines.services import bigquery as bq
from pipelines.services import firestore as fs
from pipelines.services.bigquery import UnsafeIdentifier, check_identifier, check_project
from pipelines.state import commit_log
from pipelines.state.stamp import RunStamp

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}\Z"
SECRET_VERSION = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+\Z")
MAX_WINDOW_DAYS = 3660


MODES = ("incremental", "full", "reconcile")
#: Documents a run is assumed to read per second when it estimates whether its
#: read fits in Firestore's snapshot horizon (``--read_docs_per_second``): about
#: the local benchmark's pipeline rate on 2 CPUs (docs/performance.md), below
#: what a Dataflow job with several workers reads from real Firestore.
DEFAULT_READ_DOCS_PER_SECOND = 2000.0


def _flag(value: str) -> bool:
    """``--flag``, ``--flag=true`` or ``--flag=false`` (Flex Template parameters are strings)."""
    text = str(value).strip().lower()
    if text in ("", "1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise ValueError(f"expected true or false, not {value!r}")


_flag.__name__ = "true/false"  # argparse names the type in its error message


class SyncOptions(PipelineOptions):
    """What to sync and where; everything else is a standard Beam option."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--dataset", help="BigQuery dataset that receives the tables.")
        parser.add_argument(
            "--mode",
            choices=MODES,
            help="incremental: read only the days being replaced and documents changed since "
            "the last successful run; full: read whole collections. Default: incremental "
            "without dates (the nightly), full with --date/--start_date. reconcile (the "
            "weekly job, no dates): the nightly, with the count() drift check over each "
            "table's whole history, re-reading only the days that differ.",
        )
        parser.add_argument(
            "--intraday",
            type=_flag,
            nargs="?",
            const=True,
            default=False,
            help="Bring every table up to the snapshot, today (UTC) included: upsert what "
            "changed since the last run, drift-check today and the --verify_days before it; "
            "no day is declared complete (the nightly still replaces yesterday whole). "
            "Takes no dates.",
        )
        parser.add_argument(
            "--max_catchup_days",
            type=int,
            default=7,
            help="A run without dates catches up at most this many missed days per table; "
            "beyond it the run fails and names the backfill to run.",
        )
        parser.add_argument(
            "--verify_days",
            type=int,
            default=35,
            help="A run without dates compares Firestore's count with BigQuery's rows for "
            "each of this many recent days and rebuilds every day that differs.",
        )
        parser.add_argument(
            "--allow_shrink",
            type=_flag,
            nargs="?",
            const=True,
            default=False,
            help="Replace days even when they would lose most of their rows (or a table "
            "read returned nothing); without it such a table is left as it was.",
        )
        parser.add_argument(
            "--max_dead_letter_share",
            type=float,
            help="Refuse a table (nothing replaced in it, the run fails) whose dead letters "
            "are more than this share of the documents it read, e.g. 0.05: a wrong schema "
            "then fails loudly instead of syncing no rows. A number above 0, at most 1. "
            "Default: no limit (dead letters are reported in the summary either way).",
        )
        parser.add_argument(
            "--date",
            help="Sync this one UTC day (YYYY-MM-DD). Without a date: the nightly, "
            "from each table's last replaced day up to yesterday (UTC).",
        )
        parser.add_argument("--start_date", help="First day of a backfill (YYYY-MM-DD).")
        parser.add_argument("--end_date", help="Last day of a backfill, inclusive (YYYY-MM-DD).")
        parser.add_argument(
            "--collections",
            default="",
            help="Comma-separated tables or collections to sync (default: all in schemas/).",
        )
        parser.add_argument(
            "--lookback_days",
            type=int,
            default=0,
            help="Full runs with dates: also rebuild this many days before the window "
            "(incremental runs find hard deletes with the drift check instead).",
        )
        parser.add_argument(
            "--edits_since",
            help="Rebuild the days of documents written since this time (RFC 3339). "
            "Default: the start of the window.",
        )
        parser.add_argument(
            "--num_splits",
            type=int,
            default=8,
            help="Ranges each collection is split into for parallel reads.",
        )
        parser.add_argument(
            "--load_batch_rows",
            type=int,
            default=500_000,
            help="Rows per BigQuery load job into staging (batches also stop at 256 MB); "
            "BigQuery allows 1,500 load jobs per table per day.",
        )
        parser.add_argument(
            "--read_time",
            help="Firestore snapshot to read (RFC 3339). Default: the run's start. "
            "Older than one hour needs point-in-time recovery.",
        )
        parser.add_argument(
            "--read_docs_per_second",
            type=float,
            default=DEFAULT_READ_DOCS_PER_SECOND,
            help="Documents per second the run is assumed to read: before reading, a run "
            "whose read would outlast Firestore's snapshot (one hour without point-in-time "
            "recovery) is refused with what to do instead.",
        )
        parser.add_argument(
            "--firestore_database", default="(default)", help="Firestore database id."
        )
        parser.add_argument(
            "--bq_location", default="US", help="Location of the dataset if it is created."
        )
        parser.add_argument(
            "--schemas_dir",
            help="Read table schemas from this folder (default: $F2BQ_SCHEMAS_DIR, else the "
            "packaged schemas/).",
        )
        parser.add_argument("--run_id", help="Run id (default: generated from the start time).")
        parser.add_argument(
            "--hash_key_env",
            default="F2BQ_HASH_KEY",
            help="Environment variable holding the HMAC key for columns with policy 'hash'.",
        )
        parser.add_argument(
            "--hash_key_secret",
            help="Secret Manager version holding the HMAC key, e.g. "
            "projects/P/secrets/f2bq-hash-key/versions/latest (read by each worker).",
        )
        parser.add_argument(
            "--lease_minutes",
            type=int,
            default=10,
            help="A run leases its tables in _sync_leases so no other run writes them "
            "meanwhile, and renews the lease every third of this many minutes while it "
            "lives: a run that dies blocks the next one at most this long.",
        )
        parser.add_argument(
            "--lease_wait_seconds",
            type=int,
            default=120,
            help="Seconds to wait for another run's lease on a table before refusing "
            "(exit 1, nothing written).",
        )
        parser.add_argument(
            "--firestore_retry_timeout",
            type=float,
            default=300.0,
            help="Seconds to keep retrying transient Firestore errors on one range.",
        )


def parse_date(value: str, option: str) -> datetime.date:
    if not re.match(DATE_PATTERN, value or ""):
        raise UsageError(f"--{option} {value!r} is not a date in YYYY-MM-DD form")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--{option} {value!r} is not a real calendar date") from None


def _parse_time(value: str, option: str, now: datetime.datetime) -> datetime.datetime:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--{option} {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise UsageError(f"--{option} needs a UTC offset, e.g. 2026-11-25T02:00:00Z")
    if parsed > now:
        raise UsageError(f"--{option} is in the future")
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class SyncConfig:
    """Validated, picklable settings shared by the launcher and every worker."""

    project: str
    dataset: str | None
    start_date: datetime.date
    end_date: datetime.date
    tables: tuple[TableSpec, ...]
    run_id: str
    read_time: datetime.datetime
    started_at: datetime.datetime
    edits_since: datetime.datetime | None = None
    database: str = "(default)"
    location: str = "US"
    lookback_days: int = 0
    num_splits: int = 8
    load_batch_rows: int = 500_000
    hash_key_env: str = "F2BQ_HASH_KEY"
    hash_key_secret: str | None = None
    firestore_retry_timeout: float = 300.0
    dry_run: bool = False
    #: Requested mode, or None: incremental without dates, full with dates.
    mode: str | None = None
    #: Whether --date/--start_date gave the window (else it comes from _sync_runs).
    explicit_dates: bool = True
    max_catchup_days: int = 7
    verify_days: int = 35
    allow_shrink: bool = False
    #: ``--max_dead_letter_share``: a table whose dead letters exceed this share of
    #: its documents read is refused (None: no limit).
    max_dead_letter_share: float | None = None
    #: Table leases (``pipelines.state.leases``): how long one lasts, how long to wait for one.
    lease_minutes: int = 10
    lease_wait_seconds: int = 120
    read_docs_per_second: float = DEFAULT_READ_DOCS_PER_SECOND
    #: ``--intraday``: today is brought up to the snapshot, no day declared complete.
    intraday: bool = False
    #: Per-table windows, modes and watermarks (``pipelines.plan.windows.RunPlan``);
    #: None until the launcher has read ``_sync_runs``.
    plan: RunPlan | None = None

    @property
    def tables_by_name(self) -> dict[str, TableSpec]:
        return {spec.name: spec for spec in self.tables}

    def window(self, table: str) -> TableWindow:
        """This table's :class:`~pipelines.plan.windows.TableWindow` (before planning: the
        dated window in full mode)."""
        if self.plan is not None:
            return self.plan.window(table)
        return TableWindow(table, "full", self.start_date, self.end_date)

    @property
    def windows(self) -> tuple[TableWindow, ...]:
        """Every table's window, in the order of ``tables``."""
        return tuple(self.window(spec.name) for spec in self.tables)

    @property
    def yesterday(self) -> datetime.date | None:
        """The planned run's yesterday (None before planning)."""
        return self.plan.yesterday if self.plan is not None else None

    @property
    def planned_window(self) -> tuple[datetime.date, datetime.date]:
        """First and last day any table replaces (the options' dates before planning)."""
        if self.plan is not None:
            return self.plan.start, self.plan.end
        return self.start_date, self.end_date

    def describe_window(self) -> str:
        if self.plan is not None:
            return self.plan.describe()
        return window_text(*self.planned_window)

    @property
    def window_days(self) -> list[datetime.date]:
        return day_range(self.start_date, self.end_date)

    @property
    def required_days(self) -> list[datetime.date]:
        """The window and its look-back: replaced whatever the data says."""
        return day_range(self.rebuild_floor, self.end_date)

    @property
    def edit_window(self) -> tuple[datetime.datetime, datetime.datetime | None]:
        """Documents written in ``[start, end)`` have their days rebuilt (None: no end).

        By default the window's own days; with ``--edits_since``, every write from
        then up to the snapshot, whatever day the document is on (up to yesterday).
        """
        if self.edits_since is not None:
            return (self.edits_since, None)
        return (midnight(self.start_date), day_bounds(self.end_date)[1])

    @property
    def rebuild_floor(self) -> datetime.date:
        """The earliest day a run may touch without a reason from the data."""
        return self.start_date - datetime.timedelta(days=self.lookback_days)

    @property
    def read_time_text(self) -> str:
        return format_timestamp(self.read_time)

    @property
    def started_text(self) -> str:
        return format_timestamp(self.started_at)

    # The small values the transforms take (never this whole configuration).
    @property
    def source(self) -> fs.Source:
        return fs.Source(self.project, self.database, self.firestore_retry_timeout)

    @property
    def target(self) -> bq.Target:
        return bq.Target(self.project, self.dataset or "", self.location)

    @property
    def stamp(self) -> RunStamp:
        return RunStamp(self.run_id, self.read_time, self.started_at)

    @property
    def hashing(self) -> Hashing:
        return Hashing(self.hash_key_secret, self.hash_key_env)


def resolve(
    options: PipelineOptions, dry_run: bool = False, now: datetime.datetime | None = None
) -> SyncConfig:
    """Check every option and work out the window; raises :class:`UsageError`."""
    sync = options.view_as(SyncOptions)
    now = now or datetime.datetime.now(UTC)
    project = options.view_as(GoogleCloudOptions).project
    if not project:
        raise UsageError("--project is required")
    try:
        check_project(project)
        if sync.dataset:
            check_identifier(sync.dataset, "--dataset")
    except UnsafeIdentifier as exc:
        raise UsageError(str(exc)) from None
    if not sync.dataset and not dry_run:
        raise UsageError("--dataset is required (or use --dry_run)")

    if sync.intraday and (sync.date or sync.start_date or sync.end_date):
        raise UsageError(
            "--intraday takes no dates: it brings today (UTC) up to the snapshot; "
            "use --date/--start_date without --intraday for past days"
        )
    if sync.intraday and sync.mode == "full":
        raise UsageError("--intraday reads what changed; it cannot be --mode full")
    if sync.intraday and sync.edits_since:
        raise UsageError("--intraday reads every change since the last run; drop --edits_since")
    if sync.date and (sync.start_date or sync.end_date):
        raise UsageError("use either --date or --start_date/--end_date, not both")
    if sync.date:
        start = end = parse_date(sync.date, "date")
    elif sync.start_date or sync.end_date:
        if not (sync.start_date and sync.end_date):
            raise UsageError("--start_date and --end_date go together")
        start = parse_date(sync.start_date, "start_date")
        end = parse_date(sync.end_date, "end_date")
        if end < start:
            raise UsageError(f"--end_date {end} is before --start_date {start}")
    yesterday = now.astimezone(UTC).date() - ONE_DAY
    if not (sync.date or sync.start_date):
        start = end = yesterday
    elif end > yesterday:
        option = "--date" if sync.date else "--end_date"
        raise UsageError(
            f"{option} {end} is after yesterday ({yesterday}, UTC): a day is synced once it "
            "is over; today's documents are written by the first run after midnight UTC"
        )
    if (end - start).days + 1 > MAX_WINDOW_DAYS:
        raise UsageError(f"window of {(end - start).days + 1} days is too long; split it")
    explicit = bool(sync.date or sync.start_date)
    if explicit and sync.mode == "reconcile":
        raise UsageError("--mode reconcile takes no dates: it checks each table's whole history")
    if not sync.read_docs_per_second > 0:
        raise UsageError("--read_docs_per_second must be more than 0")
    share = sync.max_dead_letter_share
    if share is not None and not 0 < share <= 1:
        raise UsageError(
            f"--max_dead_letter_share must be more than 0 and at most 1 (a share of the "
            f"documents read, e.g. 0.05), not {share:g}"
        )
    if sync.max_catchup_days < 1:
        raise UsageError("--max_catchup_days must be 1 or more")
    if sync.verify_days < 0:
        raise UsageError("--verify_days must be 0 or more")
    if sync.lookback_days < 0:
        raise UsageError("--lookback_days must be 0 or more")
    if not 1 <= sync.num_splits <= 1000:
        raise UsageError("--num_splits must be between 1 and 1000")
    if not 1 <= sync.load_batch_rows <= 1_000_000:
        raise UsageError("--load_batch_rows must be between 1 and 1000000")
    if not 1 <= sync.lease_minutes <= 7 * 24 * 60:
        raise UsageError("--lease_minutes must be between 1 and 10080 (7 days)")
    if not 0 <= sync.lease_wait_seconds <= 6 * 3600:
        raise UsageError("--lease_wait_seconds must be between 0 and 21600 (6 hours)")

    try:
        specs = load_specs(sync.schemas_dir)
        wanted = [c.strip() for c in (sync.collections or "").split(",") if c.strip()]
        tables = select_specs(specs, wanted) if wanted else list(specs.values())
    except SchemaError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        where = "--schemas_dir" if sync.schemas_dir else SCHEMAS_DIR_ENV
        raise UsageError(f"{where}: cannot read {exc.filename or schemas_dir()}") from None

    # The snapshot is the clock's now even when ``now`` is given: Firestore
    # cannot read the future, and ``now`` only says which day is "yesterday".
    clock = datetime.datetime.now(UTC)
    read_time = _parse_time(sync.read_time, "read_time", now) if sync.read_time else min(now, clock)
    read_time = read_time.astimezone(UTC)

    edits_since = _parse_time(sync.edits_since, "edits_since", now) if sync.edits_since else None

    run_id = sync.run_id or f"{now:%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"
    if not commit_log.RUN_ID.match(run_id):  # a run id is also a SQL string literal
        raise UsageError("--run_id may hold letters, digits and underscores only")

    if any(c.policy == "hash" for t in tables for c in t.columns):
        import os

        if not (sync.hash_key_secret or os.environ.get(sync.hash_key_env)):
            raise UsageError(
                f"a column has policy 'hash' but neither --hash_key_secret nor "
                f"${sync.hash_key_env} is set"
            )
    if sync.hash_key_secret and not SECRET_VERSION.match(sync.hash_key_secret):
        raise UsageError("--hash_key_secret must look like projects/P/secrets/S/versions/V")

    return SyncConfig(
        project=project,
        dataset=sync.dataset,
        start_date=start,
        end_date=end,
        tables=tuple(tables),
        run_id=run_id,
        read_time=read_time,
        started_at=now,
        edits_since=edits_since,
        database=sync.firestore_database,
        location=sync.bq_location,
        lookback_days=sync.lookback_days,
        num_splits=sync.num_splits,
        load_batch_rows=sync.load_batch_rows,
        hash_key_env=sync.hash_key_env,
        hash_key_secret=sync.hash_key_secret,
        firestore_retry_timeout=sync.firestore_retry_timeout,
        dry_run=dry_run,
        mode=sync.mode,
        explicit_dates=explicit,
        max_catchup_days=sync.max_catchup_days,
        verify_days=sync.verify_days,
        allow_shrink=bool(sync.allow_shrink),
        max_dead_letter_share=share,
        lease_minutes=sync.lease_minutes,
        lease_wait_seconds=sync.lease_wait_seconds,
        read_docs_per_second=sync.read_docs_per_second,
        intraday=bool(sync.intraday),
    )
