"""Grant path on real servers: N auto-approved requests (one identity each) sent over real HTTP by 8
concurrent clients to `sluice server` processes, with 2 `sluice worker` processes making the grants,
all on a PostgreSQL store, timed until every grant is active in the target; against the floor of the
same N grants issued raw with psycopg (the connector's own statements) over 2 target connections at
once, in the same run.

Run: .venv/bin/python bench/grant_path_servers.py [--requests 1000] [--clients 8] [--servers 2]
Last line: ratio=<servers time / floor time>."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _support import (
    Scratch,
    managed_count,
    new_key,
    params,
    raw_connection,
    raw_grant,
    resource_path,
    scratch,
    seed_store,
    url,
)
from psycopg import sql
from sqlalchemy import func, select

from sluice.domain.states import Actual
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from sluice.store.tables import Grant

SLUICE = str(Path(sys.executable).with_name("sluice"))
TARGET_CONNECTIONS = 2
WORKERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def floor_over_connections(made: Scratch, n: int, connections: int) -> float:
    """The same grants, raw, split over `connections` connections running at once."""
    with raw_connection(made) as conn:  # the privilege role, made once, outside the timing
        raw_grant(conn, made, f"{made.prefix}warm", "gr_warm", secrets.token_urlsafe(24))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(f"{made.prefix}warm")))

    def share(k: int) -> None:
        with raw_connection(made) as conn:
            for i in range(k, n, connections):
                raw_grant(conn, made, f"{made.prefix}floor{i}", f"gr_floor{i}", secrets.token_urlsafe(24))

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(share, range(connections)))
    elapsed = time.perf_counter() - started
    assert managed_count(made) == n
    with psycopg.connect(**params(), autocommit=True) as conn:
        for i in range(n):
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(f"{made.prefix}floor{i}")))
    return elapsed


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([SLUICE, *args], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_for(what: str, ready: Any, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 90
    while not ready():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start:\n" + "\n".join(log.read_text() for log in logs))
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--servers", type=int, default=2)
    args = parser.parse_args()
    n = args.requests
    with scratch() as made, tempfile.TemporaryDirectory() as home:
        key = new_key()
        engine, factory, _box = seed_store(made, n, key)
        floor = floor_over_connections(made, n, TARGET_CONNECTIONS)
        with transaction(factory) as session:
            now = datetime.now(UTC)
            tokens = [
                create_token(session, email=f"u{i}@bench.example", admin=False, actor="bench", now=now)
                for i in range(n)
            ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        # One benchmark host sends far more calls a minute than the per-address limit allows a real
        # client; the limits are measured by tests/api/test_edge.py, not here.
        env.update(
            SLUICE_DATABASE_URL=url(made.store),
            SLUICE_HOME=home,
            SLUICE_SECRET_KEY=key,
            SLUICE_RATE_PER_TOKEN="1000000000",
            SLUICE_RATE_PER_ADDRESS="1000000000",
        )
        ports = [free_port() for _ in range(args.servers)]
        logs = [Path(home) / f"server-{p}.log" for p in ports] + [
            Path(home) / f"worker-{i}.log" for i in range(WORKERS)
        ]
        procs = [start(["server", "--port", str(p)], env, log) for p, log in zip(ports, logs, strict=False)]
        procs += [start(["worker"], env, log) for log in logs[args.servers :]]
        try:

            def serving() -> bool:
                try:
                    return all(
                        httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=1).status_code == 200
                        for p in ports
                    )
                except httpx.HTTPError:
                    return False

            wait_for("the servers", serving, procs, logs)
            wait_for(
                "the workers",
                lambda: all("worker started" in log.read_text() for log in logs[args.servers :]),
                procs,
                logs,
            )
            body = {
                "resources": [resource_path(made)],
                "permission": "read",
                "duration": "1h",
                "reason": "bench",
            }

            def client(k: int) -> None:
                with httpx.Client(timeout=60) as http:
                    for i in range(k, n, args.clients):
                        port = ports[i % len(ports)]
                        response = http.post(
                            f"http://127.0.0.1:{port}/api/v1/requests",
                            json=body,
                            headers={"Authorization": f"Bearer {tokens[i]}"},
                        )
                        assert response.status_code == 201, response.text

            def active() -> int:
                with transaction(factory) as session:
                    return int(session.scalar(select(func.count()).where(Grant.actual == Actual.ACTIVE)) or 0)

            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(client, range(args.clients)))
            submitted = time.perf_counter() - started
            while active() < n:
                if any(p.poll() is not None for p in procs):
                    raise SystemExit(
                        "a process ended:\n" + "\n".join(log.read_text()[-2000:] for log in logs)
                    )
                time.sleep(0.02)
            api = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
            engine.dispose()
    print(
        f"floor (connector's statements, raw psycopg, {TARGET_CONNECTIONS} connections): {n} grants in "
        f"{floor:.2f}s = {n / floor:.1f} grants/s"
    )
    print(
        f"{args.servers} `sluice server` + {WORKERS} `sluice worker`, {args.clients} HTTP clients: "
        f"{n} grants in {api:.2f}s = {n / api:.1f} grants/s (submitting took {submitted:.2f}s)"
    )
    print(f"ratio={api / floor:.2f}")


if __name__ == "__main__":
    main()
