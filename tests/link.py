"""A network link the tests can cut: a TCP proxy on loopback in front of each server one group of workers uses."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class Link:
    """Forwards a port per server (name -> (host, port)); cut() resets every connection and refuses new ones
    until restore(), as a broken network cable or a partition would."""

    def __init__(self, servers: dict[str, tuple[str, int]]) -> None:
        self.up = True
        self.ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listeners: list[socket.socket] = []
        for name, server in servers.items():
            listener = socket.create_server(("127.0.0.1", 0))
            self._listeners.append(listener)
            self.ports[name] = listener.getsockname()[1]
            threading.Thread(target=self._accept, args=(listener, server), daemon=True, name=f"link-{name}").start()

    def url(self, name: str, url: str) -> str:
        """url (of the server called name) rewritten to go through this link."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.ports[name]}"))

    def cut(self) -> None:
        """Reset every connection through the link and refuse new ones."""
        self.up = False
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _reset(sock)

    def restore(self) -> None:
        """Let connections through again."""
        self.up = True

    def close(self) -> None:
        """Cut, and stop listening."""
        self.cut()
        for listener in self._listeners:
            listener.close()

    def _accept(self, listener: socket.socket, server: tuple[str, int]) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            if not self.up:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(server, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            self._open -= {source, sink}
        _reset(source)
        _reset(sink)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (the peer gets ECONNRESET at once), waking any thread blocked on the socket."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
