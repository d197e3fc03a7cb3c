"""Firestore client and query helpers shared by the read transform and planning."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import BaseDocumentReference
from google.cloud.firestore_v1.base_query import BaseQuery

from pipelines.document import FirestoreDocument
from pipelines.table_spec import TableSpec

#: Errors a read may meet and survive: the client resumes after the last document.
TRANSIENT = (
    api_exceptions.ServiceUnavailable,
    api_exceptions.DeadlineExceeded,
    api_exceptions.TooManyRequests,  # RESOURCE_EXHAUSTED
    api_exceptions.Aborted,
    api_exceptions.InternalServerError,
)


def read_retry(timeout: float) -> api_retry.Retry:
    return api_retry.Retry(
        predicate=api_retry.if_exception_type(*TRANSIENT),
        initial=0.25,
        maximum=16.0,
        multiplier=2.0,
        timeout=timeout,
    )


EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"


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
) -> Iterator[FirestoreDocument]:
    """One streamed query; on a transient error the client reopens the stream
    with ``start_after`` the last document it yielded (with backoff on the
    reopen), so nothing is read twice and nothing is skipped.

    Each RPC gets the retry's deadline: a stream from a server that accepts but
    never answers then ends in DEADLINE_EXCEEDED, and a long healthy stream that
    reaches it simply resumes, as after any other transient error."""
    for snapshot in query.stream(read_time=read_time, retry=retry, timeout=retry.timeout):
        yield FirestoreDocument(
            table=table,
            path=snapshot.reference.path,
            data=_detached(snapshot.to_dict() or {}),
            update_time=_as_datetime(snapshot.update_time),
        )


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
