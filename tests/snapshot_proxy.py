"""A gRPC proxy before the Firestore emulator that keeps Firestore's snapshot horizon.

Real Firestore serves a query at ``read_time`` only while ``read_time`` is within
its horizon (one hour without point-in-time recovery); later it answers
``FAILED_PRECONDITION: The requested snapshot version is too old.``. The
emulator serves any ``read_time``. This proxy forwards every call unchanged
(bytes in, bytes out) and answers like Firestore for a query or aggregation
whose ``read_time`` has left the horizon, checked when the call arrives and at
each document it streams.

Time is simulated so that a test's read of a few hundred documents can outlast
a horizon of seconds deterministically: the proxy's clock is the real clock
plus ``1 / docs_per_second`` for every document it has streamed (a slow read).
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
from google.cloud.firestore_v1.types import (
    RunAggregationQueryRequest,
    RunQueryRequest,
    RunQueryResponse,
)

SERVICE = "/google.firestore.v1.Firestore/"
STREAMED = {"RunQuery", "RunAggregationQuery", "BatchGetDocuments"}
BIDI = {"Write", "Listen"}
TOO_OLD = "The requested snapshot version is too old."
_REQUESTS = {"RunQuery": RunQueryRequest, "RunAggregationQuery": RunAggregationQueryRequest}


class SnapshotHorizonProxy:
    def __init__(self, upstream: str, horizon: float, docs_per_second: float) -> None:
        self.horizon = datetime.timedelta(seconds=horizon)
        self.docs_per_second = docs_per_second
        self.streamed = 0
        self.refused = 0
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._channel = grpc.insecure_channel(upstream)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        self._server.add_generic_rpc_handlers((_Forward(self),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()

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


def _metadata(context: grpc.ServicerContext) -> list[tuple[str, str]]:
    return [
        (k, v)
        for k, v in context.invocation_metadata()
        if not k.startswith((":", "grpc-")) and k != "user-agent"
    ]


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, proxy: SnapshotHorizonProxy) -> None:
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails):
        method = details.method
        if not method.startswith(SERVICE):
            return None
        name = method[len(SERVICE) :]
        proxy, channel = self.proxy, self.proxy._channel
        proxy.calls.append(name)

        def relay(call, context):
            try:
                yield from call
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details())

        if name in BIDI:

            def bidi(requests: Iterator[bytes], context) -> Iterator[bytes]:
                call = channel.stream_stream(method)(requests, metadata=_metadata(context))
                yield from relay(call, context)

            return grpc.stream_stream_rpc_method_handler(bidi)
        if name in STREAMED:

            def streamed(request: bytes, context) -> Iterator[bytes]:
                kind = _REQUESTS.get(name)
                read_time = None
                if kind is not None:
                    parsed = kind.deserialize(request)
                    read_time = parsed.read_time if "read_time" in parsed else None
                proxy.check(read_time, context)
                call = channel.unary_stream(method)(request, metadata=_metadata(context))
                for response in relay(call, context):
                    if name == "RunQuery" and "document" in RunQueryResponse.deserialize(response):
                        proxy.streamed_one()
                        proxy.check(read_time, context)
                    yield response

            return grpc.unary_stream_rpc_method_handler(streamed)

        def unary(request: bytes, context) -> bytes:
            try:
                return channel.unary_unary(method)(request, metadata=_metadata(context))
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details())

        return grpc.unary_unary_rpc_method_handler(unary)
