"""A syslog collector for tests: accepts TCP (optionally TLS) connections and parses octet-counted
RFC 5424 frames (RFC 6587 / RFC 5425), keeping each message's raw bytes."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Collector:
    port: int
    messages: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[bytes]:
        with self.lock:
            return list(self.messages)


def _read_frames(conn: socket.socket, collector: Collector) -> None:
    buffer = b""
    with conn:
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b" " in buffer:
                length_text, _, rest = buffer.partition(b" ")
                assert length_text.isdigit(), f"not an octet-counted frame: {buffer[:40]!r}"
                length = int(length_text)
                if len(rest) < length:
                    break
                with collector.lock:
                    collector.messages.append(rest[:length])
                buffer = rest[length:]


@contextmanager
def running_collector(tls: tuple[Path, Path] | None = None) -> Iterator[Collector]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    collector = Collector(port=server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(120)
            if context is not None:
                try:
                    conn = context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            threading.Thread(target=_read_frames, args=(conn, collector), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        stop.set()
        server.close()
        thread.join(5)
