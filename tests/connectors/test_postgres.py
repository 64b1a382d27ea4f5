"""The PostgreSQL connector against the real local server (and a throwaway SCRAM-only one).

Every run uses its own target database and its own role prefix, and drops both at the end."""

from __future__ import annotations

import base64
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext, ManagedPrincipal, SecretRef
from sluice.connectors.postgres import PostgresConfig, PostgresConnector, path_segment, segment_name
from sluice.connectors.postgres_sql import (
    GRANT_SCRAM_ITERATIONS,
    parse_tags,
    privilege_role_name,
    scram_sha256_verifier,
)
from sluice.domain.errors import TargetError
from tests.conftest import _need_service

pytestmark = pytest.mark.postgres

INTEGRATION = "prod-pg"
PREFIX = f"st{secrets.token_hex(3)}_"  # unique per test session: runs never collide
EVIL_TABLE = 'x"; DROP ROLE postgres; --'
SLASH_SCHEMA = "team/a%b"


# --- fixtures


@pytest.fixture(scope="module")
def admin_params(postgres_admin_url: str) -> dict[str, Any]:
    params = conninfo_to_dict(postgres_admin_url)
    return {k: params[k] for k in ("host", "port", "user", "dbname", "password") if params.get(k)}


def _admin(params: dict[str, Any], dbname: str | None = None) -> psycopg.Connection[Any]:
    extra = {"dbname": dbname} if dbname else {}
    return psycopg.connect(**{**params, **extra}, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="module")
def target_db(admin_params: dict[str, Any]) -> Iterator[str]:
    name = f"sluice_t_{secrets.token_hex(4)}"
    with _admin(admin_params) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal("Orders.\nsluice: env=prod team=core =bad")
            )
        )
    try:
        with _admin(admin_params, name) as conn:
            conn.execute(
                """
                CREATE SCHEMA app;
                COMMENT ON SCHEMA app IS 'The app. sluice: is not at the start
                sluice: pii=true';
                CREATE TABLE app.orders (id serial PRIMARY KEY, item text);
                INSERT INTO app.orders (item) VALUES ('tea'), ('cake');
                COMMENT ON TABLE app.orders IS 'sluice: owner=shop/core k=v=w novalue= cost-center=42';
                CREATE TABLE app.salaries (id int, amount int);
                CREATE VIEW app.order_items AS SELECT item FROM app.orders;
                CREATE TABLE app.events (id int, at date) PARTITION BY RANGE (at);
                CREATE TABLE app.events_2026 PARTITION OF app.events
                    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
                """
            )
            schema, table = sql.Identifier(SLASH_SCHEMA), sql.Identifier(SLASH_SCHEMA, EVIL_TABLE)
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(table))
            conn.execute(sql.SQL("INSERT INTO {} VALUES (7)").format(table))
        yield name
    finally:
        with _admin(admin_params) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            roles = [
                r[0]
                for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [PREFIX])
            ]
            for role in roles:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _config(admin_params: dict[str, Any], **overrides: Any) -> PostgresConfig:
    fields: dict[str, Any] = {
        "host": admin_params.get("host", "127.0.0.1"),
        "port": int(admin_params.get("port", 5432)),
        "user": admin_params.get("user", "postgres"),
        "dbname": admin_params.get("dbname", "postgres"),
        "role_prefix": PREFIX,
    }
    return PostgresConfig(**{**fields, **overrides})


@pytest.fixture(scope="module")
def connector(admin_params: dict[str, Any], target_db: str) -> PostgresConnector:
    return PostgresConnector(
        INTEGRATION,
        _config(admin_params, databases=[target_db]),
        ConnectorContext(installation="test-install"),
    )


def make_unit(
    connector: PostgresConnector,
    path: str,
    resource_type: str = "table",
    permission: str = "read",
    *,
    ends_at: datetime | None = None,
    secret: str | None = None,
) -> AccessUnit:
    grant_id = f"gr_{secrets.token_hex(6)}"
    return AccessUnit(
        grant_id=grant_id,
        principal=connector.principal_for(grant_id, "ada@example.com"),
        grantee_email="ada@example.com",
        resource_type=resource_type,
        resource_path=path,
        permission=permission,
        ends_at=ends_at or datetime.now(UTC) + timedelta(hours=1),
        secret=secret or secrets.token_urlsafe(24),
    )


