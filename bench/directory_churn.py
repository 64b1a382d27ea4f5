"""What provisioning through SCIM costs, against writing the same rows straight to the store.

An identity provider pushes 10,000 people and 500 groups (20 members each) through /scim/v2 (the app
in-process, through an ASGI client, one SCIM token), then 1,000 membership PATCHes (a member
removed with `members[value eq "…"]`, then added back). The floor, in the same run on a fresh store
of the same kind: the same identities, groups and memberships written directly with the ORM, one
transaction per SCIM call, as the SCIM path commits. The SCIM path does more than the floor (the
record of what was sent, ownership checks, audit events, queued re-evaluations); the ratio says how
much that costs. Both stores are on the local PostgreSQL (`--sqlite-store` for the embedded one).

Then deactivation: SCIM users each holding an active PostgreSQL login through an approved request,
served by the API in this process and one real `sluice worker` process beside it (woken by NOTIFY,
as deployed); one at a time on an idle system, the time from sending `active: false` to the login
gone from pg_roles, against the raw revoke floor (the connector's revoke statements through psycopg
on one connection, in the same run). Medians of each.

Prints each phase and, last, `ratio=N.NN`: the worse of (whole SCIM run / whole floor) and
(deactivation median / raw revoke median).

    .venv/bin/python bench/directory_churn.py [--people 10000] [--groups 500] [--patches 1000]
                                              [--deactivations 20] [--sqlite-store]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psycopg
from _support import (
    ADMIN_URL,
    BENCH_LIMITS,
    median,
    new_key,
    params,
    raw_connection,
    raw_grant,
    raw_revoke,
    resource_path,
    scratch,
    seed_store,
    url,
)
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import delete, select

from sluice.api.app import create_app
from sluice.domain.states import Actual
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime, utc_now
from sluice.services.directory.scim_tokens import create_scim_token
from sluice.services.directory.tokens import create_token
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.migrate import upgrade
from sluice.store.tables import Grant, Group, GroupMember, Identity
from sluice.store.types import new_id

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SLUICE = str(Path(sys.executable).with_name("sluice"))


def _runtime(store_url: str, home: Path) -> Runtime:
    engine = make_engine(store_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    return Runtime(
        settings=Settings(home=home, database_url=store_url, secret_key=None),
        engine=engine,
        factory=factory,
        hub=ConnectorHub(factory),
        box=SecretBox(Fernet.generate_key()),
    )


async def _atimed(what: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await what()
    return time.perf_counter() - started


def _timed(what: Callable[[], None]) -> float:
    started = time.perf_counter()
    what()
    return time.perf_counter() - started


async def _through_scim(
    runtime: Runtime, people: int, groups: int, patches: int
) -> tuple[float, float, float]:
    with transaction(runtime.factory) as session:
        token = create_scim_token(session, source="bench", actor="bench", now=utc_now())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime, limits=BENCH_LIMITS)),
        base_url="http://bench/scim/v2/",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    ids: list[str] = []
    group_ids: list[str] = []

    async def users() -> None:
        for n in range(people):
            body = {"schemas": [USER], "userName": f"p{n}@example.com", "name": {"givenName": f"P{n}"},
                    "active": True}  # fmt: skip
            answer = await client.post("Users", json=body)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])

    async def groups_() -> None:
        per = max(1, people // groups) if groups else 0
        for g in range(groups):
            members = [{"value": i} for i in ids[g * per % people : g * per % people + min(per, 20)]]
            answer = await client.post(
                "Groups", json={"schemas": [GROUP], "displayName": f"g{g}", "members": members}
            )
            assert answer.status_code == 201, answer.text
            group_ids.append(answer.json()["id"])

    async def churn() -> None:
        per = max(1, people // groups)
        for n in range(patches):
            g = n % groups
            member = ids[g * per % people]
            op = (
                {"op": "remove", "path": f'members[value eq "{member}"]'}
                if (n // groups) % 2 == 0
                else {"op": "add", "path": "members", "value": [{"value": member}]}
            )
            answer = await client.patch(
                f"Groups/{group_ids[g]}", json={"schemas": [PATCH], "Operations": [op]}
            )
            assert answer.status_code == 200, answer.text

    async with client:
        return await _atimed(users), await _atimed(groups_), await _atimed(churn)


def through_scim(runtime: Runtime, people: int, groups: int, patches: int) -> tuple[float, float, float]:
    return asyncio.run(_through_scim(runtime, people, groups, patches))


def straight_to_store(runtime: Runtime, people: int, groups: int, patches: int) -> tuple[float, float, float]:
    ids: list[str] = []
    group_ids: list[str] = []
    now = utc_now()

    def users() -> None:
        for n in range(people):
            with transaction(runtime.factory) as session:
                identity = Identity(id=new_id("id"), email=f"p{n}@example.com", name=f"P{n}", active=True,
                                    attributes={}, source="bench", created_at=now,
                                    updated_at=now)  # fmt: skip
                session.add(identity)
                ids.append(identity.id)

    def groups_() -> None:
        per = max(1, people // groups) if groups else 0
        for g in range(groups):
            with transaction(runtime.factory) as session:
                group = Group(id=new_id("grp"), name=f"g{g}", description="", source="bench")
                session.add(group)
                session.flush()
                start = g * per % people
                session.add_all(
                    GroupMember(group_id=group.id, identity_id=i, source="bench", expires_at=None)
                    for i in ids[start : start + min(per, 20)]
                )
                group_ids.append(group.id)

    def churn() -> None:
        per = max(1, people // groups)
        for n in range(patches):
            g = n % groups
            member = ids[g * per % people]
            with transaction(runtime.factory) as session:
                if (n // groups) % 2 == 0:
                    session.execute(
                        delete(GroupMember).where(
                            GroupMember.group_id == group_ids[g], GroupMember.identity_id == member
                        )
                    )
                else:
                    session.add(GroupMember(group_id=group_ids[g], identity_id=member, source="bench"))

    return _timed(users), _timed(groups_), _timed(churn)


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    worker = subprocess.Popen([SLUICE, "worker"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "worker started" not in log.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return worker


def deactivation(samples: int) -> tuple[list[float], list[float]]:
    """Seconds from a deactivation PATCH to the login gone, and the raw revokes of the same logins."""
    with scratch() as made, tempfile.TemporaryDirectory() as home:
        key = new_key()
        engine, factory, box = seed_store(made, 0, key)
        floor = []
        with raw_connection(made) as conn:
            for i in range(samples):
                login = f"{made.prefix}floor{i}"
                raw_grant(conn, made, login, f"gr_floor{i}", secrets.token_urlsafe(24))
                started = time.perf_counter()
                raw_revoke(conn, made.target, login)
                floor.append(time.perf_counter() - started)
        settings = Settings(home=Path(home), database_url=url(made.store), secret_key=key)
        runtime = Runtime(
            settings=settings, engine=engine, factory=factory, hub=ConnectorHub(factory), box=box
        )
        with transaction(factory) as session:
            token = create_scim_token(session, source="bench", actor="bench", now=utc_now())
        scim = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(SLUICE_DATABASE_URL=url(made.store), SLUICE_HOME=home, SLUICE_SECRET_KEY=key)
        worker = _start_worker(env, Path(home) / "worker.log")
        body = {"resources": [resource_path(made)], "permission": "read", "duration": "1h", "reason": "bench"}
        latencies = []
        try:
            with (
                TestClient(create_app(runtime, limits=BENCH_LIMITS)) as client,
                psycopg.connect(**params(), autocommit=True) as pg,
            ):
                for i in range(samples):
                    made_user = client.post(
                        "/scim/v2/Users", headers=scim,
                        json={"schemas": [USER], "userName": f"d{i}@example.com", "active": True},
                    )  # fmt: skip
                    assert made_user.status_code == 201, made_user.text
                    user_id = made_user.json()["id"]
                    with transaction(factory) as session:
                        session.add(GroupMember(group_id="grp_eng", identity_id=user_id, source="config"))
                        api = create_token(session, email=f"d{i}@example.com", admin=False, actor="bench",
                                           now=utc_now())  # fmt: skip
                    asked = client.post(
                        "/api/v1/requests", json=body, headers={"Authorization": f"Bearer {api}"}
                    )
                    assert asked.status_code == 201, asked.text
                    grant_id = asked.json()["grants"][0]["id"]
                    principal = None
                    while principal is None:
                        with transaction(factory) as session:
                            row = session.execute(
                                select(Grant.actual, Grant.principal).where(Grant.id == grant_id)
                            ).one()
                        principal = row.principal if row.actual == Actual.ACTIVE else None
                        time.sleep(0.005)
                    time.sleep(0.3)  # idle: the worker is asleep, waiting for a due time or a notice
                    started = time.perf_counter()
                    patched = client.patch(
                        f"/scim/v2/Users/{user_id}", headers=scim,
                        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active",
                                                                  "value": False}]},
                    )  # fmt: skip
                    assert patched.status_code == 200, patched.text
                    while pg.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [principal]).fetchone():
                        time.sleep(0.001)
                    latencies.append(time.perf_counter() - started)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            engine.dispose()
        return latencies, floor


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--patches", type=int, default=1_000)
    parser.add_argument("--deactivations", type=int, default=20)
    parser.add_argument("--sqlite-store", action="store_true", help="provision on SQLite, not PostgreSQL")
    args = parser.parse_args()
    made: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:

        def store(name: str) -> str:
            if args.sqlite_store:
                return f"sqlite:///{Path(tmp) / name}.db"
            database = f"sluice_bench_{name}_{secrets.token_hex(3)}"
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            made.append(database)
            return url(database)

        try:
            scim_runtime = _runtime(store("scim"), Path(tmp))
            floor_runtime = _runtime(store("floor"), Path(tmp))
            floor = straight_to_store(floor_runtime, args.people, args.groups, args.patches)
            scim = through_scim(scim_runtime, args.people, args.groups, args.patches)
            for label, s, f in zip(("people", "groups", "membership patches"), scim, floor, strict=True):
                print(f"{label}: SCIM {s:.2f}s, straight to the store {f:.2f}s (ratio {s / f:.2f})")
            provisioning = sum(scim) / sum(floor)
            latencies, revokes = deactivation(args.deactivations)
            deactivated = median(latencies) / median(revokes)
            print(
                f"deactivation PATCH -> login gone: median {median(latencies) * 1000:.1f}ms, "
                f"raw revoke {median(revokes) * 1000:.1f}ms (ratio {deactivated:.2f})"
            )
            print(f"ratio={max(provisioning, deactivated):.2f}")
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                for database in made:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
                    )


if __name__ == "__main__":
    main()
