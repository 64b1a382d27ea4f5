"""What provisioning through SCIM costs, against writing the same rows straight to the store.

An identity provider pushes 10,000 people and 500 groups (20 members each) through /scim/v2 (the app
in-process, through an ASGI client, one SCIM token), then 1,000 membership PATCHes (a member
removed with `members[value eq "…"]`, then added back). The floor, in the same run on a fresh store
of the same kind: the same identities, groups and memberships written directly with the ORM, one
transaction per SCIM call, as the SCIM path commits. The SCIM path does more than the floor (the
record of what was sent, ownership checks, audit events, queued re-evaluations); the ratio says how
much that costs. Prints each phase and, last, `ratio=N.NN` (whole SCIM run / whole floor).

    .venv/bin/python bench/directory_churn.py [--people 10000] [--groups 500] [--patches 1000]
                                              [--pg-store]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psycopg
from _support import ADMIN_URL, url
from cryptography.fernet import Fernet
from psycopg import sql
from sqlalchemy import delete

from sluice.api.app import create_app
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime, utc_now
from sluice.services.directory.scim_tokens import create_scim_token
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.migrate import upgrade
from sluice.store.tables import Group, GroupMember, Identity
from sluice.store.types import new_id

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


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
        transport=httpx.ASGITransport(app=create_app(runtime)),
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--patches", type=int, default=1_000)
    parser.add_argument("--pg-store", action="store_true", help="stores on the local PostgreSQL, not SQLite")
    args = parser.parse_args()
    made: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:

        def store(name: str) -> str:
            if not args.pg_store:
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
            print(f"ratio={sum(scim) / sum(floor):.2f}")
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                for database in made:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
                    )


if __name__ == "__main__":
    main()
