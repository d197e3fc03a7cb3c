"""BigQuery plumbing shared by the launcher and the write transform.

One code path for real BigQuery and the local ``bqemulator``: the only
difference is the endpoint and credentials, taken from ``BIGQUERY_EMULATOR_HOST``.
Rows travel as newline-delimited JSON in load jobs (free on BigQuery, atomic per
job) through the client's resumable upload, and each table's days are replaced
in one multi-statement transaction. Identifiers and literals that reach SQL are
validated here, never interpolated raw.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import os
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.cloud import bigquery

from pipelines.convert.table_spec import DOCUMENT_PATH_COLUMN, IDENTIFIER

EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
#: A project id as Google Cloud creates one (6-30 lowercase letters, digits and
#: hyphens, a letter first): what the deploy scripts hand to gcloud.
PROJECT_ID = re.compile(r"^[a-z][a-z0-9\-]{4,28}[a-z0-9]\Z")
#: A project a query may name: any id above, a domain-scoped one
#: (``example.com:my-project``) or an emulator's short one (``p1``), and nothing
#: that could leave the quoted table name.
QUERY_PROJECT = re.compile(r"^[a-z0-9\-.:]{1,100}\Z")
STAGING_EXPIRY = datetime.timedelta(days=2)
#: Deadline for any one API call; an emulator 500 is otherwise retried for minutes.
CALL_TIMEOUT = 120.0
#: How long a call keeps retrying a server it cannot reach (connection refused or
#: reset, 5xx) before the run gives up: the client library's default is 600 s per
#: call, which left a run whose BigQuery had gone hanging for many minutes.
LOST_SERVER_DEADLINE = 60.0
API_RETRY = bigquery.DEFAULT_RETRY.with_deadline(LOST_SERVER_DEADLINE)
#: Retries of one resumable upload (exponential from 1 s: about a minute in all).
UPLOAD_RETRIES = 6
JOB_RETRY = api_retry.Retry(
    predicate=api_retry.if_exception_type(
        api_exceptions.TooManyRequests,
        api_exceptions.InternalServerError,
        api_exceptions.BadGateway,
        api_exceptions.ServiceUnavailable,
    ),
    initial=1.0,
    maximum=30.0,
    timeout=600.0,
)


#: What BigQuery says when it cancels one of two transactions that mutate the same
#: table (https://cloud.google.com/bigquery/docs/transactions#transaction_concurrency;
#: the error string: https://cloud.google.com/bigquery/docs/troubleshoot-queries).
#: bqemulator serialises transactions instead, so only a fault test shows it.
CONCURRENT_UPDATE = "transaction is aborted due to concurrent update"
#: Attempts of one transaction aborted by a concurrent update before giving up.
CONCURRENT_UPDATE_ATTEMPTS = 5


def is_concurrent_update(exc: BaseException) -> bool:
    """Whether ``exc`` is BigQuery cancelling a transaction for a concurrent update
    (a 400 ``invalidQuery`` whose message says so): nothing was changed, and the
    whole transaction may simply be run again."""
    return (
        isinstance(exc, api_exceptions.BadRequest)
        and CONCURRENT_UPDATE in str(exc.message or exc).lower()
    )


def concurrent_update_retry(
    attempts: int = CONCURRENT_UPDATE_ATTEMPTS,
    initial: float = 2.0,
    on_error: Callable[[BaseException], Any] | None = None,
) -> api_retry.Retry:
    """Re-run a transaction BigQuery aborted for a concurrent update, with
    exponential backoff (``initial`` seconds, doubling, jittered, at most 60), at
    most ``attempts`` times in all and within ten minutes: a fresh counter per call."""
    tries = iter(range(1, attempts))

    def again(exc: BaseException) -> bool:
        return is_concurrent_update(exc) and next(tries, None) is not None

    return api_retry.Retry(
        predicate=again,
        initial=initial,
        maximum=60.0,
        multiplier=2.0,
        timeout=600.0,
        on_error=on_error,
    )


class UnsafeIdentifier(ValueError):
    """A name from options or config that must not reach SQL."""


def emulator_endpoint() -> str | None:
    """``BIGQUERY_EMULATOR_HOST`` as a URL, accepted with or without ``http://``."""
    host = os.environ.get(EMULATOR_ENV, "").strip()
    if not host:
        return None
    return host if "://" in host else f"http://{host}"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a run writes: a BigQuery dataset and the location its jobs run in.

    The write, audit and lease steps take this value, not the run's configuration."""

    project: str
    dataset: str
    location: str | None = None

    def client(self) -> bigquery.Client:
        return make_client(self.project, self.location)