def login(details: dict[str, Any], unit: AccessUnit, password: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=details["host"],
        port=details["port"],
        dbname=details["database"],
        user=details["username"],
        password=password or unit.secret,
        autocommit=True,
        connect_timeout=5,
    )


def role_row(admin_params: dict[str, Any], role: str) -> tuple[Any, ...] | None:
    with _admin(admin_params) as conn:
        return conn.execute(
            "SELECT rolname, rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = %s", [role]
        ).fetchone()


def _path(db: str, *names: str) -> str:
    return "/".join([INTEGRATION, *(path_segment(n) for n in (db, *names))])


def _url(params: dict[str, Any], **query: str) -> str:
    auth = quote(params.get("user", "postgres")) + (
        ":" + quote(params["password"]) if "password" in params else ""
    )
    where = f"{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}"
    dbname = quote(params.get("dbname", "postgres"))
    return f"postgresql://{auth}@{where}/{dbname}?{urlencode(query, quote_via=quote)}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- pure helpers


@given(st.text())
def test_path_segment_round_trips_and_never_holds_a_slash(name: str) -> None:
    segment = path_segment(name)
    assert "/" not in segment
    assert segment_name(segment) == name


def test_path_segment_escapes_only_slash_and_percent() -> None:
    assert path_segment("a/b%2Fc d") == "a%2Fb%252Fc d"
    assert segment_name("a%2Fb%252Fc d") == "a/b%2Fc d"


def test_tags_come_from_a_sluice_line_and_malformed_pairs_are_ignored() -> None:
    comment = (
        "Orders of the shop.\n  sluice: pii=true owner=shop/core =x k=v=w novalue= plain\nsluice:env=prod"
    )
    assert parse_tags(comment) == {"pii": "true", "owner": "shop/core", "env": "prod"}
    assert parse_tags(None) == {}
    assert parse_tags("no tags here sluice: a=b") == {}


def test_config_rejects_a_bad_prefix_and_unknown_fields() -> None:
    for bad in ("Sluice_", "a-b", "", "x" * 21, "sl uice"):
        with pytest.raises(ValidationError):
            PostgresConfig(role_prefix=bad)
    with pytest.raises(ValidationError):
        PostgresConfig.model_validate({"password": "in-the-config-text"})
    with pytest.raises(ValidationError):
        PostgresConfig.model_validate({"hostname": "db"})


def test_connector_meets_the_protocol_and_names_principals(connector: PostgresConnector) -> None:
    assert isinstance(connector, Connector)
    assert connector.principal_for("gr_3f9a0c1d2e4b", "ada@example.com") == PREFIX + "3f9a0c1d2e4b"


@pytest.mark.parametrize(
    "password", ["correct horse", "pässwörd", "I\u00adX", "\u2168", "a\u00a0b", "\u0627x", "é\x07"]
)
def test_scram_verifier_matches_libpq(admin_params: dict[str, Any], password: str) -> None:
    """Same salt in, same verifier out as libpq's own PQencryptPasswordConn (SASLprep included)."""
    with _admin(admin_params) as conn:
        theirs = conn.pgconn.encrypt_password(password.encode(), b"someone", b"scram-sha-256").decode()
    iterations, salt = theirs.split("$")[1].split(":")
    ours = scram_sha256_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == theirs


# --- discovery


