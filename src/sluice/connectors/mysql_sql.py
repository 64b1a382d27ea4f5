"""Pure helpers of the MySQL / MariaDB connector: identifier quoting, grant targets, privilege lists,
password hashes and the catalogue queries. No I/O here.

PyMySQL has no `Identifier` type (psycopg's `sql.Identifier` has no counterpart there), so
`quote_identifier` is the one place an identifier enters SQL text: backticks around it, inner backticks
doubled. Every value goes in as a query parameter, which PyMySQL escapes. Because PyMySQL formats the
whole statement with `%`, statements here are always run *with* a parameter tuple (maybe empty) and a
`%` in an identifier is written `%%`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
MAX_IDENTIFIER = 64


@dataclass(frozen=True)
class Statement:
    text: str  # %s placeholders; every literal % doubled
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Target:
    database: str
    table: str | None = None

    @property
    def type(self) -> str:
        return "table" if self.table is not None else "database"


def quote_identifier(name: str) -> str:
    """A database, table or column name, quoted for SQL text that is run with parameters."""
    if not name or "\0" in name or len(name) > MAX_IDENTIFIER:
        raise ValueError(f"{name!r} is not a MySQL identifier (1 to {MAX_IDENTIFIER} characters, no NUL)")
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def database_pattern(name: str) -> str:
    """A database name for `GRANT … ON db.*`, where `_` and `%` are wildcards: escape them (and the
    escape character itself), so a grant on `my_db` does not also open `myXdb`."""
    return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def grant_object(target: Target) -> str:
    if target.table is None:
        return quote_identifier(database_pattern(target.database)) + ".*"
    return quote_identifier(target.database) + "." + quote_identifier(target.table)


# `admin` is everything on the data and the schema of its tables, but nothing that keeps a DEFINER:
# a view, trigger, routine or event made by the temporary account would run as that account, and
# once it is dropped the owner's own statements that fire them fail (error 1449). So CREATE VIEW,
# TRIGGER, CREATE ROUTINE, ALTER ROUTINE and EVENT are never granted (docs/connectors.md).
_ADMIN_DATABASE = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES,"
    " LOCK TABLES, SHOW VIEW, EXECUTE"
)
_ADMIN_TABLE = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, SHOW VIEW"
_PRIVILEGES: dict[tuple[str, str], str] = {
    ("database", "read"): "SELECT, SHOW VIEW",
    ("database", "write"): "SELECT, INSERT, UPDATE, DELETE, SHOW VIEW",
    ("database", "admin"): _ADMIN_DATABASE,
    ("table", "read"): "SELECT",
    ("table", "write"): "SELECT, INSERT, UPDATE, DELETE",
    ("table", "admin"): _ADMIN_TABLE,
}
# What the admin account needs, globally and with GRANT OPTION, to give every permission above.
GRANTABLE_NEEDED = tuple(p.strip() for p in _ADMIN_DATABASE.split(","))


def grant_statement(target: Target, permission: str, user: str, host: str) -> Statement:
    privileges = _PRIVILEGES[(target.type, permission)]
    return Statement(f"GRANT {privileges} ON {grant_object(target)} TO %s@%s", (user, host))


def native_password_hash(password: str) -> str:
    """The `mysql_native_password` hash (`*` + SHA1(SHA1(password)) in upper-case hex), so a MariaDB
    server is given the hash and never the password itself."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()  # noqa: S324


def _identified(password: str, *, mariadb: bool) -> tuple[str, str]:
    if mariadb:
        return "IDENTIFIED BY PASSWORD %s", native_password_hash(password)
    return "IDENTIFIED BY %s", password


def create_user(user: str, host: str, password: str, *, mariadb: bool, max_connections: int) -> Statement:
    clause, secret = _identified(password, mariadb=mariadb)
    return Statement(
        f"CREATE USER IF NOT EXISTS %s@%s {clause} WITH MAX_USER_CONNECTIONS %s",
        (user, host, secret, max_connections),
    )


def set_password(user: str, host: str, password: str, *, mariadb: bool, max_connections: int) -> Statement:
    clause, secret = _identified(password, mariadb=mariadb)
    return Statement(
        f"ALTER USER %s@%s {clause} WITH MAX_USER_CONNECTIONS %s", (user, host, secret, max_connections)
    )


def expiry_event(database: str, user: str, host: str, at: str) -> Statement:
    """The second lock: an event, named as the account, that drops the account at `at` (UTC, the
    session's time zone) even when no Sluice worker is there to do it."""
    return Statement(
        f"CREATE EVENT {quote_identifier(database)}.{quote_identifier(user)} ON SCHEDULE AT %s"
        " ON COMPLETION NOT PRESERVE DO DROP USER IF EXISTS %s@%s",
        (at, user, host),
    )


def drop_event(database: str, name: str) -> Statement:
    return Statement(f"DROP EVENT IF EXISTS {quote_identifier(database)}.{quote_identifier(name)}")


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching names that start with `prefix` (its own `_`, `%` and `\\` escaped)."""
    return database_pattern(prefix) + "%"


# --- catalogue queries (values are parameters)

_NOT_SYSTEM = "NOT IN (" + ", ".join(f"'{s}'" for s in SYSTEM_SCHEMAS) + ")"
SCHEMATA_MARIADB = (
    "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA"
    f" WHERE SCHEMA_NAME {_NOT_SYSTEM} ORDER BY SCHEMA_NAME"
)
SCHEMATA_MYSQL = (  # MySQL keeps no comment on a database
    f"SELECT SCHEMA_NAME, NULL FROM information_schema.SCHEMATA WHERE SCHEMA_NAME {_NOT_SYSTEM}"
    " ORDER BY SCHEMA_NAME"
)
TABLES = (
    "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES"
    f" WHERE TABLE_SCHEMA {_NOT_SYSTEM} ORDER BY TABLE_SCHEMA, TABLE_NAME"
)
DATABASE_EXISTS = "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
TABLE_EXISTS = "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
ACCOUNTS_OF = "SELECT Host FROM mysql.user WHERE User = %s"
MANAGED_USERS = "SELECT DISTINCT User FROM mysql.user WHERE User LIKE %s ORDER BY User"
SESSIONS_OF = "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND ID <> CONNECTION_ID()"
CURRENT_USER = "SELECT CURRENT_USER()"
PRIVILEGES_OF = (
    "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s"
)
EVENTS_NAMED = "SELECT EVENT_SCHEMA FROM information_schema.EVENTS WHERE EVENT_NAME = %s"
EVENT_SCHEDULER = "SELECT @@GLOBAL.event_scheduler"
# Objects whose DEFINER is an account of Sluice's (made before `admin` stopped allowing them): they
# break once the account is dropped. Four times the same LIKE pattern as parameters.
DEFINED_BY = (
    "SELECT 'view', TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS WHERE DEFINER LIKE %s"
    " UNION ALL SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME FROM information_schema.TRIGGERS"
    " WHERE DEFINER LIKE %s"
    " UNION ALL SELECT 'routine', ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES"
    " WHERE DEFINER LIKE %s"
    " UNION ALL SELECT 'event', EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE DEFINER LIKE %s"
    " LIMIT 20"
)