def make_client(project: str, location: str | None = None) -> bigquery.Client:
    """A client for ``project``: the emulator when its variable is set, else ADC."""
    endpoint = emulator_endpoint()
    if endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return bigquery.Client(project=project, location=location)


def check_identifier(name: str, what: str = "identifier") -> str:
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise UnsafeIdentifier(f"{what} {name!r} is not a plain BigQuery identifier")
    return name


def check_project(project: str) -> str:
    if not isinstance(project, str) or not QUERY_PROJECT.match(project):
        raise UnsafeIdentifier(f"project {project!r} is not a valid project id")
    return project


def table_sql(project: str, dataset: str, table: str) -> str:
    """A fully qualified, quoted table name from validated parts."""
    return (
        f"`{check_project(project)}.{check_identifier(dataset, 'dataset')}."
        f"{check_identifier(table, 'table')}`"
    )


def date_literals(days: Iterable[datetime.date]) -> str:
    """``DATE 'YYYY-MM-DD', …`` from real date objects, so nothing else can slip in."""
    out = []
    for day in days:
        if not isinstance(day, datetime.date) or isinstance(day, datetime.datetime):
            raise TypeError(f"expected a date, got {day!r}")
        out.append(f"DATE '{day.isoformat()}'")
    return ", ".join(out)


def day_of(partition_column: str) -> str:
    """The partition column's day, as every statement filters and groups by it."""
    return f"DATE(`{check_identifier(partition_column, 'column')}`)"


def column_list(columns: Sequence[str]) -> str:
    """```a`, `b``` from validated column names."""
    return ", ".join(f"`{check_identifier(c, 'column')}`" for c in columns)


def schema_fields(schema: Sequence[Mapping[str, str]]) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField.from_api_repr(dict(f)) for f in schema]


def ensure_dataset(client: bigquery.Client, dataset: str, location: str | None) -> None:
    """Create the dataset if it is missing.

    Looked up first: the pipeline's service account may edit the dataset but not
    create datasets in the project, and then ``create_dataset`` would be refused
    even though the dataset exists.
    """
    ref = bigquery.Dataset(f"{client.project}.{check_identifier(dataset, 'dataset')}")
    try:
        client.get_dataset(ref, retry=API_RETRY, timeout=CALL_TIMEOUT)
        return
    except api_exceptions.NotFound:
        pass
    if location:
        ref.location = location
    client.create_dataset(ref, exists_ok=True, retry=API_RETRY, timeout=CALL_TIMEOUT)


def ensure_table(
    client: bigquery.Client,
    dataset: str,
    table: str,
    schema: Sequence[Mapping[str, str]],
    partition_column: str | None,
    clustering: Sequence[str] = (),
    expires: datetime.datetime | None = None,
    description: str = "",
) -> bigquery.Table:
    """Create the table, day-partitioned and clustered, unless it exists already."""
    ref = f"{client.project}.{check_identifier(dataset, 'dataset')}.{check_identifier(table)}"
    definition = bigquery.Table(ref, schema=schema_fields(schema))
    if partition_column:
        definition.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=check_identifier(partition_column)
        )
    if clustering:
        definition.clustering_fields = [check_identifier(c) for c in clustering]
    if expires:
        definition.expires = expires
    if description:
        definition.description = description
    return client.create_table(definition, exists_ok=True, retry=API_RETRY, timeout=CALL_TIMEOUT)


#: The one home of the staging tables' name prefix (``tables`` lists them by it).
STAGING_PREFIX = "_staging_"


