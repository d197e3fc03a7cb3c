"""Firestore client and query helpers shared by the read transform and planning."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import BaseDocumentReference
from google.cloud.firestore_v1.base_query import BaseQuery
from google.cloud.firestore_v1.field_path import FieldPath

from pipelines.convert import time_source
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import TableSpec
from pipelines.services import error_text

_LOG = logging.getLogger(__name__)
#: Errors a read may meet and survive: the client resumes after the last document.
TRANSIENT = (
    api_exceptions.ServiceUnavailable,
    api_exceptions.DeadlineExceeded,
    api_exceptions.TooManyRequests,  # RESOURCE_EXHAUSTED
    api_exceptions.Aborted,
    api_exceptions.InternalServerError,
)


is_transient = api_retry.if_exception_type(*TRANSIENT)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a run reads: a Firestore database and how long a read may retry.

    A small picklable value the read transforms take instead of the run's whole
    configuration, as Beam's own IO takes a project and a query."""

    project: str
    database: str = "(default)"
    retry_timeout: float = 300.0

    def client(self) -> firestore.Client:
        return make_client(self.project, self.database)

    def retry(self) -> api_retry.Retry:
        return read_retry(self.retry_timeout)


def read_retry(timeout: float) -> api_retry.Retry:
    return api_retry.Retry(
        predicate=is_transient,
        initial=0.25,
        maximum=16.0,
        multiplier=2.0,
        timeout=timeout,
    )


EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"


def emulator_host() -> str | None:
    """``FIRESTORE_EMULATOR_HOST`` as ``host:port``, or None when unset."""
    host = os.environ.get(EMULATOR_ENV, "").strip()
    return (host.split("://", 1)[1].rstrip("/") if "://" in host else host) or None


def make_client(project: str, database: str = "(default)") -> firestore.Client:
    """A client; it talks to the emulator when ``FIRESTORE_EMULATOR_HOST`` is set.

    The variable is accepted with or without ``http://``; the client wants ``host:port``.
    """
    host = os.environ.get(EMULATOR_ENV, "")
    if "://" in host:
        os.environ[EMULATOR_ENV] = host.split("://", 1)[1].rstrip("/")
    return firestore.Client(project=project, database=database)


def base_query(client: firestore.Client, spec: TableSpec) -> BaseQuery:
    """All documents of ``spec``'s collection, ordered by name for cursors."""
    if spec.layout == "per_user":
        query = client.collection_group(spec.collection)
    else:
        query = client.collection(spec.collection)
    return query.order_by("__name__")


def field_range_query(
    client: firestore.Client,
    spec: TableSpec,
    field: str,
    start: datetime.datetime | None,
    end: datetime.datetime | None,
) -> BaseQuery:
    """Documents with ``start <= field < end``, ordered by the field and then name.

    Only values of the field's declared encoding match: Firestore timestamps, or
    for a column whose ``timestamp_source`` is epoch numbers, numbers (the bounds
    are encoded to match, see :mod:`pipelines.convert.time_source`). The order
    gives the client a cursor to resume from after a transient error (never an
    offset).
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    column = spec.range_column(field)
    encoding = column.timestamp_source if column else ""

    if spec.layout == "per_user":
        query = client.collection_group(spec.collection)
    else:
        query = client.collection(spec.collection)
    if start is not None:
        query = query.where(
            filter=FieldFilter(field, ">=", time_source.query_value(encoding, start))
        )
    if end is not None:
        query = query.where(filter=FieldFilter(field, "<", time_source.query_value(encoding, end)))
    return query.order_by(field).order_by("__name__")


def count(query: BaseQuery, read_time: datetime.datetime, retry: api_retry.Retry) -> int:
    """The number of documents ``query`` matches at ``read_time``: one aggregation,
    billed as one read per 1,000 documents counted."""
    result = query.count(alias="n").get(read_time=read_time, retry=retry, timeout=retry.timeout)
    return int(result[0][0].value)


def count_range(
    client: firestore.Client,
    spec: TableSpec,
    field: str,
    start: datetime.datetime | None,
    end: datetime.datetime | None,
    read_time: datetime.datetime,
    retry: api_retry.Retry,
) -> int:
    """Documents with ``start <= field < end`` at ``read_time`` (see :func:`count`)."""
    return count(field_range_query(client, spec, field, start, end), read_time, retry)


def count_all(
    client: firestore.Client, spec: TableSpec, read_time: datetime.datetime, retry: api_retry.Retry
) -> int:
    """Every document of ``spec``'s collection at ``read_time`` (see :func:`count`)."""
    return count(base_query(client, spec), read_time, retry)


