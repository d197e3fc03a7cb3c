"""A gRPC proxy before the Firestore emulator that keeps Firestore's snapshot horizon.

Real Firestore serves a query at ``read_time`` only while ``read_time`` is within
its horizon (one hour without point-in-time recovery); later it answers
``FAILED_PRECONDITION: The requested snapshot version is too old.``. The
emulator serves any ``read_time``. This proxy forwards every call unchanged
(bytes in, bytes out) and answers like Firestore for a query or aggregation
or batched get whose ``read_time`` has left the horizon, checked when the call
arrives and at each document a query streams.

Time is simulated so that a test's read of a few hundred documents can outlast
a horizon of seconds deterministically: the proxy's clock is the real clock
plus ``1 / docs_per_second`` for every document it has streamed (a slow read).
"""

from __future__ import annotations

import datetime
import threading

import grpc
from google.cloud.firestore_v1.types import (
    BatchGetDocumentsRequest,
    RunAggregationQueryRequest,
    RunQueryRequest,
    RunQueryResponse,
)

from tests.support.fault_proxy import GrpcRelay

SERVICE = "/google.firestore.v1.Firestore/"
TOO_OLD = "The requested snapshot version is too old."
#: The calls that read at a ``read_time``, and how to read their request.
_REQUESTS = {
    "RunQuery": RunQueryRequest,
    "RunAggregationQuery": RunAggregationQueryRequest,
    "BatchGetDocuments": BatchGetDocumentsRequest,
}


class SnapshotHorizonProxy(GrpcRelay):
    def __init__(self, upstream: str, horizon: float, docs_per_second: float) -> None:
        self.horizon = datetime.timedelta(seconds=horizon)
        self.docs_per_second = docs_per_second
        self.streamed = 0
        self.refused = 0
        self.calls: list[str] = []
        self._lock = threading.Lock()
        super().__init__(upstream, workers=32)

    def now(self) -> datetime.datetime:
        with self._lock:
            slow = datetime.timedelta(seconds=self.streamed / self.docs_per_second)
        return datetime.datetime.now(datetime.UTC) + slow

    def check(self, read_time: datetime.datetime | None, context: grpc.ServicerContext) -> None:
        if read_time is not None and self.now() > read_time + self.horizon:
            with self._lock:
                self.refused += 1
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, TOO_OLD)

    def streamed_one(self) -> None:
        with self._lock:
            self.streamed += 1

    def handler(self, method: str):
        name = method.removeprefix(SERVICE)
        if method.startswith(SERVICE):
            self.calls.append(name)
        kind = _REQUESTS.get(name)
        if kind is None:
            return None

        def read(requests, context):
            (request,) = list(requests)  # these calls send one request
            parsed = kind.deserialize(request)
            read_time = parsed.read_time if "read_time" in parsed else None
            self.check(read_time, context)
            for response in self.relay(method, iter([request]), context):
                if name == "RunQuery" and "document" in RunQueryResponse.deserialize(response):
                    self.streamed_one()
                    self.check(read_time, context)
                yield response

        return grpc.stream_stream_rpc_method_handler(read)