def staging_table_name(run_id: str, table: str) -> str:
    return check_identifier(f"{STAGING_PREFIX}{run_id}_{table}")


def load_rows(
    client: bigquery.Client,
    dataset: str,
    table: str,
    schema: Sequence[Mapping[str, str]],
    rows: Sequence[Mapping[str, Any]],
    job_id: str | None = None,
) -> int:
    """Append ``rows`` to a table with one load job; returns how many."""
    payload = "".join(encode_row(r) for r in rows).encode("utf-8")
    load_file(client, dataset, table, schema, io.BytesIO(payload), job_id=job_id)
    return len(rows)


def encode_row(row: Mapping[str, Any]) -> str:
    """One newline-delimited JSON line (NaN must already be a string, see convert)."""
    return json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"


def load_file(
    client: bigquery.Client,
    dataset: str,
    table: str,
    schema: Sequence[Mapping[str, str]],
    source: IO[bytes],
    job_id: str | None = None,
) -> None:
    """Append a newline-delimited JSON file to a table with one load job.

    A resumable upload (no ``size``), which streams the file in chunks and which
    the emulator accepts (it rejects the multipart upload's content type). The
    job is all-or-nothing. With a fixed ``job_id`` a retried call cannot append
    twice: BigQuery answers 409. A failed load is reported by reason and place
    only, since BigQuery's messages can quote row content.
    """
    config = bigquery.LoadJobConfig(
        schema=schema_fields(schema),
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
    )
    source.seek(0)
    job = client.load_table_from_file(
        source,
        f"{client.project}.{dataset}.{table}",
        job_config=config,
        num_retries=UPLOAD_RETRIES,
        timeout=CALL_TIMEOUT,
        job_id=job_id,
        job_id_prefix=None if job_id else f"f2bq_load_{table[:60]}_",
    )
    try:
        job.result(timeout=CALL_TIMEOUT * 5, retry=JOB_RETRY)
    except api_exceptions.GoogleAPICallError as exc:
        reasons = sorted({e.get("reason", "?") for e in (job.errors or exc.errors or [])})
        raise LoadFailed(
            f"load job {job.job_id} into {table} failed: {', '.join(reasons)}"
        ) from None


class LoadFailed(RuntimeError):
    """A load job was rejected; the message names the job and the reasons."""


def run_query(client: bigquery.Client, sql: str, **config: Any) -> bigquery.QueryJob:
    job = client.query(
        sql,
        job_config=bigquery.QueryJobConfig(**config) if config else None,
        retry=API_RETRY,
        timeout=CALL_TIMEOUT,
        job_retry=None,
    )
    job.result(timeout=CALL_TIMEOUT * 5, retry=JOB_RETRY)
    return job