def test_discovery_paths_parents_names_and_tags(connector: PostgresConnector, target_db: str) -> None:
    found = {r.path: r for r in connector.discover()}
    db_path = f"{INTEGRATION}/{target_db}"
    assert all(path.startswith(db_path) for path in found)  # limited to the configured databases

    db = found[db_path]
    assert (db.type, db.name, db.parent_path, db.tags) == (
        "database",
        target_db,
        None,
        {"env": "prod", "team": "core"},
    )
    app = found[f"{db_path}/app"]
    assert (app.type, app.parent_path, app.tags) == ("schema", db_path, {"pii": "true"})
    assert found[f"{db_path}/public"].type == "schema"
    orders = found[f"{db_path}/app/orders"]
    assert (orders.type, orders.name, orders.parent_path) == ("table", "orders", f"{db_path}/app")
    assert orders.tags == {"owner": "shop/core", "cost-center": "42"}
    for table in ("order_items", "events", "salaries"):  # a view and a partitioned table count as tables
        assert found[f"{db_path}/app/{table}"].type == "table"
    assert f"{db_path}/app/events_2026" not in found  # partitions are reached through their parent

    slash = found[f"{db_path}/team%2Fa%25b"]
    assert (slash.type, slash.name) == ("schema", SLASH_SCHEMA)
    evil = found[_path(target_db, SLASH_SCHEMA, EVIL_TABLE)]
    assert (evil.name, evil.parent_path) == (EVIL_TABLE, slash.path)

    schemas = {r.name for r in found.values() if r.type == "schema"}
    assert schemas == {"app", "public", SLASH_SCHEMA}


# --- grant


def test_table_read_grant_allows_select_only(connector: PostgresConnector, target_db: str) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    details = connector.grant(unit)
    assert details == {
        "host": connector.config.host,
        "port": connector.config.port,
        "database": target_db,
        "username": unit.principal,
        "sslmode": "prefer",  # on loopback; verify-full toward any other host
    }
    with login(details, unit) as conn:
        assert conn.execute("SELECT count(*) FROM app.orders").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO app.orders (item) VALUES ('stolen')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM app.salaries")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM app.order_items")
    connector.revoke(unit)


def test_table_write_grant_inserts_through_the_serial_sequence(
    connector: PostgresConnector, target_db: str
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"), permission="write")
    with login(connector.grant(unit), unit) as conn:
        conn.execute("INSERT INTO app.orders (item) VALUES ('scone')")
        conn.execute("UPDATE app.orders SET item = 'bun' WHERE item = 'scone'")
        conn.execute("DELETE FROM app.orders WHERE item = 'bun'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE app.orders")
    connector.revoke(unit)


def test_granting_twice_keeps_one_role_and_one_privilege_role(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    connector.grant(unit)
    again = AccessUnit(**{**unit.__dict__, "secret": "a-new-secret-on-retry"})
    details = connector.grant(again)
    privilege = privilege_role_name(PREFIX, unit.resource_path, "read")
    with _admin(admin_params) as conn:
        rows = conn.execute(
            "SELECT r.rolname, r.rolcanlogin FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
            " JOIN pg_roles p ON p.oid = m.roleid WHERE p.rolname = %s AND r.rolname = %s",
            [privilege, unit.principal],
        ).fetchall()
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", [privilege]
        ).fetchone()
    assert rows == [(unit.principal, True)]
    assert comment == (f"sluice privilege: {unit.resource_path} read",)
    with login(details, again) as conn:
        assert conn.execute("SELECT count(*) FROM app.orders").fetchone() == (2,)
    connector.revoke(unit)


def test_a_table_made_again_or_a_privilege_revoked_by_hand_is_granted_in_full(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    """Once a privilege role holds its privileges a grant only makes the login; that shortcut reads the
    ACLs themselves, so a table dropped and created again, or a privilege or a sequence's USAGE revoked
    by hand, is granted again rather than handed out empty."""
    with _admin(admin_params, target_db) as conn:
        conn.execute("CREATE TABLE app.remade (id serial PRIMARY KEY, item text)")
    path = _path(target_db, "app", "remade")
    first = make_unit(connector, path, permission="write")
    connector.grant(first)
    privilege = sql.Identifier(privilege_role_name(PREFIX, path, "write"))
    with _admin(admin_params, target_db) as conn:
        conn.execute("DROP TABLE app.remade")
        conn.execute("CREATE TABLE app.remade (id serial PRIMARY KEY, item text)")
    second = make_unit(connector, path, permission="write")
    with login(connector.grant(second), second) as conn:
        conn.execute("INSERT INTO app.remade (item) VALUES ('again')")
    with _admin(admin_params, target_db) as conn:
        conn.execute(sql.SQL("REVOKE USAGE ON SEQUENCE app.remade_id_seq FROM {}").format(privilege))
    third = make_unit(connector, path, permission="write")
    with login(connector.grant(third), third) as conn:
        conn.execute("INSERT INTO app.remade (item) VALUES ('once more')")
    with _admin(admin_params, target_db) as conn:
        conn.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(target_db), privilege)
        )
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(target_db)))
    try:
        fourth = make_unit(connector, path, permission="write")
        with login(connector.grant(fourth), fourth) as conn:
            assert conn.execute("SELECT count(*) FROM app.remade").fetchone() == (2,)
    finally:
        with _admin(admin_params, target_db) as conn:
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(sql.Identifier(target_db)))
    for unit in (first, second, third, fourth):
        connector.revoke(unit)


