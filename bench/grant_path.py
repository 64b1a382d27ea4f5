"""Grant path: N auto-approved requests submitted through the REST API (one identity each) on a
PostgreSQL target, timed until every grant is active in the target, against the floor of the same N
grants issued raw with psycopg on one connection (the connector's own statements), and the physical
floor: the least DDL a grant needs (a login role with a client-computed SCRAM verifier and its
membership in a prebuilt privilege role, one pipelined transaction). Then the latency
from submit to active of single requests on an idle system, beside its store floor: the three durable
commits such a request needs at the least, timed raw between the samples (a disk whose flushes
sometimes stall shows in both).

On a PostgreSQL store Sluice runs as API servers and `sluice worker` processes (docs/deploy.md), and
so does this bench: the API in this process (FastAPI's test client), one real `sluice worker` process
beside it, woken by NOTIFY. Run: .venv/bin/python bench/grant_path.py [--requests 500] [--singles 40]
Last line: ratio=<API time / floor time>."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from _phases import measured
from _support import (
    BENCH_LIMITS,
    Scratch,
    managed_count,
    median,
    minimal_grant,
    new_key,
    params,
    percentile,
    raw_connection,
    raw_grant,
    resource_path,
    scratch,
    seed_store,
    url,
)
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import func, select

from sluice.api.app import create_app
from sluice.domain.states import Actual
from sluice.runtime.heap import settle_heap
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime, utc_now
from sluice.services.directory.tokens import create_token
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.tables import Grant

PROFILED = 100  # submits measured phase by phase, after the timed runs
SLUICE = str(Path(sys.executable).with_name("sluice"))


def drop_logins(made: Scratch, stem: str, n: int) -> None:
    with psycopg.connect(**params(), autocommit=True) as conn:
        for i in range(n):
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(f"{made.prefix}{stem}{i}")))


def store_commits(made: Scratch) -> float:
    """Milliseconds for the fewest durable commits that take one request from submit to active (the
    submit, the claim before the target call, the outcome), each a one-row write on the store, raw:
    what the store's disk alone adds to a single request's latency."""
    with psycopg.connect(**params(made.store)) as conn:
        started = time.perf_counter()
        for _ in range(3):
            conn.execute("INSERT INTO bench_commit_probe (at) VALUES (now())")
            conn.commit()
        return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--singles", type=int, default=40)
    args = parser.parse_args()
    n, singles = args.requests, args.singles
    with scratch() as made, tempfile.TemporaryDirectory() as home:
        key = new_key()
        engine, factory, box = seed_store(made, n + singles + PROFILED, key)
        path = resource_path(made)

        # The floor: the same grants, raw, on one connection (the connector's statements).
        with raw_connection(made) as conn:
            started = time.perf_counter()
            for i in range(n):
                raw_grant(conn, made, f"{made.prefix}floor{i}", f"gr_floor{i}", secrets.token_urlsafe(24))
            floor = time.perf_counter() - started
        assert managed_count(made) == n
        drop_logins(made, "floor", n)
        # The physical floor: the least DDL any grant needs (the privilege role is prebuilt above).
        with raw_connection(made) as conn:
            started = time.perf_counter()
            for i in range(n):
                minimal_grant(conn, made, f"{made.prefix}min{i}", secrets.token_urlsafe(24))
            physical = time.perf_counter() - started
        drop_logins(made, "min", n)

        runtime = Runtime(
            settings=Settings(home=Path(home), database_url=url(made.store), secret_key=key),
            engine=engine,
            factory=factory,
            hub=ConnectorHub(factory),
            box=box,
        )
        with transaction(factory) as session:
            tokens = [
                create_token(session, email=f"u{i}@bench.example", admin=False, actor="bench", now=utc_now())
                for i in range(n + singles + PROFILED)
            ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(SLUICE_DATABASE_URL=url(made.store), SLUICE_HOME=home, SLUICE_SECRET_KEY=key)
        log = Path(home) / "worker.log"
        output = log.open("wb")
        worker = subprocess.Popen([SLUICE, "worker"], env=env, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "worker started" not in log.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{log.read_text()}")
            time.sleep(0.05)
        body = {"resources": [path], "permission": "read", "duration": "1h", "reason": "bench"}

        def active() -> int:
            with transaction(factory) as session:
                return int(session.scalar(select(func.count()).where(Grant.actual == Actual.ACTIVE)) or 0)

        with TestClient(create_app(runtime, limits=BENCH_LIMITS)) as client:
            settle_heap()  # as `sluice server` does once started (runtime/heap.py)
            started = time.perf_counter()
            for i in range(n):
                response = client.post(
                    "/api/v1/requests", json=body, headers={"Authorization": f"Bearer {tokens[i]}"}
                )
                assert response.status_code == 201, response.text
            submitted = time.perf_counter() - started
            while active() < n:
                time.sleep(0.01)
            api = time.perf_counter() - started
            # Usable: a few grantees log in with the password the API hands them.
            for i in range(0, n, max(1, n // 5)):
                grant_id = client.get(
                    "/api/v1/access", headers={"Authorization": f"Bearer {tokens[i]}"}
                ).json()["items"][0]["id"]
                details = client.get(
                    f"/api/v1/access/{grant_id}", headers={"Authorization": f"Bearer {tokens[i]}"}
                ).json()
                with psycopg.connect(
                    host=details["host"], port=details["port"], dbname=details["database"],
                    user=details["username"], password=details["password"], connect_timeout=5,
                ) as conn:  # fmt: skip
                    conn.execute("SELECT count(*) FROM orders")

            latencies, commits = [], []
            with psycopg.connect(**params(made.store), autocommit=True) as probe:
                probe.execute("CREATE TABLE bench_commit_probe (id serial PRIMARY KEY, at timestamptz)")
            for i in range(n, n + singles):
                time.sleep(0.15)
                commits.append(store_commits(made))
                time.sleep(0.15)  # idle: the worker is asleep, waiting for a due time or a notice
                asked = time.perf_counter()
                response = client.post(
                    "/api/v1/requests", json=body, headers={"Authorization": f"Bearer {tokens[i]}"}
                )
                assert response.status_code == 201, response.text
                grant_id = response.json()["grants"][0]["id"]
                while True:
                    with transaction(factory) as session:
                        if session.scalar(select(Grant.actual).where(Grant.id == grant_id)) == Actual.ACTIVE:
                            break
                    time.sleep(0.002)
                latencies.append((time.perf_counter() - asked) * 1000)
            # Where a submit's time goes (timers and statement counts; see _phases.py).
            extra = tokens[n + singles :]
            with measured(engine) as phases:
                for token in extra:
                    asked = time.perf_counter()
                    response = client.post(
                        "/api/v1/requests", json=body, headers={"Authorization": f"Bearer {token}"}
                    )
                    phases.seconds["HTTP request, end to end"] += time.perf_counter() - asked
                    assert response.status_code == 201, response.text
                    phases.submits += 1
        worker.terminate()
        worker.wait(timeout=60)
        output.close()
        engine.dispose()

    print(
        f"physical floor (CREATE ROLE + membership): {n} grants in {physical:.2f}s"
        f" = {n / physical:.1f} grants/s"
    )
    print(
        f"floor (connector's statements, raw psycopg, one connection): {n} grants in {floor:.2f}s = "
        f"{n / floor:.1f} grants/s ({floor / physical:.2f}x the physical floor)"
    )
    print(
        f"API -> worker -> target:             {n} grants in {api:.2f}s = {n / api:.1f} grants/s"
        f" (submitting took {submitted:.2f}s)"
    )
    print("\n".join(phases.report()))
    p50, p99 = median(latencies), percentile(latencies, 99)
    print(
        f"single request, submit -> active (idle system, {singles} samples): "
        f"p50={p50:.1f}ms p99={p99:.1f}ms max={max(latencies):.1f}ms"
    )
    print(
        f"  its store floor, three durable commits raw (submit, claim, outcome; one before each sample): "
        f"p50={median(commits):.1f}ms p99={percentile(commits, 99):.1f}ms max={max(commits):.1f}ms"
    )
    print(f"API / physical floor: {api / physical:.2f}")
    print(f"ratio={api / floor:.2f}")


if __name__ == "__main__":
    main()