def replace_days_sql(
    project: str,
    dataset: str,
    target: str,
    staging: str,
    columns: Sequence[str],
    partition_column: str,
    days: Sequence[datetime.date],
    key_columns: Sequence[str],
    *,
    through: datetime.date | None = None,
    upsert_through: datetime.date | None = None,
    dead_staging: str | None = None,
    record: str | None = None,
    located: Sequence[datetime.date] | None = None,
    fence: str | None = None,
) -> str:
    """One transaction: empty the replaced days, then refill them from staging.

    ``days`` are replaced whole; with ``through``, so is every day up to it (a
    full rebuild). A document's old row goes wherever it is: a row being
    written removes any row of the same document on another day (it moved).
    An incremental run (``upsert_through``) writes each staged row up to that
    day (its staging holds only replaced days and changed documents) and also
    removes the old row of every document it read, on days up to that day: a
    changed document now past it (today, for a nightly no intraday run preceded)
    keeps a row there, which no statement here would write back (the run whose
    horizon holds that day does). ``dead_staging``: rows of documents that are
    now dead letters go too.

    ``located`` (incremental): the only days a staged or dead-lettered document
    can have an old row on (see :mod:`pipelines.transforms.previous_days`). The
    delete of old rows by ``_document_path`` then names those days, so BigQuery
    prunes to them and bills that column over those partitions only; without
    it the ``IN`` branch has no partition filter and reads the column over the
    table's whole history, every run. The delete is billed for the columns it
    references in the partitions it scans: days named by literals are pruned
    (a subquery or variable would not be: BigQuery prunes on constant
    expressions only). ``QUALIFY`` keeps one row per document
    in case a retried bundle staged a batch twice. ``record``: a statement run
    last inside the transaction (the ``_sync_commits`` row, see
    :mod:`pipelines.state.commit_log`), so the replacement and its record are one unit.
    ``fence``: a statement run first, which fails the transaction unless the run
    still holds the table's lease (``leases.fence_sql``).
    """
    cols, keys = column_list(columns), column_list(key_columns)
    part = day_of(partition_column)
    target_sql = table_sql(project, dataset, target)
    staging_sql = table_sql(project, dataset, staging)
    path = column_list([DOCUMENT_PATH_COLUMN])
    emptied = []
    if days:
        emptied.append(f"{part} IN ({date_literals(days)})")
    if through is not None:
        emptied.append(f"{part} <= {date_literals([through])}")
    if upsert_through is not None:
        written = f"{part} <= {date_literals([upsert_through])}"
    elif emptied:
        written = " OR ".join(emptied)
    else:
        raise ValueError("replace_days_sql needs days, through or upsert_through")
    old_rows = [f"{path} IN (SELECT {path} FROM {staging_sql} WHERE {written})"]
    if upsert_through is not None:  # read, not written: only rows up to upsert_through
        old_rows.append(f"({written} AND {path} IN (SELECT {path} FROM {staging_sql}))")
    if dead_staging is not None:
        old_rows.append(
            f"{path} IN (SELECT `document_path` FROM {table_sql(project, dataset, dead_staging)} "
            f"WHERE `table_name` = '{check_identifier(target, 'table')}')"
        )
    if located is None:
        gone = [*emptied, *old_rows]
    elif located:
        gone = [*emptied, f"({part} IN ({date_literals(located)}) AND ({' OR '.join(old_rows)}))"]
    else:
        gone = emptied
    if not gone:  # nothing staged, nothing replaced: a no-op that still records the commit
        gone = ["FALSE"]
    return (
        "BEGIN TRANSACTION;\n"
        + (f"{fence}\n" if fence else "")
        + f"DELETE FROM {target_sql} WHERE {' OR '.join(gone)};\n"
        f"INSERT INTO {target_sql} ({cols})\n"
        f"SELECT {cols} FROM {staging_sql} WHERE {written}\n"
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {keys}) = 1;\n"
        + (f"{record}\n" if record else "")
        + "COMMIT TRANSACTION;"
    )


def dead_letters_sql(
    project: str,
    dataset: str,
    target: str,
    staging: str,
    columns: Sequence[str],
    key_columns: Sequence[str],
    answered: Sequence[Any],
) -> str:
    """Copy the dead letters this run answers for (``dead_letters.Answered``, per table).

    The SQL form of ``Answered.covers``: no usable day, or the table answers for
    every letter, or the letter's day is one the run replaces.
    """
    cols, keys = column_list(columns), column_list(key_columns)
    wanted = ["`partition_day` IS NULL"]
    for rule in sorted(answered, key=lambda a: a.table):
        table = f"`table_name` = '{check_identifier(rule.table, 'table')}'"
        if rule.every:
            wanted.append(table)
        elif rule.days:
            wanted.append(f"({table} AND `partition_day` IN ({date_literals(rule.days)}))")
    return (
        f"INSERT INTO {table_sql(project, dataset, target)} ({cols})\n"
        f"SELECT {cols} FROM {table_sql(project, dataset, staging)}\n"
        f"WHERE {' OR '.join(wanted)}\n"
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {keys}) = 1"
    )


