"""Loopback proxies in front of the Firestore emulator, to meet real Firestore's behaviour.

:class:`FaultProxy` is a TCP proxy that breaks connections on cue, to fault gRPC
reads for real. After the server has sent ``cut_every`` more bytes, it resets
every open connection (the client sees ``UNAVAILABLE`` mid-stream, exactly as on
a dropped network path) and can call ``on_cut`` (e.g. to stop the emulator).
Bounded: at most ``max_cuts`` cuts.

``die_on``: the ``die_at``-th time a client sends these bytes (e.g. ``b"/upload/"``,
BigQuery's load-job upload), the server is gone for good: every connection is
reset and new ones are refused, as when the machine behind it dies.
``on_send``: called with every chunk a client sends, before it is forwarded
(e.g. to deliver SIGTERM to the run when its commit starts).

:class:`PartitionQueryProxy` is a gRPC proxy that relays every call to the
emulator byte for byte but answers ``PartitionQuery`` itself, which the emulator
does not implement (UNIMPLEMENTED), the way Firestore's API reference allows:
over several pages, pages in no particular order, cursors repeated.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        cut_every: int | None = None,
        max_cuts: int = 0,
        on_cut: Callable[[], None] | None = None,
        die_on: bytes | None = None,
        die_at: int = 1,
        on_send: Callable[[bytes], None] | None = None,
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_every = cut_every
        self.max_cuts = max_cuts
        self.on_cut = on_cut
        self.on_send = on_send
        self.die_on = die_on
        self._seen_until_death = die_at
        self.died = threading.Event()
        self.cuts = 0
        self.bytes_down = 0
        self._next_cut = cut_every
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()
        self._reset_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not downstream and self._dies(data):
                    self.died.set()
                    self.close()
                    return
                if not downstream and self.on_send is not None:
                    self.on_send(data)
                cut_at = self._count(len(data)) if downstream else None
                if cut_at is not None:
                    # Part of the chunk that crosses the line, then the reset: the
                    # response those bytes belong to is broken mid-way, as by a
                    # crashed peer (all of it first could let that call end cleanly,
                    # and the reset hit only idle connections, which reconnect).
                    dst.sendall(data[:cut_at])
                    self._cut()
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _dies(self, data: bytes) -> bool:
        if self.die_on is None or self.die_on not in data:
            return False
        with self._lock:
            self._seen_until_death -= 1
            return self._seen_until_death <= 0

    def _count(self, n: int) -> int | None:
        """Count ``n`` bytes sent down; where in them to cut (always before their
        end), or None."""
        with self._lock:
            before = self.bytes_down
            self.bytes_down += n
            if self._next_cut is None or self.cuts >= self.max_cuts:
                return None
            if self.bytes_down < self._next_cut:
                return None
            self.cuts += 1
            cut_at = min(max(self._next_cut - before, 0), n - 1)
            self._next_cut = self.bytes_down + self.cut_every
            return cut_at

    def _cut(self) -> None:
        if self.on_cut:
            self.on_cut()
        self._reset_all()

    def _reset_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _reset(s)


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a crashed peer or a dropped path does.

    ``shutdown`` first: ``close`` alone does not wake a pump thread blocked in
    ``recv`` on the same socket, which then keeps it open, so the client would
    wait on a silent connection until its deadline instead of seeing it drop.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


_FIRESTORE = "/google.firestore.v1.Firestore/"
PARTITION_QUERY = _FIRESTORE + "PartitionQuery"
RUN_QUERY = _FIRESTORE + "RunQuery"
#: Metadata the client's channel sets itself; relaying them would be refused or doubled.
_HOP_BY_HOP = ("user-agent", "content-type", "te", "host", "grpc-")


class GrpcRelay:
    """A gRPC server on loopback that relays every call to ``upstream`` (``host:port``)
    as bytes, except what ``handler(details, relay)`` answers itself (it returns a
    method handler, or None to relay). The base of the proxies below that play a
    part of real Firestore the emulator lacks."""

    def __init__(self, upstream: str, workers: int = 64) -> None:
        import concurrent.futures

        import grpc

        self._channel = grpc.insecure_channel(upstream)
        self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=workers))
        self._server.add_generic_rpc_handlers((_Handlers(self),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()

    def handler(self, method: str):
        """The handler of a method this proxy answers itself; None relays it."""
        return None

    def relay(self, method: str, requests, context):
        """Forward one call of any kind (on the wire, every gRPC call is a stream)."""
        import grpc

        call = self._channel.stream_stream(method)(
            requests, metadata=_forwarded(context), timeout=context.time_remaining()
        )
        context.add_callback(call.cancel)
        try:
            yield from call
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")


class PartitionQueryProxy(GrpcRelay):
    """A gRPC server on loopback: ``PartitionQuery`` answered here, every other call relayed.

    The cursors are computed from the emulator's documents: the query's
    document names are listed through the emulator (a ``RunQuery`` projected
    on ``__name__``, at the request's ``read_time``) and ``partition_count``
    cursors are placed evenly among them. Then, as Firestore's reference for
    ``PartitionQueryRequest.page_token`` warns ("there are no ordering
    guarantees between sets of results"), they are served adversarially:
    ``page_size`` per page (``default_page_size`` when the request sets none),
    the pages in a shuffled order (fixed by ``seed``), and every
    ``duplicate_every``-th cursor served again at the start of the next page.
    The page token is the page's index, so pages are stateless and a retried
    call gets the same page.

    ``calls`` records ``(collection id, partition_count, page_token, cursors)``
    per call, in the order they came.
    """

    def __init__(
        self,
        upstream_port: int,
        default_page_size: int = 3,
        duplicate_every: int = 3,
        seed: int = 15,
    ) -> None:
        self.default_page_size = default_page_size
        self.duplicate_every = duplicate_every
        self.seed = seed
        self.calls: list[tuple[str, int, str, tuple[str, ...]]] = []
        self._lock = threading.Lock()
        super().__init__(f"127.0.0.1:{upstream_port}")

    def handler(self, method: str):
        import grpc
        from google.cloud.firestore_v1.types import firestore

        if method != PARTITION_QUERY:
            return None
        return grpc.unary_unary_rpc_method_handler(
            self.partition_query,
            request_deserializer=firestore.PartitionQueryRequest.deserialize,
            response_serializer=firestore.PartitionQueryResponse.serialize,
        )

    def partition_query(self, request, context):
        from google.cloud.firestore_v1.types import document, firestore, query

        names = self._names(request, context)
        pages = self.pages(names, request.partition_count, request.page_size)
        index = int(request.page_token or 0)
        collection = request.structured_query.from_[0].collection_id
        page = tuple(pages[index]) if pages else ()
        with self._lock:
            self.calls.append((collection, request.partition_count, request.page_token, page))
        if not pages:
            return firestore.PartitionQueryResponse()
        return firestore.PartitionQueryResponse(
            partitions=[
                query.Cursor(values=[document.Value(reference_value=name)]) for name in page
            ],
            next_page_token=str(index + 1) if index + 1 < len(pages) else "",
        )

    def pages(self, names: list[str], partition_count: int, page_size: int) -> list[list[str]]:
        """The cursors for ``names`` (in the query's order), as the pages to serve."""
        import random

        n, k = len(names), max(0, partition_count)
        chosen = sorted({round(i * n / (k + 1)) for i in range(1, k + 1)} - {0, n})
        cursors = [names[i] for i in chosen]
        size = page_size if page_size > 0 else self.default_page_size
        pages = [cursors[i : i + size] for i in range(0, len(cursors), size)]
        for i, page in enumerate(pages[:-1]):
            repeated = [c for j, c in enumerate(page) if j % self.duplicate_every == 0]
            pages[i + 1] = repeated[-1:] + pages[i + 1]
        random.Random(self.seed).shuffle(pages)
        return pages

    def _names(self, request, context) -> list[str]:
        """The names of the documents the partitioned query returns, in its order."""
        from google.cloud.firestore_v1.types import firestore, query

        structured = query.StructuredQuery(request.structured_query)
        structured.select = query.StructuredQuery.Projection(
            fields=[query.StructuredQuery.FieldReference(field_path="__name__")]
        )
        run = firestore.RunQueryRequest(parent=request.parent, structured_query=structured)
        if "read_time" in request:
            run.read_time = request.read_time
        stream = self._channel.unary_stream(
            RUN_QUERY,
            request_serializer=firestore.RunQueryRequest.serialize,
            response_deserializer=firestore.RunQueryResponse.deserialize,
        )
        responses = stream(run, metadata=_forwarded(context), timeout=context.time_remaining())
        return [r.document.name for r in responses if r.document.name]


class _Handlers:
    """Route each method to the proxy's own handler, or else to its relay."""

    def __init__(self, proxy: GrpcRelay) -> None:
        self._proxy = proxy

    def service(self, details):
        import grpc

        method = details.method
        own = self._proxy.handler(method)
        if own is not None:
            return own
        return grpc.stream_stream_rpc_method_handler(
            lambda requests, context: self._proxy.relay(method, requests, context)
        )


def _forwarded(context) -> list[tuple[str, str]]:
    return [
        (key, value)
        for key, value in context.invocation_metadata()
        if not key.startswith(":") and not key.startswith(_HOP_BY_HOP)
    ]
