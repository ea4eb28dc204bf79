"""A TCP proxy a test can cut: the network between the app and a service, under the test's hand.

``TcpProxy(upstream_host, upstream_port).start()`` listens on a free loopback port and relays
every connection to the upstream, byte for byte. ``cut()`` does to the app what a stopped
server does: the connections open through it are closed and new ones are refused (nothing
listens on the port) until ``restore()`` listens on the same port again. Threads, no
dependency; for tests only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

_CHUNK = 65536


class TcpProxy:
    def __init__(
        self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self.connections = 0  # accepted since start, across cuts

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> Self:
        """Listen (on the same port after a cut) and relay."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(
            target=self._accept, args=(listener,), name=f"tcp-proxy-{self.port}", daemon=True
        ).start()
        return self

    restore = start

    def cut(self) -> None:
        """Close every relayed connection and stop listening: connections are refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            _close(listener)
        for sock in sockets:
            _close(sock)

    stop = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut: the listener is closed
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._open.update((client, upstream))
                self.connections += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                target.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open.discard(source)
            self._open.discard(target)
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
