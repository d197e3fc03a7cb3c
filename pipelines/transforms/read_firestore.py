"""Read Firestore collections at one snapshot, in parallel, each document once.

Shaped like Beam's ``ReadFromDatastore``: a small composite that splits each
query into ranges of document names, reshuffles the ranges so workers share
them, and streams each range with one query.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator, Sequence

import apache_beam as beam
from google.api_core import exceptions as api_exceptions

from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import TableSpec
from pipelines.plan.splits import (
    NameRange,
    name_boundaries,
    ranges_from_boundaries,
    sorted_boundaries,
)
from pipelines.services import firestore as fs
from pipelines.transforms import metrics

_LOG = logging.getLogger(__name__)


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
        metrics.counter(spec.name, metrics.RANGES).inc(len(ranges))
        yield from ranges

    def _partition_query(self, spec: TableSpec) -> list[str] | None:
        """Split points from PartitionQuery, or None where the server has none.

        Its ``partition_count`` counts split points, not ranges ("one fewer
        than the number of parallel queries to be run", Firestore's reference),
        so ``--num_splits`` ranges take one point fewer.
        """
        group = self._client.collection_group(spec.collection)
        points = self._splits - 1
        try:
            partitions = list(
                group.get_partitions(points, read_time=self._read_time, retry=self._retry)
            )
        except (api_exceptions.MethodNotImplemented, api_exceptions.InvalidArgument) as exc:
            _note_no_partition_query(exc)
            return None
        # Each partition ends where the next starts; the last one is open-ended.
        # The client yields them in page order, not name order: sorted_boundaries.
        return sorted_boundaries(p.end_at.path for p in partitions if p.end_at is not None)


_partition_query_noted = False


def _note_no_partition_query(exc: Exception) -> None:
    """Say once per process that splits fall back to name bands.

    The emulator never has PartitionQuery, so there it is a debug note; on
    Firestore it is worth an INFO line.
    """
    global _partition_query_noted
    if not _partition_query_noted:
        _partition_query_noted = True
        level = logging.DEBUG if os.environ.get(fs.EMULATOR_ENV) else logging.INFO
        code = getattr(exc, "code", None) or type(exc).__name__
        _LOG.log(level, "PartitionQuery unavailable (%s); splitting on document names", code)


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
            name: metrics.counter(name, metrics.DOCUMENTS_RETURNED) for name in self._specs
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