def test_the_stored_verifier_is_scram_with_the_grant_iteration_count(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    details = connector.grant(unit)
    with _admin(admin_params) as conn:
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [unit.principal]
        ).fetchone()
    assert stored is not None and stored[0].startswith(f"SCRAM-SHA-256${GRANT_SCRAM_ITERATIONS}:")
    assert unit.secret is not None and unit.secret not in stored[0]
    with login(details, unit) as conn:
        assert conn.execute("SELECT count(*) FROM app.orders").fetchone() == (2,)
    connector.revoke(unit)


def test_schema_read_covers_a_table_created_after_the_grant(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app"), "schema", "read")
    details = connector.grant(unit)
    later = f"later_{secrets.token_hex(3)}"
    with _admin(admin_params, target_db) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} AS SELECT 1 AS one").format(sql.Identifier("app", later)))
    with login(details, unit) as conn:
        assert conn.execute(
            sql.SQL("SELECT one FROM {}").format(sql.Identifier("app", later))
        ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM app.salaries").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO app.salaries VALUES (1, 1)")
    connector.revoke(unit)


def test_schema_write_and_database_connect(connector: PostgresConnector, target_db: str) -> None:
    write = make_unit(connector, _path(target_db, "app"), "schema", "write")
    with login(connector.grant(write), write) as conn:
        conn.execute("INSERT INTO app.orders (item) VALUES ('jam')")
        conn.execute("DELETE FROM app.orders WHERE item = 'jam'")
    connect = make_unit(connector, _path(target_db), "database", "connect")
    with login(connector.grant(connect), connect) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (target_db,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM app.orders")
    connector.revoke(write)
    connector.revoke(connect)


def test_valid_until_is_the_end_plus_the_margin_whatever_the_session_time_zone(
    admin_params: dict[str, Any], target_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin URL sets the session time zone to Auckland: the explicit UTC offset must still win."""
    monkeypatch.setenv("SLUICE_TEST_PG_URL", _url(admin_params, options="-c TimeZone=Pacific/Auckland"))
    config = _config(admin_params, url=SecretRef(env="SLUICE_TEST_PG_URL"), expiry_margin_seconds=90)
    conn_ = PostgresConnector(INTEGRATION, config, ConnectorContext(installation="test-install"))
    ends_at = datetime(2031, 7, 1, 12, 30, 15, 250000, tzinfo=UTC)
    unit = make_unit(conn_, _path(target_db, "app", "orders"), ends_at=ends_at)
    conn_.grant(unit)
    row = role_row(admin_params, unit.principal)
    assert row is not None
    assert abs(row[2] - (ends_at + timedelta(seconds=90))) < timedelta(milliseconds=1)
    conn_.revoke(unit)


def test_the_evil_table_name_is_data(
    connector: PostgresConnector, target_db: str, admin_params: dict
) -> None:
    unit = make_unit(connector, _path(target_db, SLASH_SCHEMA, EVIL_TABLE))
    with login(connector.grant(unit), unit) as conn:
        assert conn.execute(
            sql.SQL("SELECT id FROM {}").format(sql.Identifier(SLASH_SCHEMA, EVIL_TABLE))
        ).fetchone() == (7,)
    connector.revoke(unit)
    assert role_row(admin_params, "postgres") is not None


def test_concurrent_grants_on_one_resource_all_succeed(connector: PostgresConnector, target_db: str) -> None:
    units = [make_unit(connector, _path(target_db, "app", "orders")) for _ in range(6)]
    units += [make_unit(connector, _path(target_db, "app"), "schema", "read") for _ in range(3)]
    failures: list[BaseException] = []

    def grant(unit: AccessUnit) -> None:
        try:
            connector.grant(unit)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=grant, args=(u,)) for u in units]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for unit in units:
        connector.revoke(unit)


# --- revoke


def test_revoke_cuts_the_open_session_and_new_logins(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    details = connector.grant(unit)
    held = login(details, unit)
    assert held.execute("SELECT 1").fetchone() == (1,)
    connector.revoke(unit)
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    with pytest.raises(psycopg.OperationalError):
        login(details, unit)
    assert role_row(admin_params, unit.principal) is None


def test_revoke_is_idempotent_and_accepts_a_role_dropped_by_hand(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    never = make_unit(connector, _path(target_db, "app", "orders"))
    connector.revoke(never)  # never granted

    twice = make_unit(connector, _path(target_db, "app", "orders"))
    connector.grant(twice)
    connector.revoke(twice)
    connector.revoke(twice)

    by_hand = make_unit(connector, _path(target_db, "app", "orders"))
    connector.grant(by_hand)
    with _admin(admin_params) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(by_hand.principal)))
    connector.revoke(by_hand)


def test_revoke_by_principal_alone_removes_an_orphan(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    """The orphan sweep knows only what list_managed reported: principal and grant id."""
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    details = connector.grant(unit)
    with _admin(admin_params, target_db) as conn:
        conn.execute(sql.SQL("GRANT SELECT ON app.salaries TO {}").format(sql.Identifier(unit.principal)))
    held = login(details, unit)
    (orphan,) = [m for m in connector.list_managed() if m.principal == unit.principal]
    connector.revoke(AccessUnit(orphan.grant_id or "", orphan.principal, "", "", "", ""))
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    assert role_row(admin_params, unit.principal) is None


def test_revoke_leaves_the_shared_privilege_role_to_other_grants(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    first = make_unit(connector, _path(target_db, "app", "orders"))
    second = make_unit(connector, _path(target_db, "app", "orders"))
    connector.grant(first)
    details = connector.grant(second)
    connector.revoke(first)
    assert role_row(admin_params, privilege_role_name(PREFIX, first.resource_path, "read")) is not None
    with login(details, second) as conn:
        assert conn.execute("SELECT count(*) FROM app.orders").fetchone() == (2,)
    connector.revoke(second)


def test_revoke_hands_what_the_grantee_created_to_the_admin(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    details = connector.grant(unit)
    with _admin(admin_params, target_db) as conn:
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA app TO {}").format(sql.Identifier(unit.principal)))
    mine = f"mine_{secrets.token_hex(3)}"
    with login(details, unit) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier("app", mine)))
    connector.revoke(unit)
    assert role_row(admin_params, unit.principal) is None
    with _admin(admin_params, target_db) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'app' AND tablename = %s", [mine]
        )
        assert owner.fetchone() == (admin_params.get("user", "postgres"),)


def test_revoke_refuses_a_role_that_is_not_this_grants(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    with _admin(admin_params) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(unit.principal)))
    with pytest.raises(TargetError) as caught:
        connector.revoke(unit)
    assert caught.value.retryable is False
    with pytest.raises(TargetError):
        connector.grant(unit)
    assert role_row(admin_params, unit.principal) is not None
    not_ours = AccessUnit(**{**unit.__dict__, "principal": "postgres"})
    with pytest.raises(TargetError):
        connector.revoke(not_ours)
    assert role_row(admin_params, "postgres") is not None


# --- inventory of what we manage, errors, check


def test_list_managed_finds_login_roles_of_this_integration_only(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    connector.grant(unit)
    managed = connector.list_managed()
    assert ManagedPrincipal(principal=unit.principal, grant_id=unit.grant_id) in managed
    assert all(not m.principal.startswith(PREFIX + "p_") for m in managed)
    other = PostgresConnector("other-pg", connector.config, ConnectorContext(installation="test-install"))
    assert unit.principal not in {m.principal for m in other.list_managed()}
    connector.revoke(unit)
    assert unit.principal not in {m.principal for m in connector.list_managed()}


def _comment(admin_params: dict[str, Any], role: str) -> str | None:
    with _admin(admin_params) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", [role]
        ).fetchone()
    return row[0] if row else None


def _set_comment(admin_params: dict[str, Any], role: str, comment: str) -> None:
    with _admin(admin_params) as conn:
        conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(comment)))


def test_another_installations_login_is_neither_listed_nor_touched(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    details = connector.grant(unit)
    assert f"installation test-install integration {INTEGRATION}" in (
        _comment(admin_params, unit.principal) or ""
    )
    theirs = PostgresConnector(INTEGRATION, connector.config, ConnectorContext(installation="staging-copy"))
    assert unit.grant_id not in {m.grant_id for m in theirs.list_managed()}
    for action in (theirs.revoke, theirs.grant):
        with pytest.raises(TargetError) as caught:
            action(unit)
        assert caught.value.retryable is False
    with login(details, unit) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    connector.revoke(unit)


def test_a_legacy_login_is_listed_as_legacy_and_adopted_when_granted_again(
    connector: PostgresConnector, target_db: str, admin_params: dict[str, Any]
) -> None:
    """A login made before markers named their installation: every installation lists it as legacy
    (the orphan service decides whose it is); granting it again writes this installation's marker."""
    unit = make_unit(connector, _path(target_db, "app", "orders"))
    connector.grant(unit)
    _set_comment(admin_params, unit.principal, f"sluice grant {unit.grant_id} integration {INTEGRATION}")
    theirs = PostgresConnector(INTEGRATION, connector.config, ConnectorContext(installation="staging-copy"))
    legacy = ManagedPrincipal(principal=unit.principal, grant_id=unit.grant_id, legacy=True)
    assert legacy in connector.list_managed()
    assert legacy in theirs.list_managed()

    details = connector.grant(unit)
    assert ManagedPrincipal(unit.principal, unit.grant_id) in connector.list_managed()
    assert unit.grant_id not in {m.grant_id for m in theirs.list_managed()}
    with login(details, unit) as conn:
        assert conn.execute("SELECT count(*) FROM app.orders").fetchone() == (2,)

    _set_comment(admin_params, unit.principal, f"sluice grant {unit.grant_id} integration {INTEGRATION}")
    connector.revoke(unit)  # a grant made before the upgrade is still revoked by the worker
    assert role_row(admin_params, unit.principal) is None


@pytest.mark.parametrize(
    ("path", "resource_type", "permission"),
    [
        ("other-pg/{db}/app/orders", "table", "read"),
        ("{db}/app/orders", "table", "read"),
        ("prod-pg/{db}/app/orders/extra", "table", "read"),
        ("prod-pg/{db}/app", "table", "read"),
        ("prod-pg/{db}//orders", "table", "read"),
        ("prod-pg/{db}/app/orders", "table", "admin"),
        ("prod-pg/{db}", "database", "read"),
    ],
)
def test_a_path_outside_the_integration_is_refused(
    connector: PostgresConnector, target_db: str, path: str, resource_type: str, permission: str
) -> None:
    unit = make_unit(connector, path.format(db=target_db), resource_type, permission)
    for action in (connector.grant, connector.revoke):
        with pytest.raises(TargetError) as caught:
            action(unit)
        assert caught.value.retryable is False


def test_a_missing_table_is_a_lasting_error(connector: PostgresConnector, target_db: str) -> None:
    unit = make_unit(connector, _path(target_db, "app", "no_such_table"))
    with pytest.raises(TargetError) as caught:
        connector.grant(unit)
    assert caught.value.retryable is False


def test_an_unreachable_server_is_a_retryable_error(admin_params: dict[str, Any], target_db: str) -> None:
    config = _config(admin_params, port=_closed_port(), connect_timeout_seconds=2)
    down = PostgresConnector(INTEGRATION, config, ConnectorContext(installation="test-install"))
    unit = make_unit(down, _path(target_db, "app", "orders"))
    started = time.monotonic()
    actions = [
        lambda: down.grant(unit),
        lambda: down.revoke(unit),
        down.list_managed,
        lambda: list(down.discover()),
    ]
    for action in actions:
        with pytest.raises(TargetError) as caught:
            action()
        assert caught.value.retryable is True
    assert time.monotonic() - started < 5
    problems = down.check()
    assert len(problems) == 1 and problems[0].startswith("cannot connect")


def test_admin_secrets_never_show_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_TEST_BAD_URL", "postgresql://admin:hunter2%zz@127.0.0.1:5432/postgres")
    bad = PostgresConnector(
        INTEGRATION,
        PostgresConfig(url=SecretRef(env="SLUICE_TEST_BAD_URL")),
        ConnectorContext(installation="test-install"),
    )
    with pytest.raises(TargetError) as caught:
        bad.list_managed()
    assert "hunter2" not in caught.value.detail and "hunter2" not in str(caught.value)
    assert caught.value.retryable is False
    assert "hunter2" not in " ".join(bad.check())


def test_check_is_empty_on_a_good_config(connector: PostgresConnector) -> None:
    assert connector.check() == []


def test_check_reports_a_missing_database(admin_params: dict[str, Any]) -> None:
    config = _config(admin_params, databases=["sluice_no_such_db"])
    problems = PostgresConnector(INTEGRATION, config, ConnectorContext(installation="test-install")).check()
    assert problems and "sluice_no_such_db" in problems[0]


# --- passwords for real: a throwaway server that only accepts SCRAM passwords


def _pg_binary(name: str) -> str | None:
    for candidate in (
        shutil.which(name),
        *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def scram_server() -> Iterator[dict[str, Any]]:
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        _need_service("initdb/pg_ctl for a throwaway PostgreSQL", FileNotFoundError("initdb"))
    assert initdb is not None and pg_ctl is not None
    as_user: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="sluice-scram-"))
    password_file = workdir / "admin-password"
    password_file.write_text(secrets.token_urlsafe(18) + "\n")
    if os.geteuid() == 0:  # initdb refuses to run as root
        owner = pwd.getpwnam("postgres")
        for path in (workdir, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port, data = _closed_port(), workdir / "data"
    pwfile = ["--pwfile", str(password_file)]
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-A", "scram-sha-256", "-U", "postgres", "-N", *pwfile],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(workdir / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        _need_service("a throwaway PostgreSQL", exc)
    try:
        yield {
            "port": port,
            "password_file": str(password_file),
            "password": password_file.read_text().strip(),
        }
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def test_passwords_and_valid_until_hold_on_a_scram_server(scram_server: dict[str, Any]) -> None:
    config = PostgresConfig(
        port=scram_server["port"],
        password=SecretRef(file=scram_server["password_file"]),
        role_prefix=PREFIX,
        expiry_margin_seconds=0,
    )
    scram = PostgresConnector("scram-pg", config, ConnectorContext(installation="test-install"))
    assert scram.check() == []
    path = "scram-pg/postgres/public/notes"
    with psycopg.connect(
        host="127.0.0.1", port=scram_server["port"], user="postgres", password=scram_server["password"]
    ) as conn:
        conn.execute("CREATE TABLE notes AS SELECT 'hello' AS note")

    unit = make_unit(scram, path, secret="pässwörd-\u2168-" + secrets.token_urlsafe(8))
    details = scram.grant(unit)
    with login(details, unit) as conn:
        assert conn.execute("SELECT note FROM notes").fetchone() == ("hello",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(details, unit, password="not-the-password")
    scram.revoke(unit)

    expired = make_unit(scram, path, ends_at=datetime.now(UTC) - timedelta(seconds=1))
    details = scram.grant(expired)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(details, expired)  # VALID UNTIL is in the past: the second lock holds
    scram.revoke(expired)
    assert scram.list_managed() == []