def count_rows_elsewhere(
    client: bigquery.Client,
    dataset: str,
    table: str,
    staging: str,
    partition_column: str,
    days: Sequence[datetime.date],
    located: Sequence[datetime.date] | None = None,
    upsert_through: datetime.date | None = None,
) -> int:
    """Rows of staged documents outside ``days``: an incremental run's upserts.

    ``located``: the days they can be on (see ``replace_days_sql``), which
    BigQuery then prunes to instead of reading the table's whole history.
    ``upsert_through``: the last day upserted; a staged document's row after it
    is one the run kept, not wrote (see ``replace_days_sql``)."""
    part = day_of(partition_column)
    path = column_list([DOCUMENT_PATH_COLUMN])
    outside = f" AND {part} NOT IN ({date_literals(days)})" if days else ""
    if upsert_through is not None:
        outside += f" AND {part} <= {date_literals([upsert_through])}"
    elsewhere = elsewhere_days(days, located)
    if elsewhere is not None:
        if not elsewhere:
            return 0
        outside += f" AND {part} IN ({date_literals(elsewhere)})"
    job = run_query(
        client,
        f"SELECT COUNT(*) AS n FROM {table_sql(client.project, dataset, table)} "
        f"WHERE {path} IN (SELECT {path} FROM {table_sql(client.project, dataset, staging)})"
        f"{outside}",
    )
    return int(next(iter(job.result()))["n"])


def elsewhere_days(days: Collection[Day], located: Collection[Day] | None) -> list[Day] | None:
    """The days ``count_rows_elsewhere`` names: the located days not replaced (None:
    nothing located, so no day list prunes its scan)."""
    return None if located is None else sorted(set(located) - set(days))


def rows_per_day(
    client: bigquery.Client,
    dataset: str,
    table: str,
    partition_column: str,
    days: Sequence[datetime.date] = (),
    *,
    through: datetime.date | None = None,
) -> dict[datetime.date, int]:
    """Row count of each of ``days`` (and, with ``through``, of every day up to it).

    Days in ``days`` with no rows count 0.
    """
    if not days and through is None:
        return {}
    part = day_of(partition_column)
    wanted = []
    if days:
        wanted.append(f"{part} IN ({date_literals(days)})")
    if through is not None:
        wanted.append(f"{part} <= {date_literals([through])}")
    counts = {day: 0 for day in days}
    job = run_query(
        client,
        f"SELECT {part} AS day, COUNT(*) AS n FROM {table_sql(client.project, dataset, table)} "
        f"WHERE ({' OR '.join(wanted)}) GROUP BY day",
    )
    for row in job.result():
        counts[row["day"]] = counts.get(row["day"], 0) + int(row["n"])
    return counts


def days_of_paths(
    client: bigquery.Client,
    dataset: str,
    table: str,
    partition_column: str,
    days: Sequence[datetime.date],
    paths: Sequence[str],
) -> dict[str, datetime.date]:
    """The day of each of ``paths`` that has a row on one of ``days``.

    Only those days are scanned (a literal filter on the partition column), so
    the bytes follow the days asked, not the table. The paths go in chunks, each
    a query parameter, so a long list stays within BigQuery's request size.
    """
    values = sorted(set(paths))
    if not days or not values:
        return {}
    part = day_of(partition_column)
    path = column_list([DOCUMENT_PATH_COLUMN])
    found: dict[str, datetime.date] = {}
    for i in range(0, len(values), PATHS_PER_QUERY):
        job = run_query(
            client,
            f"SELECT {path} AS path, {part} AS day "
            f"FROM {table_sql(client.project, dataset, table)} "
            f"WHERE {part} IN ({date_literals(days)}) AND {path} IN UNNEST(@paths)",
            query_parameters=[
                bigquery.ArrayQueryParameter("paths", "STRING", values[i : i + PATHS_PER_QUERY])
            ],
        )
        found.update((row["path"], row["day"]) for row in job.result())
    return found


