"""How long access takes to follow a directory change, against the target work itself.

Builds a store (SQLite file) with 2,000 identities in 100 groups, 300 self-serve flows and 20,000
active grants on tables of a real PostgreSQL database (integration `pg`, a throwaway database and role
prefix). The grants of the identities a change will touch have real login roles in the server, made
the way the connector makes them (marked with their grant id). Then, with the worker warmed up:

1. a group membership change touching 200 identities (the `big` group emptied through the directory
   service), and
2. the deactivation of one identity,

each timed from the committed change until the worker has settled (every affected grant revoked in the
target, the others re-confirmed). The floor is the target work itself: the same number of revokes
issued raw through one psycopg connection with the connector's own statements (a NOLOGIN, ending
sessions, cleaning what the role owns, then the drop), on roles made the same way, in the same run.
For scale, the same revokes through the connector object alone and as bare `DROP ROLE`s (which a real
revoke cannot be: sessions would live on) are timed too. Prints the figures and, last, `ratio=N.NN`
(settle / raw floor for the group change).

    .venv/bin/python bench/reevaluate.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                         [--pg-store]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from _support import raw_revoke
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import AccessUnit, ConnectorContext
from sluice.connectors.postgres import PostgresConfig, PostgresConnector
from sluice.connectors.postgres_sql import grant_comment
from sluice.domain.flows import FlowSpec
from sluice.domain.states import Actual, Desired
from sluice.runtime.heap import settle_heap
from sluice.services.directory.changes import set_group, set_identity
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.queries import installation_id
from sluice.store.tables import (
    AccessFlow,
    AccessRequest,
    Base,
    Grant,
    Group,
    GroupMember,
    Identity,
    Integration,
    Resource,
)
from sluice.worker.loop import Worker

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
IDENTITIES, GROUPS, FLOWS, GRANTS, TABLES = 2000, 100, 300, 20_000, 60
BIG = 200  # members of the group the change empties
BIG_FLOWS, BIG_GRANTS = 3, 5  # flows naming `big`, grants each of its members holds through them


class Clock:
    def __call__(self) -> datetime:
        return NOW


def admin(params: dict[str, Any], dbname: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(**{**params, **({"dbname": dbname} if dbname else {})}, autocommit=True)


def build(
    factory: sessionmaker[Session], params: dict[str, Any], database: str, prefix: str, rng: random.Random
) -> None:
    stamp = {"created_at": NOW, "updated_at": NOW}
    with transaction(factory) as session:
        session.add(
            Integration(
                id="int_pg",
                name="pg",
                kind="postgresql",
                **stamp,
                config={
                    "host": params.get("host", "127.0.0.1"),
                    "port": int(params.get("port", 5432)),
                    "user": params.get("user", "postgres"),
                    "dbname": params.get("dbname", "postgres"),
                    "role_prefix": prefix,
                    "databases": [database],
                },
            )
        )
        session.flush()
        tables = [f"t{n}" for n in range(TABLES)]
        session.execute(
            insert(Resource),
            [
                {
                    "id": f"r_{t}",
                    "integration_id": "int_pg",
                    "type": "table",
                    "name": t,
                    "path": f"pg/{database}/public/{t}",
                    "parent_id": None,
                    "discovered_at": NOW,
                    "updated_at": NOW,
                }
                for t in tables
            ],
        )
        groups = [f"team{n}" for n in range(GROUPS)] + ["big"]
        session.execute(
            insert(Group),
            [{"id": f"g_{g}", "name": g, "description": "", "source": "config"} for g in groups],
        )
        session.execute(
            insert(Identity),
            [
                {
                    "id": f"id_{n}",
                    "email": f"u{n}@example.com",
                    "name": f"U{n}",
                    "active": True,
                    "attributes": {},
                    "source": "config",
                    **stamp,
                }
                for n in range(IDENTITIES)
            ],
        )
        member_of: dict[int, list[str]] = {
            n: [f"team{g}" for g in rng.sample(range(GROUPS), rng.randint(1, 3))] for n in range(IDENTITIES)
        }
        for n in range(BIG):
            member_of[n].append("big")
        session.execute(
            insert(GroupMember),
            [
                {"group_id": f"g_{g}", "identity_id": f"id_{n}", "source": "config"}
                for n, gs in member_of.items()
                for g in gs
            ],
        )
        # Flows: three per team group over a few ordinary tables; the `big` flows over tables of their own.
        big_tables, team_tables = tables[:10], tables[10:]
        flow_tables: dict[str, list[str]] = {}
        specs = []
        for k in range(FLOWS - BIG_FLOWS):
            name, chosen = f"flow{k:03d}", rng.sample(team_tables, 8)
            flow_tables[name] = chosen
            specs.append((name, f"team{k % GROUPS}", chosen))
        for k in range(BIG_FLOWS):
            name, chosen = f"big{k}", big_tables[k * 3 : k * 3 + 4]
            flow_tables[name] = chosen
            specs.append((name, "big", chosen))
        flows_of_group: dict[str, list[str]] = {}
        rows = []
        for name, group, chosen in specs:
            flows_of_group.setdefault(group, []).append(name)
            spec = FlowSpec.model_validate(
                {
                    "name": name,
                    "requesters": [{"group": group}],
                    "max_duration": "8h",
                    "targets": [
                        {
                            "integration": "pg",
                            "type": "table",
                            "select": {"names": chosen},
                            "permissions": ["read"],
                        }
                    ],
                }
            )
            rows.append(
                {
                    "id": f"f_{name}",
                    "name": name,
                    "spec": spec.model_dump(mode="json"),
                    "source": "config",
                    **stamp,
                }
            )
        session.execute(insert(AccessFlow), rows)
        # Grants: the `big` members hold BIG_GRANTS through the big flows; everyone else's grants
        # come from their team flows, until there are GRANTS in all.
        requests, grants = [], []
        seen: set[tuple[int, str]] = set()

        def add(n: int, flow: str, table: str) -> None:
            if (n, table) in seen:
                return
            seen.add((n, table))
            rid = f"req_{len(requests)}"
            requests.append(
                {
                    "id": rid,
                    "requester_id": f"id_{n}",
                    "flow_name": flow,
                    "reason": "bench",
                    "duration_seconds": 28800,
                    "status": "approved",
                    "created_at": NOW,
                    "decided_at": NOW,
                    "decided_by": "sluice",
                    "escalation_tier": 0,
                }
            )
            gid = f"gr_{secrets.token_hex(8)}"
            grants.append(
                {
                    "id": gid,
                    "request_id": rid,
                    "identity_id": f"id_{n}",
                    "integration_id": "int_pg",
                    "resource_id": f"r_{table}",
                    "resource_path": f"pg/{database}/public/{table}",
                    "resource_type": "table",
                    "permission": "read",
                    "desired": Desired.ACTIVE,
                    "actual": Actual.ACTIVE,
                    "duration_seconds": 28800,
                    "starts_at": NOW,
                    "ends_at": datetime(2026, 1, 5, 17, 0, tzinfo=UTC),
                    "principal": prefix + gid[3:],
                    "attempts": 0,
                    "extensions": 0,
                    **stamp,
                }
            )

        for n in range(BIG):
            for table in rng.sample(big_tables[: BIG_FLOWS * 3 + 1], BIG_GRANTS):
                flow = next(f for f in flows_of_group["big"] if table in flow_tables[f])
                add(n, flow, table)
        while len(grants) < GRANTS:
            n = rng.randrange(IDENTITIES)
            group = rng.choice([g for g in member_of[n] if g != "big"])
            flow = rng.choice(flows_of_group[group])
            add(n, flow, rng.choice(flow_tables[flow]))
        for start in range(0, len(requests), 5000):
            session.execute(insert(AccessRequest), requests[start : start + 5000])
            session.execute(insert(Grant), grants[start : start + 5000])


def make_roles(
    params: dict[str, Any], database: str, prefix: str, roles: list[tuple[str, str]], installation: str
) -> None:
    """Login roles as the connector leaves them: marked with their grant id, members of a privilege
    role that holds the actual privilege (so dropping one never touches a shared ACL)."""
    privilege = sql.Identifier(f"{prefix}p_bench")
    with admin(params) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [f"{prefix}p_bench"]).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(privilege))
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), privilege)
            )
        for principal, grant_id in roles:
            ident = sql.Identifier(principal)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(ident, privilege))
            conn.execute(
                sql.SQL("COMMENT ON ROLE {} IS {}").format(
                    ident, sql.Literal(grant_comment(grant_id, "pg", installation))
                )
            )


def live_roles(params: dict[str, Any], prefix: str) -> int:
    with admin(params) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s)", [prefix]
        ).fetchone()
        return int(row[0]) if row else 0


def settle(worker: Worker, factory: sessionmaker[Session], change: Any) -> tuple[float, float, int]:
    """(seconds to settle from the committed change, of which the policy pass, grants revoked so far)."""
    with transaction(factory) as session:
        change(session)
    start = time.perf_counter()
    worker.people.run()  # the policy side: re-evaluation marks what must go
    policy = time.perf_counter() - start
    worker.run_once()  # the target side (and a second, idle policy pass)
    elapsed = time.perf_counter() - start
    with transaction(factory) as session:
        revoked = (
            session.scalar(select(func.count()).select_from(Grant).where(Grant.desired == Desired.REVOKED))
            or 0
        )
        left = session.scalar(
            select(func.count())
            .select_from(Grant)
            .where(Grant.desired == Desired.REVOKED, Grant.actual != Actual.REVOKED)
        )
    if left:
        raise SystemExit(f"{left} revoked grants not yet revoked in the target after one pass")
    return elapsed, policy, revoked


def raw_floor(params: dict[str, Any], database: str, prefix: str, count: int) -> float:
    """The target work itself: the connector's own revoke statements (NOLOGIN, ending sessions,
    cleaning what the role owns, the drop), issued raw on one connection, one role after another."""
    roles = [(f"{prefix}floor{secrets.token_hex(4)}", f"gr_floor{n}") for n in range(count)]
    make_roles(params, database, prefix, roles, "bench-install")
    with admin(params, database) as conn:
        start = time.perf_counter()
        for principal, _ in roles:
            raw_revoke(conn, database, principal)
        return time.perf_counter() - start


def bare_drop_floor(params: dict[str, Any], database: str, prefix: str, count: int) -> float:
    """A lower bound no real revoke reaches (sessions are not ended, owned objects not cleaned): the
    bare REVOKE CONNECT and DROP ROLE, shown for scale only."""
    roles = [(f"{prefix}drop{secrets.token_hex(4)}", f"gr_drop{n}") for n in range(count)]
    make_roles(params, database, prefix, roles, "bench-install")
    with admin(params) as conn:
        start = time.perf_counter()
        for principal, _ in roles:
            ident = sql.Identifier(principal)
            conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(database), ident)
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(ident))
        return time.perf_counter() - start


def connector_floor(params: dict[str, Any], database: str, prefix: str, count: int) -> float:
    roles = [(f"{prefix}conn{n:04d}", f"gr_conn{n:04d}") for n in range(count)]
    make_roles(params, database, prefix, roles, "bench-install")
    config = PostgresConfig(
        host=params.get("host", "127.0.0.1"),
        port=int(params.get("port", 5432)),
        user=params.get("user", "postgres"),
        dbname=params.get("dbname", "postgres"),
        role_prefix=prefix,
        databases=[database],
    )
    connector = PostgresConnector("pg", config, ConnectorContext(installation="bench-install"))
    start = time.perf_counter()
    for principal, grant_id in roles:
        connector.revoke(
            AccessUnit(
                grant_id=grant_id,
                principal=principal,
                grantee_email="x@example.com",
                resource_type="table",
                resource_path=f"pg/{database}/public/t0",
                permission="read",
            )
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SLUICE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--pg-store", action="store_true", help="keep Sluice's own store on PostgreSQL too")
    args = parser.parse_args()
    params = {
        k: v
        for k, v in conninfo_to_dict(args.postgres).items()
        if k in ("host", "port", "user", "dbname", "password")
    }
    database, prefix = f"sluice_bench_{secrets.token_hex(4)}", f"rb{secrets.token_hex(3)}_"
    rng = random.Random(7)
    with admin(params) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    home = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    try:
        with admin(params, database) as conn:
            for n in range(TABLES):
                conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(f"t{n}")))
        if args.pg_store:
            with admin(params) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database + "_store")))
            store_url = args.postgres.rsplit("/", 1)[0] + "/" + database + "_store"
        else:
            store_url = f"sqlite:///{home / 'store.db'}"
        engine = make_engine(store_url)
        Base.metadata.create_all(engine)
        factory = make_session_factory(engine)
        build(factory, params, database, prefix, rng)
        victim = BIG + 1  # not in `big`; deactivated in the second step
        with transaction(factory) as session:
            touched = session.execute(
                select(Grant.principal, Grant.id).where(
                    Grant.identity_id.in_([f"id_{n}" for n in range(BIG)] + [f"id_{victim}"])
                )
            ).all()
            installation = installation_id(session)
        make_roles(params, database, prefix, [(p, g) for p, g in touched], installation)
        hub = ConnectorHub(factory)
        worker = Worker(
            factory,
            hub=hub,
            box=SecretBox.load(home, None),
            clock=Clock(),
            worker_id="bench",
            sync_inventory=False,
        )
        worker.run_once()  # warm: flows parsed, fingerprints taken, nothing to do
        settle_heap()  # as `sluice worker` does once started (runtime/heap.py)
        roles_before = live_roles(params, prefix)

        group_s, group_policy, group_revoked = settle(
            worker,
            factory,
            lambda s: set_group(
                s, name="big", description=None, members=[], add=[], remove=[], actor="bench", now=NOW
            ),
        )
        deact_s, deact_policy, total_revoked = settle(
            worker,
            factory,
            lambda s: set_identity(
                s,
                email=f"u{victim}@example.com",
                fields={"active": False},
                replace=False,
                actor="bench",
                now=NOW,
            ),
        )
        deact_revoked = total_revoked - group_revoked
        assert live_roles(params, prefix) == roles_before - total_revoked
        group_floor = raw_floor(params, database, prefix, group_revoked)
        deact_floor = raw_floor(params, database, prefix, deact_revoked)
        bare_drops = bare_drop_floor(params, database, prefix, group_revoked)
        via_connector = connector_floor(params, database, prefix, group_revoked)
        print(
            f"store: {IDENTITIES} identities, {FLOWS} flows, {GRANTS} active grants "
            f"({engine.dialect.name}); "
            "target: PostgreSQL"
        )
        print(
            f"group change ({BIG} identities): {group_revoked} grants revoked, settled in {group_s:.2f}s; "
            f"raw revoke floor {group_floor:.2f}s; through the connector alone {via_connector:.2f}s; "
            f"bare DROP ROLEs {bare_drops:.2f}s"
        )
        print(
            f"deactivation (1 identity): {deact_revoked} grants revoked, settled in {deact_s:.3f}s; "
            f"raw floor {deact_floor:.3f}s (ratio {deact_s / deact_floor:.2f})"
        )
        print(f"policy pass: group change {group_policy:.2f}s, deactivation {deact_policy:.3f}s")
        print(f"group change vs bare DROP ROLEs: {group_s / bare_drops:.2f}")
        print(f"ratio={group_s / group_floor:.2f}")
    finally:
        with admin(params) as conn:
            for name in (database, database + "_store"):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for (role,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [prefix]
            ).fetchall():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


if __name__ == "__main__":
    main()
