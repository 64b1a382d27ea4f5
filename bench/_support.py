"""What the benchmarks share: scratch databases on the local PostgreSQL, a seeded store, and the floor:
the PostgreSQL connector's own statements (built by `postgres_sql`, as the connector builds them)
issued raw through psycopg on one connection."""

from __future__ import annotations

import os
import secrets
import statistics
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import psycopg
from cryptography.fernet import Fernet
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict

from sluice.api.edge import EdgeLimits
from sluice.connectors import postgres_sql as q
from sluice.connectors.postgres_sql import Target
from sluice.domain.flows import FlowSpec
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store import migrate
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import AccessFlow, Group, GroupMember, Identity, Integration

ADMIN_URL = os.environ.get("SLUICE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLE = "orders"
INTEGRATION = "bench-pg"

# One benchmark client sends far more calls a minute than the per-address and per-token limits allow a
# real one; those limits are measured by tests/api/test_edge.py, not here.
BENCH_LIMITS = EdgeLimits(per_token_per_minute=1e12, per_address_per_minute=1e12, failed_auth_limit=10**9)


def params(dbname: str | None = None) -> dict[str, Any]:
    found = conninfo_to_dict(ADMIN_URL)
    keep = {k: found[k] for k in ("host", "port", "user", "dbname", "password") if found.get(k)}
    return {**keep, "dbname": dbname} if dbname else keep


def url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@dataclass
class Scratch:
    store: str
    target: str
    prefix: str


@contextmanager
def scratch() -> Iterator[Scratch]:
    """A store database, a target database with one table, and a role prefix; all removed after."""
    made = Scratch(
        f"sluice_bs_{secrets.token_hex(3)}", f"sluice_bt_{secrets.token_hex(3)}", f"b{secrets.token_hex(3)}_"
    )
    with psycopg.connect(**params(), autocommit=True) as conn:
        for name in (made.store, made.target):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(**params(made.target), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (id serial PRIMARY KEY, item text)")
    try:
        yield made
    finally:
        with psycopg.connect(**params(), autocommit=True) as conn:
            for name in (made.store, made.target):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            roles = [
                r[0]
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [made.prefix]
                )
            ]
            for role in roles:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def seed_store(made: Scratch, people: int, key: str) -> tuple[Any, Any, SecretBox]:
    """Schema, `people` identities in group `eng`, the integration (its admin connection opens on the
    target database, so one connection serves every statement) and a self-serve flow; inventory synced."""
    engine = make_engine(url(made.store))
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    conf = params()
    with transaction(factory) as session:
        session.add(Group(id="grp_eng", name="eng"))
        for i in range(people):
            session.add(
                Identity(
                    id=f"id_{i}",
                    email=f"u{i}@bench.example",
                    name=f"U{i}",
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
            )
        session.flush()
        for i in range(people):
            session.add(GroupMember(group_id="grp_eng", identity_id=f"id_{i}", source="config"))
        session.add(
            Integration(
                id="int_bench",
                name=INTEGRATION,
                kind="postgresql",
                config={
                    "host": conf.get("host", "127.0.0.1"),
                    "port": int(conf.get("port", 5432)),
                    "user": conf.get("user", "postgres"),
                    "dbname": made.target,
                    "databases": [made.target],
                    "role_prefix": made.prefix,
                },
                sync_interval_seconds=10**8,
                created_at=now,
                updated_at=now,
            )
        )
        spec = FlowSpec.model_validate(
            {
                "name": "self-serve",
                "requesters": [{"group": "eng"}],
                "targets": [{"integration": INTEGRATION, "type": "table", "permissions": ["read"]}],
                "max_duration": "8h",
            }
        )
        session.add(
            AccessFlow(
                id="flow_b", name=spec.name, spec=spec.model_dump(mode="json"), created_at=now, updated_at=now
            )
        )
    hub = ConnectorHub(factory)
    sync_integration(factory, hub, INTEGRATION, clock=lambda: datetime.now(UTC))
    return engine, factory, SecretBox(key.encode())


def new_key() -> str:
    return Fernet.generate_key().decode()


def resource_path(made: Scratch) -> str:
    return f"{INTEGRATION}/{made.target}/public/{TABLE}"


# --- the floor: the connector's statements, raw, on one connection


@cache
def installation_of(store: str) -> str:
    """The installation id of a seeded store: the connector marks and revokes only its own roles."""
    with psycopg.connect(**params(store)) as conn:
        row = conn.execute("SELECT id FROM installation").fetchone()
    if row is None:
        raise RuntimeError(f"store {store} has no installation id")
    return str(row[0])


def grant_comment(made: Scratch, grant_id: str) -> str:
    """The marker comment the connector writes on a grant's login role."""
    return q.grant_comment(grant_id, INTEGRATION, installation_of(made.store))


def _login_options(password: str) -> sql.Composed:
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    verifier = q.scram_sha256_verifier(password, iterations=q.GRANT_SCRAM_ITERATIONS)
    return sql.SQL("LOGIN INHERIT PASSWORD {} VALID UNTIL {}").format(
        sql.Literal(verifier), sql.Literal(until)
    )


def _prepare_privilege_role(conn: psycopg.Connection[Any], made: Scratch, privilege: str) -> None:
    """What the connector runs the first time a resource and permission are granted."""
    target = Target(made.target, "public", TABLE)
    with suppress(errors.DuplicateObject, errors.UniqueViolation), conn.transaction():
        conn.execute(sql.SQL("CREATE ROLE {} WITH NOLOGIN").format(sql.Identifier(privilege)))
        conn.execute(
            sql.SQL("COMMENT ON ROLE {} IS {}").format(
                sql.Identifier(privilege), sql.Literal(q.privilege_comment(resource_path(made), "read"))
            )
        )
    with conn.transaction():
        conn.execute(q.LOCK, [q.lock_key(Target(made.target))])
        for statement in q.database_grants(target, privilege):
            conn.execute(statement)
    with conn.transaction():
        conn.execute(q.LOCK, [q.lock_key(target)])
        for statement in q.object_grants(target, "read", privilege):
            conn.execute(statement)


def raw_grant(conn: psycopg.Connection[Any], made: Scratch, login: str, grant_id: str, password: str) -> None:
    """What PostgresConnector.grant issues for a table read grant, in the same order: the login, its
    marker and its membership in one pipelined transaction that also reads whether the privilege role
    is ready; the privilege role's own statements only when it is not (the first grant)."""
    target = Target(made.target, "public", TABLE)
    privilege = q.privilege_role_name(made.prefix, resource_path(made), "read")
    ready = q.privilege_ready(target, "read", privilege)
    assert ready is not None
    ident = sql.Identifier(login)
    try:
        with conn.pipeline(), conn.transaction():
            conn.execute(sql.SQL("CREATE ROLE {} WITH ").format(ident) + _login_options(password))
            conn.execute(
                sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(grant_comment(made, grant_id)))
            )
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(privilege), ident))
            answer = conn.execute(ready)
        row = answer.fetchone()
        if row and row[0]:
            return
    except errors.UndefinedObject:
        _prepare_privilege_role(conn, made, privilege)
        raw_grant(conn, made, login, grant_id, password)
        return
    _prepare_privilege_role(conn, made, privilege)


