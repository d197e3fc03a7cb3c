"""A loopback TCP proxy that breaks connections on cue, to fault gRPC reads for real.

Sits between the Firestore client and the emulator. After the server has sent
``cut_every`` more bytes, it resets every open connection (the client sees
``UNAVAILABLE`` mid-stream, exactly as on a dropped network path) and can call
``on_cut`` (e.g. to stop the emulator). Bounded: at most ``max_cuts`` cuts.

``die_on``: the ``die_at``-th time a client sends these bytes (e.g. ``b"/upload/"``,
BigQuery's load-job upload), the server is gone for good: every connection is
reset and new ones are refused, as when the machine behind it dies.
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
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_every = cut_every
        self.max_cuts = max_cuts
        self.on_cut = on_cut
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
                dst.sendall(data)
                if downstream and self._count(len(data)):
                    self._cut()
                    return
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

    def _count(self, n: int) -> bool:
        with self._lock:
            self.bytes_down += n
            if self._next_cut is None or self.cuts >= self.max_cuts:
                return False
            if self.bytes_down < self._next_cut:
                return False
            self.cuts += 1
            self._next_cut = self.bytes_down + self.cut_every
            return True

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
