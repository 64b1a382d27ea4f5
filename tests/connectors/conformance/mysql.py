"""The MySQL / MariaDB connector's conformance harness: databases of its own on the local server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pymysql

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext
from sluice.connectors.conformance import ConnectorHarness, Sample
from sluice.connectors.mysql import MySQLConfig, MySQLConnector
from sluice.connectors.mysql_sql import quote_identifier
from sluice.connectors.paths import path_segment, split_path

NAME = "conf-mysql"
HOSTILE_TABLE = "t `a` 'b'; DROP TABLE z; -- \"c\""


def _q(name: str) -> str:
    """An identifier for SQL run without parameters (PyMySQL formats `%` only with parameters)."""
    return quote_identifier(name).replace("%%", "%")


class MySQLHarness(ConnectorHarness):
    has_sessions = True

    def __init__(self, server: dict[str, Any], database: str, hostile_db: str, prefix: str) -> None:
        self.server = server
        self.config = MySQLConfig(
            host=str(server["host"]),
            port=int(server["port"]),
            user=str(server["user"]),
            databases=[database, hostile_db],
            user_prefix=prefix,
            user_host="127.0.0.1",
        )
        self.connector = MySQLConnector(NAME, self.config, ConnectorContext(installation="test-install"))
        self.sample = Sample("table", f"{NAME}/{database}/orders", "read")
        self.hostile = Sample(
            "table", f"{NAME}/{path_segment(hostile_db)}/{path_segment(HOSTILE_TABLE)}", "write"
        )
        self.tagged = (f"{NAME}/{database}/orders", {"pii": "true"})

    def admin(self) -> pymysql.Connection:
        return pymysql.connect(
            host=self.server["host"], port=self.server["port"], user=self.server["user"], autocommit=True
        )

    def _login(self, unit: AccessUnit, details: dict[str, Any]) -> pymysql.Connection:
        return pymysql.connect(
            host=details["host"],
            port=details["port"],
            user=details["username"],
            password=unit.secret or "",
            connect_timeout=5,
            read_timeout=5,
            autocommit=True,
        )

    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        db, table = split_path(NAME, unit.resource_path) or ["", ""]
        try:
            conn = self._login(unit, details)
            with conn, conn.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM {_q(db)}.{_q(table)}")
        except pymysql.err.MySQLError:
            return False
        return True

    def open_session(self, unit: AccessUnit, details: dict[str, Any]) -> Any:
        return self._login(unit, details)

    def session_alive(self, session: Any) -> bool:
        try:
            with session.cursor() as cur:
                cur.execute("SELECT 1")
        except pymysql.err.MySQLError:
            return False
        return True

    def remove_by_hand(self, unit: AccessUnit) -> None:
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute("DROP USER %s@%s", (unit.principal, self.config.account_host))

    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        seconds = max(1, int(timeout_seconds))
        config = self.config.model_copy(
            update={"port": port, "connect_timeout_seconds": seconds, "statement_timeout_seconds": seconds}
        )
        return MySQLConnector(NAME, config, ConnectorContext(installation="test-install"))


def mysql_harness(server: dict[str, Any]) -> Iterator[MySQLHarness]:
    tag = secrets.token_hex(3)
    database, hostile_db = f"sluice_c_{tag}", f"c{tag} \"db\" 'x'; y"
    prefix = f"sc{tag}_"
    harness = MySQLHarness(server, database, hostile_db, prefix)
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL event_scheduler = ON")  # the second lock's events run (check() is clean)
        cur.execute(f"CREATE DATABASE {_q(database)}")
        cur.execute(f"CREATE TABLE {_q(database)}.orders (id int) COMMENT 'Orders.\nsluice: pii=true'")
        cur.execute(f"CREATE DATABASE {_q(hostile_db)}")
        cur.execute(f"CREATE TABLE {_q(hostile_db)}.{_q(HOSTILE_TABLE)} (id int)")
    try:
        yield harness
    finally:
        with harness.admin() as conn, conn.cursor() as cur:
            for db in (database, hostile_db):
                cur.execute(f"DROP DATABASE IF EXISTS {_q(db)}")
            cur.execute(
                "SELECT User, Host FROM mysql.user WHERE User LIKE %s", (prefix.replace("_", "\\_") + "%",)
            )
            for user, host in cur.fetchall():
                cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
