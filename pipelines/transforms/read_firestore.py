"""Read Firestore collections at one snapshot, in parallel, each document once.

Shaped like Beam's ``ReadFromDatastore``: a small composite that splits each
query into ranges of document names, reshuffles the ranges so workers share
them, and streams each range with one query.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics
from google.api_core import exceptions as api_exceptions

from pipelines import firestore as fs
from pipelines.document import FirestoreDocument
from pipelines.table_spec import TableSpec

_LOG = logging.getLogger(__name__)
NAMESPACE = "firestore_to_bq"
#: Characters auto-generated Firestore ids are drawn from, in Firestore's byte order.
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class NameRange:
    """Documents of one table with ``start <= name < end`` (None: open end)."""

    table: str
    start: str | None
    end: str | None


def name_boundaries(spec: TableSpec, num_splits: int) -> list[str]:
    """Split points on document names when the server has no PartitionQuery.

    Ids are spread over the id alphabet (auto-ids uniformly), so cutting the
    first character of the top-level id into ``num_splits`` bands balances the
    ranges without reading a single document.
    """
    if num_splits <= 1:
        return []
    n = min(num_splits, len(ID_ALPHABET))
    step = len(ID_ALPHABET) / n
    prefix = spec.parent_collection if spec.layout == "per_user" else spec.collection
    return [f"{prefix}/{ID_ALPHABET[round(i * step)]}" for i in range(1, n)]


def ranges_from_boundaries(table: str, boundaries: Sequence[str]) -> list[NameRange]:
    edges: list[str | None] = [None, *boundaries, None]
    return [NameRange(table, lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]


class _SplitQueryFn(beam.DoFn):
    """One table spec in, its name ranges out (PartitionQuery, else name bands)."""

    def __init__(
        self,
        project: str,
        database: str,
        read_time: datetime.datetime,
        splits: int,
        retry_timeout: float,
    ):
        self._project = project
        self._database = database
        self._read_time = read_time
        self._splits = splits
        self._retry_timeout = retry_timeout

    def setup(self) -> None:
        self._client = fs.make_client(self._project, self._database)
        self._retry = fs.read_retry(self._retry_timeout)

    def process(self, spec: TableSpec) -> Iterator[NameRange]:
        boundaries = None
        if spec.layout == "per_user" and self._splits > 1:
            boundaries = self._partition_query(spec)
        if boundaries is None:
            boundaries = name_boundaries(spec, self._splits)
        ranges = ranges_from_boundaries(spec.name, boundaries)
        Metrics.counter(NAMESPACE, f"{spec.name}.ranges").inc(len(ranges))
        yield from ranges

    def _partition_query(self, spec: TableSpec) -> list[str] | None:
        group = self._client.collection_group(spec.collection)
        try:
            partitions = list(
                group.get_partitions(self._splits, read_time=self._read_time, retry=self._retry)
            )
        except (api_exceptions.MethodNotImplemented, api_exceptions.InvalidArgument) as exc:
            _LOG.info("PartitionQuery unavailable for %s (%s); splitting on names", spec.name, exc)
            return None
        # Each partition ends where the next starts; the last one is open-ended.
        boundaries = [p.end_at.path for p in partitions if p.end_at is not None]
        return boundaries


class _ReadRangeFn(beam.DoFn):
    """Stream one name range at the snapshot; transient errors resume at the cursor."""

    def __init__(self, project: str, database: str, read_time: datetime.datetime, specs, timeout):
        self._project = project
        self._database = database
        self._read_time = read_time
        self._specs = {s.name: s for s in specs}
        self._timeout = timeout

    def setup(self) -> None:
        self._client = fs.make_client(self._project, self._database)
        self._retry = fs.read_retry(self._timeout)
        self._counters = {
            name: Metrics.counter(NAMESPACE, f"{name}.documents_read") for name in self._specs
        }

    def process(self, rng: NameRange) -> Iterator[FirestoreDocument]:
        spec = self._specs[rng.table]
        query = fs.range_query(self._client, spec, rng.start, rng.end)
        counter = self._counters[rng.table]
        for doc in fs.stream_documents(query, spec.name, self._read_time, self._retry):
            counter.inc()
            yield doc


class ReadFromFirestore(beam.PTransform):
    """All documents of ``specs`` as of ``read_time``, as :class:`FirestoreDocument`."""

    def __init__(
        self,
        project: str,
        specs: Sequence[TableSpec],
        read_time: datetime.datetime,
        database: str = "(default)",
        num_splits: int = 8,
        retry_timeout: float = 300.0,
    ):
        super().__init__()
        self._project = project
        self._specs = list(specs)
        self._read_time = read_time
        self._database = database
        self._num_splits = num_splits
        self._retry_timeout = retry_timeout

    def expand(self, pbegin):
        args = (self._project, self._database, self._read_time)
        return (
            pbegin
            | "TableSpecs" >> beam.Create(self._specs)
            | "SplitQuery"
            >> beam.ParDo(_SplitQueryFn(*args, self._num_splits, self._retry_timeout))
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadRange" >> beam.ParDo(_ReadRangeFn(*args, self._specs, self._retry_timeout))
        )
