"""A small pool of admin connections for one PostgreSQL integration, so that a worker granting and
revoking many roles does not open two or three connections per operation. Connections are kept per
database, handed out one caller at a time, pinged when they have been idle a while (a target that was
restarted leaves dead ones behind), and closed rather than reused after any error."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

Connect = Callable[[str | None], psycopg.Connection[Any]]


class ConnectionPool:
    def __init__(self, connect: Connect, *, max_idle: int = 4, ping_after_seconds: float = 1.0) -> None:
        self._connect = connect
        self._max_idle = max_idle
        self._ping_after = ping_after_seconds
        self._idle: dict[str | None, deque[tuple[float, psycopg.Connection[Any]]]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self, dbname: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        conn = self._take(dbname) or self._connect(dbname)
        reusable = False
        try:
            yield conn
            reusable = (
                not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE
            )
        finally:
            if not (reusable and self._give_back(dbname, conn)):
                with suppress(psycopg.Error):
                    conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for queue in idle.values():
            for _, conn in queue:
                with suppress(psycopg.Error):
                    conn.close()

    def _take(self, dbname: str | None) -> psycopg.Connection[Any] | None:
        while True:
            with self._lock:
                queue = self._idle.get(dbname)
                if not queue:
                    return None
                since, conn = queue.pop()
            if time.monotonic() - since < self._ping_after:
                return conn
            try:
                conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                with suppress(psycopg.Error):
                    conn.close()

    def _give_back(self, dbname: str | None, conn: psycopg.Connection[Any]) -> bool:
        with self._lock:
            queue = self._idle.setdefault(dbname, deque())
            if len(queue) >= self._max_idle:
                return False
            queue.append((time.monotonic(), conn))
            return True
