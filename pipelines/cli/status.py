"""``firestore-to-bq status``: is every table up to date? The one command on-call runs.

    firestore-to-bq status --project P --dataset D [--max_lag_days 1] [--max_lag_minutes 90]
    firestore-to-bq status --project P --dataset D --release_leases RUN_ID

Per table: the last successful run and its Firestore snapshot, the newest day
it replaced, how many days that is behind yesterday (UTC), dead letters of the
last 7 days, the last failure and the run holding its lease now, if one does,
read from ``_sync_runs``, ``_dead_letters`` and ``_sync_leases`` (query parameters
only). Exits 1 when a table is more than ``--max_lag_days`` behind (or was never
synced), so it doubles as a monitoring check; with ``--max_lag_minutes``, also
when a table's "fresh as of" (the snapshot of its last successful run that was
not given dates: nightly, full, reconcile or intraday; a backfill of some days
brings those days up to date, not the table) is older than that, which pages
when the hourly ``--intraday`` job stops.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from pipelines.cli.options import UsageError
from pipelines.cli.usage import Parser
from pipelines.clock import ONE_DAY, UTC
from pipelines.convert.conversion import format_timestamp
from pipelines.convert.table_spec import SchemaError, load_specs
from pipelines.plan.windows import TableState
from pipelines.services import bigquery as bq
from pipelines.services import reachability
from pipelines.services.error_text import names, scrub
from pipelines.state import dead_letters, leases, run_log
from pipelines.state.verdict import UnknownVerdict

PROG = "firestore-to-bq status"
DEAD_LETTER_DAYS = 7


@dataclass(frozen=True)
class TableStatus:
    state: TableState
    yesterday: datetime.date
    dead_letters: int
    #: The unexpired lease of a run writing the table now, if any.
    lease: leases.Lease | None = None
    #: A lease that lapsed without being given back: its run died (the next run
    #: records it and cleans up, ``pipelines.state.leftovers``).
    lapsed: leases.Lease | None = None

    @property
    def days_behind(self) -> int | None:
        """Days between the newest replaced day and yesterday; None: never synced."""
        if self.state.newest_day is None:
            return None
        return max((self.yesterday - self.state.newest_day).days, 0)

    def lagging(self, max_lag_days: int) -> bool:
        return self.days_behind is None or self.days_behind > max_lag_days

    def stale(self, now: datetime.datetime, max_lag_minutes: int | None) -> bool:
        """The last successful snapshot is older than ``max_lag_minutes`` (None: not checked)."""
        if max_lag_minutes is None:
            return False
        fresh = self.state.fresh_read_time
        return fresh is None or now - fresh > datetime.timedelta(minutes=max_lag_minutes)


def fresh_as_of(when: datetime.datetime | None, now: datetime.datetime) -> str:
    """``14:05 UTC`` today, else ``2026-11-30 14:05 UTC``; ``-``: never."""
    if when is None:
        return "-"
    when = when.astimezone(UTC)
    return (
        f"{when:%H:%M} UTC"
        if when.date() == now.astimezone(UTC).date()
        else f"{when:%Y-%m-%d %H:%M} UTC"
    )


def parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--project", required=True, help="Google Cloud project of the dataset.")
    p.add_argument("--dataset", required=True, help="BigQuery dataset the sync writes to.")
    p.add_argument(
        "--max_lag_days",
        type=int,
        default=1,
        help="Exit 1 when a table's newest replaced day is more than this many days before "
        "yesterday (UTC), or it was never synced (default: 1).",
    )
    p.add_argument(
        "--max_lag_minutes",
        type=int,
        help="Also exit 1 when a table is not fresh as of this many minutes ago (the "
        "snapshot of its last successful run not given dates, --intraday included): the "
        "check for the hourly job.",
    )
    p.add_argument(
        "--release_leases",
        metavar="RUN_ID",
        help="Give back the leases RUN_ID holds, then exit: only for a run known dead (no "
        "job, no process; status calls it unfinished), which would otherwise hold its tables "
        "until the lease expires. A live run would go on writing without them.",
    )
    p.add_argument(
        "--schemas_dir",
        help="Read table schemas from this folder (default: $F2BQ_SCHEMAS_DIR, else schemas/).",
    )
    p.add_argument("--bq_location", help="Location of the dataset (default: the client's).")
    return p


def dead_letter_counts(
    client: bigquery.Client, dataset: str, since: datetime.datetime
) -> dict[str, int]:
    """Dead letters per table written since ``since`` (pruned by the partition column)."""
    job = bq.run_query(
        client,
        "SELECT table_name, COUNT(*) AS n "
        f"FROM {bq.table_sql(client.project, dataset, dead_letters.TABLE)} "
        f"WHERE {dead_letters.PARTITION_COLUMN} >= @since GROUP BY table_name",
        query_parameters=[bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)],
    )
    return {row["table_name"]: int(row["n"]) for row in job.result()}


def collect(
    client: bigquery.Client, dataset: str, tables: Sequence[str], now: datetime.datetime
) -> list[TableStatus]:
    states = run_log.table_states(client, dataset, tables, now)
    try:
        dead = dead_letter_counts(client, dataset, now - datetime.timedelta(DEAD_LETTER_DAYS))
    except api_exceptions.NotFound:  # no run has written dead letters yet
        dead = {}
    held = leases.held(client, dataset, tables, now)
    lapsed = {
        lease.table: lease for run in leases.lapsed(client, dataset, now).values() for lease in run
    }
    yesterday = now.astimezone(UTC).date() - ONE_DAY
    return [
        TableStatus(states[t], yesterday, dead.get(t, 0), held.get(t), lapsed.get(t))
        for t in tables
    ]


def _time(value: datetime.datetime | None) -> str:
    return format_timestamp(value) if value else "-"


def render(
    project: str,
    dataset: str,
    statuses: Sequence[TableStatus],
    max_lag_days: int,
    keep,
    now: datetime.datetime | None = None,
    max_lag_minutes: int | None = None,
) -> str:
    now = now or datetime.datetime.now(UTC)
    yesterday = statuses[0].yesterday if statuses else None
    lines = [
        f"status of {project}.{dataset}: yesterday (UTC) is {yesterday}; "
        f"dead letters of the last {DEAD_LETTER_DAYS} days",
        f"{'table':<20}  {'last success':<24}  {'snapshot':<27}  {'newest day':<10}  "
        f"{'behind':>6}  {'dead 7d':>7}  {'fresh as of':<20}  check",
    ]
    for s in statuses:
        st = s.state
        behind = "never" if s.days_behind is None else str(s.days_behind)
        check = (
            "LATE"
            if s.lagging(max_lag_days)
            else "STALE"
            if s.stale(now, max_lag_minutes)
            else "ok"
        )
        lines.append(
            f"{st.table:<20}  {st.last_success_run_id or '-':<24}  "
            f"{_time(st.last_success_read_time):<27}  {str(st.newest_day or '-'):<10}  "
            f"{behind:>6}  {s.dead_letters:>7}  "
            f"{fresh_as_of(st.fresh_read_time, now):<20}  {check}"
        )
        if s.lease is not None:
            lines.append(f"  lease: {s.lease.describe()} (renewed while the run lives)")
        elif s.lapsed is not None:
            lines.append(
                f"  lease: lapsed at {format_timestamp(s.lapsed.expires_at)}, never given back "
                f"by run {s.lapsed.run_id} (it died; the next run records it and cleans up)"
            )
        if st.last_failure_run_id:
            lines_of_error = (st.last_failure_error or "").strip().splitlines()
            error = scrub(lines_of_error[0], keep) if lines_of_error else ""
            lines.append(
                f"  last failure: run {st.last_failure_run_id} at {_time(st.last_failure_at)}"
                + (f": {error}" if error else "")
            )
    late = [s.state.table for s in statuses if s.lagging(max_lag_days)]
    lines.append(
        f"{len(late)} table(s) more than {max_lag_days} day(s) behind: {', '.join(late)}"
        if late
        else f"every table is at most {max_lag_days} day(s) behind"
    )
    if max_lag_minutes is not None:
        stale = [s.state.table for s in statuses if s.stale(now, max_lag_minutes)]
        lines.append(
            f"{len(stale)} table(s) not fresh within {max_lag_minutes} minute(s): "
            f"{', '.join(stale)}"
            if stale
            else f"every table is fresh within {max_lag_minutes} minute(s)"
        )
    return "\n".join(lines)


def release_leases(
    client: bigquery.Client,
    dataset: str,
    run_id: str,
    tables: Sequence[str],
    now: datetime.datetime,
) -> int:
    """``--release_leases``: the statement the run itself sends when it ends; 1 when
    the run holds no lease (a typo, or it already gave them back)."""
    mine = sorted(t for t, lease in leases.held(client, dataset, tables, now).items()
                  if lease.run_id == run_id)  # fmt: skip
    if not mine:
        print(f"error: run {run_id} holds no lease in {dataset} (status lists the leases held)",
              file=sys.stderr)  # fmt: skip
        return 1
    bq.concurrent_update_retry()(bq.run_query)(
        client, leases.release_sql(client.project, dataset, run_id)
    )
    print(f"gave back the leases of run {run_id} on {', '.join(mine)}")
    return 0


def main(argv: Sequence[str], now: datetime.datetime | None = None) -> int:
    """Print the status; 0 all tables current, 1 one is late or never synced, 2 bad arguments."""
    try:
        try:
            args = parser().parse_args(list(argv))
        except SystemExit as done:  # --help
            return int(done.code or 0)
        bq.check_project(args.project)
        bq.check_identifier(args.dataset, "--dataset")
        if args.max_lag_days < 0:
            raise UsageError("--max_lag_days must be 0 or more")
        if args.max_lag_minutes is not None and args.max_lag_minutes < 1:
            raise UsageError("--max_lag_minutes must be 1 or more")
        if args.release_leases is not None:
            leases.check_run_id(args.release_leases)
        specs = load_specs(args.schemas_dir)
    except (UsageError, bq.UnsafeIdentifier, SchemaError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    now = now or datetime.datetime.now(UTC)
    tables = list(specs)
    try:
        reachability.check_bigquery(args.project, args.dataset, args.bq_location)
        client = bq.make_client(args.project, args.bq_location)
        if args.release_leases is not None:
            return release_leases(client, args.dataset, args.release_leases, tables, now)
        statuses = collect(client, args.dataset, tables, now)
    except (reachability.Unreachable, UnknownVerdict) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except api_exceptions.NotFound:
        print(
            f"error: {args.project}.{args.dataset}.{run_log.TABLE} not found: no run has "
            "written there yet (check --project and --dataset)",
            file=sys.stderr,
        )
        return 1
    except api_exceptions.GoogleAPICallError as exc:
        print(f"error: {type(exc).__name__}: {scrub(exc.message.splitlines()[0])}", file=sys.stderr)
        return 1
    keep = names(specs.values())
    lag = args.max_lag_minutes
    print(render(args.project, args.dataset, statuses, args.max_lag_days, keep, now, lag))
    failing = any(s.lagging(args.max_lag_days) or s.stale(now, lag) for s in statuses)
    return 1 if failing else 0