def minimal_grant(conn: psycopg.Connection[Any], made: Scratch, login: str, password: str) -> None:
    """The physical floor of a grant: a login role with a client-computed SCRAM verifier and its
    membership in a prebuilt privilege role, in one pipelined transaction. Nothing a grant could skip."""
    privilege = q.privilege_role_name(made.prefix, resource_path(made), "read")
    ident = sql.Identifier(login)
    with conn.pipeline(), conn.transaction():
        conn.execute(sql.SQL("CREATE ROLE {} WITH ").format(ident) + _login_options(password))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(privilege), ident))


def raw_revoke(conn: psycopg.Connection[Any], database: str, login: str) -> None:
    """What PostgresConnector.revoke issues for a grant in `database`, in the same order and the same
    three round trips (`conn` is open on that database, so one connection serves every statement)."""
    ident = sql.Identifier(login)
    row = conn.execute(q.ROLE, [login]).fetchone()
    if row is None:
        return
    with conn.pipeline():
        with conn.transaction():
            conn.execute(sql.SQL("ALTER ROLE {} WITH NOLOGIN").format(ident))
        conn.execute(q.TERMINATE, [5000, login])
        found = conn.execute(q.ROLE_DATABASES, [database, row[0]])
    databases = [r[0] for r in found.fetchall()]
    with conn.pipeline():
        if conn.info.dbname in databases:
            with conn.transaction():
                conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(ident))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        conn.execute(q.TERMINATE, [5000, login])
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))


def raw_connection(made: Scratch) -> psycopg.Connection[Any]:
    conn = psycopg.connect(**params(made.target), autocommit=True)
    conn.execute("SELECT set_config('statement_timeout', '30s', false)")
    return conn


def managed_count(made: Scratch) -> int:
    with psycopg.connect(**params(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s) AND NOT starts_with(rolname, %s)",
            [made.prefix, made.prefix + "p_"],
        ).fetchone()
        return int(row[0]) if row else 0


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
