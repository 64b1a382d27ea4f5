"""The PostgreSQL connector's conformance harness: a database of its own on the local server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext
from sluice.connectors.conformance import ConnectorHarness, Sample
from sluice.connectors.paths import path_segment, split_path
from sluice.connectors.postgres import PostgresConfig, PostgresConnector

NAME = "conf-pg"
HOSTILE_SCHEMA = 'team "a"; b'
HOSTILE_TABLE = "x\"; DROP ROLE postgres; -- 'y'"


class PostgresHarness(ConnectorHarness):
    has_sessions = True

    def __init__(self, admin_url: str, database: str, prefix: str) -> None:
        params = conninfo_to_dict(admin_url)
        self.admin = {k: params[k] for k in ("host", "port", "user", "password") if params.get(k)}
        self.database = database
        self.config = PostgresConfig(
            host=str(self.admin.get("host", "127.0.0.1")),
            port=int(self.admin.get("port", 5432)),
            user=str(self.admin.get("user", "postgres")),
            databases=[database],
            role_prefix=prefix,
        )
        self.connector = PostgresConnector(NAME, self.config, ConnectorContext(installation="test-install"))
        db = path_segment(database)
        self.sample = Sample("table", f"{NAME}/{db}/app/orders", "read")
        self.hostile = Sample(
            "table", f"{NAME}/{db}/{path_segment(HOSTILE_SCHEMA)}/{path_segment(HOSTILE_TABLE)}", "read"
        )
        self.tagged = (f"{NAME}/{db}/app/orders", {"pii": "true"})

    def _login(self, unit: AccessUnit, details: dict[str, Any]) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=details["host"],
            port=details["port"],
            dbname=details["database"],
            user=details["username"],
            password=unit.secret,
            autocommit=True,
            connect_timeout=5,
        )

    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        names = split_path(NAME, unit.resource_path) or []
        try:
            with self._login(unit, details) as conn:
                conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*names[1:])))
        except psycopg.Error:
            return False
        return True

    def open_session(self, unit: AccessUnit, details: dict[str, Any]) -> Any:
        return self._login(unit, details)

    def session_alive(self, session: Any) -> bool:
        try:
            session.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def remove_by_hand(self, unit: AccessUnit) -> None:
        with psycopg.connect(**self.admin, dbname=self.database, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(unit.principal)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(unit.principal)))

    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        config = self.config.model_copy(
            update={"port": port, "connect_timeout_seconds": 2, "statement_timeout_seconds": 2}
        )
        return PostgresConnector(NAME, config, ConnectorContext(installation="test-install"))


def postgres_harness(admin_url: str) -> Iterator[PostgresHarness]:
    database = f"sluice_c_{secrets.token_hex(4)}"
    prefix = f"sc{secrets.token_hex(3)}_"
    params = conninfo_to_dict(admin_url)
    admin = {k: params[k] for k in ("host", "port", "user", "password", "dbname") if params.get(k)}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with psycopg.connect(**{**admin, "dbname": database}, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA app")
            conn.execute("CREATE TABLE app.orders (id serial PRIMARY KEY, item text)")
            conn.execute("COMMENT ON TABLE app.orders IS 'Orders.\nsluice: pii=true'")
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(HOSTILE_SCHEMA)))
            conn.execute(
                sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(HOSTILE_SCHEMA, HOSTILE_TABLE))
            )
        yield PostgresHarness(admin_url, database, prefix)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            for (role,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [prefix]
            ):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