# --------------------------------------------------------------------------------------
# What these statements scan of a destination table, as BigQuery bills it
# --------------------------------------------------------------------------------------
#
# The emulator's dry run reports 0 bytes (tests/test_emulator_shortfalls.py), so the
# benchmark bills a run's statements with this model, kept beside the SQL it models
# (tests/test_scan_model.py pins one to the other). BigQuery's rules: a query is billed
# for the columns it references, summed over the partitions it scans, and a filter on
# the partition column with constant expressions prunes the others
# (https://cloud.google.com/bigquery/docs/querying-partitioned-tables). Every statement
# here references the partition column; some also ``_document_path``. Reads of the
# staging and dead-letter tables follow the staged rows and are left out, and so is
# BigQuery's 10 MB minimum per table, so that the figures show how the statements grow.

#: A day as the scan model takes it: a date, or its ISO text as ``_sync_runs`` holds it.
Day = TypeVar("Day", bound=Hashable)


@dataclass(frozen=True)
class Scan:
    """One statement's read of a destination table: the partition column, and
    ``_document_path`` when ``path``, over the partitions ``days`` (None: every one; a
    ``<= upsert_through`` range is counted so too: it leaves out only days past the run)."""

    statement: str
    days: frozenset[Any] | None
    path: bool


def commit_scans(
    days: Collection[Day], located: Collection[Day] | None, *, incremental: bool
) -> list[Scan]:
    """What one table's commit (``write_bigquery``'s ``_replace_days``) scans of it.

    ``days``: the replaced days; ``located``: as ``replace_days_sql`` takes it. The
    per-day counts before and after; the delete, pruned to the replaced and located
    days, or scanning ``_document_path`` over the whole table when nothing is
    located; an incremental run's count of the rows it upserted elsewhere.
    """
    counts = Scan("rows_per_day", frozenset(days), path=False)
    # With nothing located the delete names only the replaced days (no path branch).
    delete = Scan(
        "replace_days_sql",
        None if located is None else frozenset(days) | frozenset(located),
        path=located is None or bool(located),
    )
    scans = [counts, delete, counts]
    elsewhere = elsewhere_days(days, located)
    if incremental and elsewhere != []:  # an empty list: count_rows_elsewhere runs nothing
        scans.append(
            Scan("count_rows_elsewhere", None if elsewhere is None else frozenset(elsewhere), True)
        )
    return scans


def drift_scans(verified: Collection[Day], lookup: Collection[Day]) -> list[Scan]:
    """What an incremental run's drift check scans before the read: ``rows_per_day``
    of the verified days, and ``days_of_paths`` of the changed documents on the lookup
    days (``_sync_runs``' ``verified_days`` and ``lookup_days``)."""
    return [
        Scan("rows_per_day", frozenset(verified), path=False),
        Scan("days_of_paths", frozenset(lookup), path=True),
    ]


def scanned_bytes(scans: Iterable[Scan], sizes: Mapping[Any, tuple[int, int]]) -> int:
    """Billed bytes of ``scans``, from each day's ``(partition column, _document_path)``
    bytes (a STRING is 2 bytes + its UTF-8 length, a TIMESTAMP or DATE 8:
    https://cloud.google.com/bigquery/pricing#data-size-calculation)."""
    total = 0
    for scan in scans:
        days = sizes.keys() if scan.days is None else scan.days & sizes.keys()
        total += sum(sizes[d][0] + (sizes[d][1] if scan.path else 0) for d in days)
    return total


def table_row_count(client: bigquery.Client, dataset: str, table: str) -> int:
    """Rows the table holds, from its metadata (no query, nothing billed); 0 if absent."""
    try:
        found = client.get_table(
            table_sql(client.project, dataset, table).strip("`"),
            retry=API_RETRY,
            timeout=CALL_TIMEOUT,
        )
        return int(found.num_rows or 0)
    except api_exceptions.NotFound:
        return 0


def first_day(
    client: bigquery.Client, dataset: str, table: str, partition_column: str
) -> datetime.date | None:
    """The table's oldest day (``MIN`` of its partition column), or None when empty."""
    part = day_of(partition_column)
    job = run_query(
        client, f"SELECT MIN({part}) AS day FROM {table_sql(client.project, dataset, table)}"
    )
    return next(iter(job.result()))["day"]


#: Document paths per query parameter when looking up rows by path.
PATHS_PER_QUERY = 10_000