#: Firestore's smallest timestamp: a range from it matches every timestamp value.
EARLIEST = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)


def oldest_time(
    client: firestore.Client,
    spec: TableSpec,
    field: str,
    read_time: datetime.datetime,
    retry: api_retry.Retry,
) -> datetime.datetime | None:
    """The smallest time in ``field`` at ``read_time`` (one ordered limit-1
    query, one read), or None when no document holds one there (a timestamp, or
    a number for an epoch column)."""
    column = spec.range_column(field)
    encoding = column.timestamp_source if column else ""
    query = field_range_query(client, spec, field, EARLIEST, None).limit(1)
    for snapshot in query.stream(read_time=read_time, retry=retry, timeout=retry.timeout):
        try:
            value = snapshot.get(field)
        except KeyError:
            continue
        instant = time_source.instant_of(encoding, value)
        if instant is not None:
            return instant
    return None


def range_query(
    client: firestore.Client, spec: TableSpec, start: str | None, end: str | None
) -> BaseQuery:
    """The documents with ``start <= name < end``; either bound may be open."""
    query = base_query(client, spec)
    if start is not None:
        query = query.start_at({"__name__": client.document(start)})
    if end is not None:
        query = query.end_before({"__name__": client.document(end)})
    return query


def stream_documents(
    query: BaseQuery,
    table: str,
    read_time: datetime.datetime,
    retry: api_retry.Retry,
    changed: bool = False,
) -> Iterator[FirestoreDocument]:
    """One streamed query; on a transient error the client reopens the stream
    with ``start_after`` the last document it yielded (with backoff on the
    reopen), so nothing is read twice and nothing is skipped.

    Each RPC gets the retry's deadline: a stream from a server that accepts but
    never answers then ends in DEADLINE_EXCEEDED, and a long healthy stream that
    reaches it simply resumes, as after any other transient error.

    Every retry is logged (one line: the table, where the read resumes, the
    attempt): both the client's reopen after a broken stream and its backoff
    retries ask the retry's predicate, so the predicate is where it is said."""
    log = _RetryLog(table)
    logged = retry.with_predicate(log.retryable)
    for snapshot in query.stream(read_time=read_time, retry=logged, timeout=retry.timeout):
        log.last_path = snapshot.reference.path
        yield FirestoreDocument(
            table=table,
            path=snapshot.reference.path,
            data=_detached(snapshot.to_dict() or {}),
            update_time=_as_datetime(snapshot.update_time),
            create_time=_as_datetime(snapshot.create_time),
            changed=changed,
        )


def previous_versions(
    client: firestore.Client,
    spec: TableSpec,
    paths: Sequence[str],
    read_time: datetime.datetime,
    retry: api_retry.Retry,
) -> Iterator[FirestoreDocument]:
    """The documents at ``paths`` as of ``read_time`` (one batched get, one read
    each), only their partition field; a document that did not exist then is
    left out. Each is what the table's row of it was made from."""
    refs = [client.document(path) for path in paths]
    field = FieldPath(*spec.partition.source).to_api_repr()
    for snapshot in client.get_all(
        refs, field_paths=[field], read_time=read_time, retry=retry, timeout=retry.timeout
    ):
        if snapshot.exists:
            yield FirestoreDocument(
                table=spec.name,
                path=snapshot.reference.path,
                data=_detached(snapshot.to_dict() or {}),
            )


class _RetryLog:
    """A transient-error predicate that says, once per retry, what is being retried."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.last_path: str | None = None
        self.attempts = 0

    def retryable(self, exc: Exception) -> bool:
        if not is_transient(exc):
            return False
        self.attempts += 1
        where = f"after {self.last_path}" if self.last_path else "at the start of its range"
        _LOG.warning(
            "Firestore read of %s, resuming %s: attempt %d failed (%s)",
            self.table,
            where,
            self.attempts,
            error_text.one_line(exc),  # scrubbed: a server's message may quote a value
        )
        return True


def _detached(value: Any) -> Any:
    """The document's values with references cut loose from the client.

    A ``DocumentReference`` holds the client, which cannot be pickled, and Beam
    encodes elements between stages (and samples them for size estimates).
    """
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_detached(v) for v in value]
    if isinstance(value, BaseDocumentReference):
        return BaseDocumentReference(*value._path)
    return value


def _as_datetime(value) -> datetime.datetime | None:
    """Snapshot times arrive as protobuf Timestamps or datetimes, by client version."""
    if value is None or isinstance(value, datetime.datetime):
        return value
    return value.ToDatetime(tzinfo=datetime.UTC)
