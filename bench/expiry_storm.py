"""Expiry storm: N active grants on a PostgreSQL target whose end time is the same second. Timed from
that second until every role is gone from the target (and the p99 of end time -> revoked), with 1
and with 2 `sluice worker` processes, against the floor of the same N revokes issued raw with psycopg
on one connection (the connector's own statements), all in the same run.

Run: .venv/bin/python bench/expiry_storm.py [--grants 5000]
Last line: ratio=<best worker time / floor time>."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from _support import (
    Scratch,
    grant_comment,
    managed_count,
    new_key,
    params,
    percentile,
    raw_connection,
    raw_grant,
    raw_revoke,
    resource_path,
    scratch,
    seed_store,
    url,
)
from psycopg import sql
from sqlalchemy import select

from sluice.connectors import postgres_sql as q
from sluice.domain.states import Actual, Desired
from sluice.store.db import transaction
from sluice.store.tables import Grant

SLUICE = str(Path(sys.executable).with_name("sluice"))
LEAD_SECONDS = 10.0  # rows are written this long before their common end time; workers start meanwhile


def make_roles(made: Scratch, names: list[str]) -> None:
    """The login roles a grant leaves in the target (marker comment, member of the privilege role),
    made in bulk: the set-up is not what is measured."""
    privilege = q.privilege_role_name(made.prefix, resource_path(made), "read")
    with psycopg.connect(**params(made.target), autocommit=True) as conn:
        if managed_count(made) == 0 and not conn.execute(q.ROLE, [privilege]).fetchone():
            raw_grant(conn, made, names[0], "gr_" + names[0][len(made.prefix) :], "x")
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(names[0])))
        for start in range(0, len(names), 200):
            with conn.transaction():
                for name in names[start : start + 200]:
                    ident = sql.Identifier(name)
                    grant_id = "gr_" + name[len(made.prefix) :]
                    conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD NULL").format(ident))
                    conn.execute(
                        sql.SQL("COMMENT ON ROLE {} IS {}").format(
                            ident, sql.Literal(grant_comment(made, grant_id))
                        )
                    )
                    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(privilege), ident))


def storm(made: Scratch, factory, key: str, home: str, n: int, workers: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    names = [f"{made.prefix}{secrets.token_hex(6)}" for _ in range(n)]
    make_roles(made, names)
    ends_at = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    with transaction(factory) as session:
        now = datetime.now(UTC)
        for name in names:
            session.add(
                Grant(
                    id="gr_" + name[len(made.prefix) :],
                    identity_id="id_0",
                    integration_id="int_bench",
                    resource_path=resource_path(made),
                    resource_type="table",
                    permission="read",
                    desired=Desired.ACTIVE,
                    actual=Actual.ACTIVE,
                    duration_seconds=60,
                    starts_at=now,
                    ends_at=ends_at,
                    principal=name,
                    created_at=now,
                    updated_at=now,
                )
            )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(SLUICE_DATABASE_URL=url(made.store), SLUICE_HOME=home, SLUICE_SECRET_KEY=key)
    logs = [Path(home) / f"worker-{workers}-{i}.log" for i in range(workers)]
    procs = [
        subprocess.Popen([SLUICE, "worker"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        while managed_count(made) > 0:
            time.sleep(0.05)
        gone = datetime.now(UTC)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    if any("worker started" not in log.read_text() for log in logs):
        raise SystemExit("a worker did not start before the end time; raise LEAD_SECONDS")
    mine = Grant.principal.in_(names)
    with transaction(factory) as session:
        rows = session.execute(select(Grant.ends_at, Grant.revoked_at).where(mine)).all()
        session.execute(Grant.__table__.delete().where(mine))
    lags = [(revoked - end).total_seconds() for end, revoked in rows if revoked is not None]
    assert len(lags) == n
    return (gone - ends_at).total_seconds(), percentile(lags, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants", type=int, default=5000)
    n = parser.parse_args().grants
    with scratch() as made, tempfile.TemporaryDirectory() as home:
        key = new_key()
        engine, factory, _ = seed_store(made, 1, key)

        names = [f"{made.prefix}{secrets.token_hex(6)}" for _ in range(n)]
        make_roles(made, names)
        with raw_connection(made) as conn:
            started = time.perf_counter()
            for name in names:
                raw_revoke(conn, made.target, name)
            floor = time.perf_counter() - started
        assert managed_count(made) == 0

        results = {w: storm(made, factory, key, home, n, w) for w in (1, 2)}
        engine.dispose()

    print(f"floor (raw psycopg, one connection): {n} revokes in {floor:.2f}s = {n / floor:.1f}/s")
    for w, (total, p99) in results.items():
        print(
            f"{w} worker{'s' if w > 1 else ''}: all {n} gone {total:.2f}s after their end time"
            f" = {n / total:.1f}/s; p99 lag (end -> revoked) {p99:.2f}s; ratio to floor {total / floor:.2f}"
        )
    best = min(total for total, _ in results.values())
    print(f"ratio={best / floor:.2f}")


if __name__ == "__main__":
    main()
