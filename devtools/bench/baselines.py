"""What the pipeline is measured against: the least work any sync must do, and what
users write by hand.

floor
    Stream every document once (``collection_group(c).stream()``, one collection
    after the other), convert each with the product's own ``document_to_row`` and
    append each collection's rows to a fresh table with the real schema in ONE
    load job (``pipelines.services.bigquery.load_rows``). Creating the five tables is included.
naive
    Stream each collection group, convert each document, and stream rows in with
    the BigQuery client's ``insert_rows_json`` (``tabledata.insertAll``), ``batch``
    rows per request. bqemulator snapshots a table on every ``insertAll``, so
    this slows down as its tables grow, which real BigQuery does not.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import math
import time
from collections.abc import Iterator
from typing import Any

from google.api_core import retry as api_retry

from devtools.bench.datasets import create_tables
from pipelines.convert.conversion import ConversionError, document_to_row
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import EXTRA_COLUMN, TableSpec
from pipelines.services import bigquery as bq

UTC = datetime.UTC
#: insertAll failures are bugs here, not load: fail within a minute, not the default ten.
INSERT_RETRY = api_retry.Retry(timeout=60.0)


def stream_collection(db: Any, spec: TableSpec) -> Iterator[Any]:
    """Every document of ``spec``'s collection: a plain stream, no ordering, no cursors."""
    if spec.layout == "per_user":
        return db.collection_group(spec.collection).stream()
    return db.collection(spec.collection).stream()


def as_document(spec: TableSpec, snapshot: Any) -> FirestoreDocument:
    """The pipeline's unit of work, built from a snapshot as ``stream_documents`` does."""
    updated = snapshot.update_time
    if updated is not None and not isinstance(updated, datetime.datetime):
        updated = updated.ToDatetime(tzinfo=UTC)  # a protobuf Timestamp
    return FirestoreDocument(
        table=spec.name,
        path=snapshot.reference.path,
        data=snapshot.to_dict() or {},
        update_time=updated,
    )


def measure_floor(db: Any, client: Any, specs: list[TableSpec], dataset: str) -> dict[str, Any]:
    """Read everything once, convert, then one load job per table."""
    run_id, read_time = "bench_floor", datetime.datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    docs = {
        spec.name: [as_document(spec, s) for s in stream_collection(db, spec)] for spec in specs
    }
    t1 = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {}
    rejected = 0
    for spec in specs:
        rows[spec.name] = []
        for doc in docs[spec.name]:
            try:
                rows[spec.name].append(document_to_row(spec, doc, run_id, read_time))
            except ConversionError:
                rejected += 1
    t2 = time.perf_counter()
    create_tables(client, dataset, specs)
    loaded = sum(
        bq.load_rows(client, dataset, spec.name, spec.bigquery_schema(), rows[spec.name])
        for spec in specs
        if rows[spec.name]
    )
    t3 = time.perf_counter()
    read = sum(len(d) for d in docs.values())
    return {
        "wall_seconds": t3 - t0,
        "read_seconds": t1 - t0,
        "convert_seconds": t2 - t1,
        "load_seconds": t3 - t2,
        "documents_read": read,
        "rows_loaded": loaded,
        "rejected": rejected,
        "ok": loaded == read and rejected == 0,
    }


def json_columns(spec: TableSpec) -> tuple[str, ...]:
    """Columns of type JSON, which ``insertAll`` takes as JSON text, not as objects."""
    return tuple(c.name for c in spec.columns if c.type == "JSON") + (EXTRA_COLUMN,)


def for_insert_all(row: dict[str, Any], json_cols: tuple[str, ...]) -> dict[str, Any]:
    for name in json_cols:
        if row.get(name) is not None:
            row[name] = json.dumps(row[name], ensure_ascii=False)
    return row


def _insert(client: Any, table: str, rows: list[dict[str, Any]]) -> int:
    """One ``insertAll`` request; returns the rows it rejected."""
    errors = client.insert_rows_json(table, rows, retry=INSERT_RETRY, timeout=30.0)
    return len(errors)


def measure_naive(
    db: Any, client: Any, specs: list[TableSpec], dataset: str, batch: int, cap: int | None = None
) -> dict[str, Any]:
    """Stream, convert and ``insert_rows_json`` ``batch`` rows per request.

    With ``cap`` only the first ``cap`` documents (spread over the tables) are
    sent, and the stream is closed there.
    """
    run_id, read_time = "bench_naive", datetime.datetime.now(UTC).isoformat()
    per_table = math.ceil(cap / len(specs)) if cap else None
    t0 = time.perf_counter()
    create_tables(client, dataset, specs)
    sent = failed = requests = 0
    inserting = 0.0

    def insert(table: str, rows: list[dict[str, Any]]) -> int:
        nonlocal inserting
        t = time.perf_counter()
        try:
            return _insert(client, table, rows)
        finally:
            inserting += time.perf_counter() - t

    for spec in specs:
        table = f"{client.project}.{dataset}.{spec.name}"
        json_cols = json_columns(spec)
        buffer: list[dict[str, Any]] = []
        snapshots = stream_collection(db, spec)
        for snapshot in itertools.islice(snapshots, per_table):
            doc = as_document(spec, snapshot)
            buffer.append(for_insert_all(document_to_row(spec, doc, run_id, read_time), json_cols))
            if len(buffer) >= batch:
                failed += insert(table, buffer)
                sent, requests, buffer = sent + len(buffer), requests + 1, []
        if buffer:
            failed += insert(table, buffer)
            sent, requests = sent + len(buffer), requests + 1
        with contextlib.suppress(Exception):
            snapshots.close()  # a capped stream: stop the server-side query too
    wall = time.perf_counter() - t0
    return {
        "wall_seconds": wall,
        "documents": sent,
        "requests": requests,
        "insert_seconds": inserting,
        "rows_rejected": failed,
        "ok": failed == 0 and sent > 0,
    }
