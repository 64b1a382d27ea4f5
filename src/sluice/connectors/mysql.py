"""MySQL / MariaDB connector: one temporary account per grant.

Resources are databases and their tables (views count as tables), with paths
`{integration}/{database}/{table}` whose segments escape `/` and `%`. Tags come from a `sluice: k=v`
line in a table's comment (and a database's, on MariaDB, which keeps one).

A grant creates the account `'{prefix}{tag}_{grant hex}'@'{user_host}'` (tag: seven hex digits of
the installation id and the integration's name; `user_host` must be named, '%' written out) with
`MAX_USER_CONNECTIONS`, and grants `read`, `write` or `admin` on a database or a table. `admin` never
includes creating views, triggers, routines or events: they would keep the temporary account as
DEFINER and break the owner's statements once it is dropped. Neither MariaDB nor MySQL 8 can both
hold a comment on an account, so the name is the marker: `list_managed` finds the accounts whose
name carries this installation's and integration's tag (or the legacy tag of the integration alone),
and reads the grant id back from it. On MariaDB the server is given the `mysql_native_password` hash,
never the password. The second lock is an event named as the account, in the granted database, that
drops the account at the grant's end plus a margin (`check` reports when the server cannot run it).
Revoking locks the account, kills its connections, drops it, kills again (a login that raced the
drop) and drops the event.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pymysql
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pymysql.cursors import Cursor

from sluice.connectors import mysql_sql as q
from sluice.connectors.base import (
    AccessUnit,
    ConnectorContext,
    DiscoveredResource,
    ManagedPrincipal,
    SecretRef,
)
from sluice.connectors.mysql_sql import Statement, Target
from sluice.connectors.paths import parse_tags, path_segment, split_path
from sluice.connectors.support import (
    PRINCIPAL_PREFIX,
    is_loopback,
    managed_by_name,
    plaintext_warning,
    require_own_name,
    resolved_secrets,
    scrub,
    tagged_principal,
)
from sluice.domain.errors import InvalidInput, TargetError

# Errors no retry can mend: the admin account lacks a privilege, or the statement is refused as such.
_LASTING = {1044, 1142, 1143, 1227, 1396, 1410, 1470}
_UNKNOWN_THREAD = 1094
_DENIED = {1044, 1142, 1227}


class MySQLConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = "root"
    password: SecretRef | None = None
    # TLS with the server's certificate and host name verified. Default: on toward any host but
    # this machine (or when ca_file is set); false sends passwords in clear, and `check` says so.
    tls: bool | None = None
    ca_file: str | None = None  # the CA that signed the server's certificate; default the system's
    databases: list[str] | None = None  # limit discovery; default every non-system database
    user_prefix: str = "sluice_"
    # The host part of the accounts Sluice creates: where grantees log in from. No default: '%'
    # (any host) must be written out, and `check` still warns about it.
    user_host: str | None = None
    max_user_connections: int = Field(default=10, ge=1, le=10_000)  # per account
    second_lock: bool = True  # a scheduled event drops the account at the grant's end + margin
    expiry_margin_seconds: int = Field(default=60, ge=0)
    public_host: str | None = None  # the host shown to grantees; default the host connected to
    connect_timeout_seconds: int = Field(default=5, ge=1)
    statement_timeout_seconds: int = Field(default=30, ge=1)

    @field_validator("user_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not PRINCIPAL_PREFIX.match(value):
            raise ValueError("user_prefix is a lowercase letter then up to 11 lowercase letters, digits or _")
        return value

    @field_validator("user_host")
    @classmethod
    def _plain_host(cls, value: str | None) -> str | None:
        if value is None or not value or len(value) > 255 or any(c.isspace() or c in "'\"`\\" for c in value):
            raise ValueError("user_host is a host name, address or pattern such as 10.0.% or app.internal")
        return value

    @model_validator(mode="after")
    def _host_named(self) -> MySQLConfig:
        if self.user_host is None:
            raise ValueError(
                "user_host: name where grantees log in from (a host, an address or a pattern such as"
                " 10.0.%); write '%' to allow any host"
            )
        return self

    @property
    def account_host(self) -> str:
        return self.user_host or "%"


class MySQLConnector:
    kind: ClassVar[str] = "mysql"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {
        "database": ("read", "write", "admin"),
        "table": ("read", "write", "admin"),
    }
    issues_secret: ClassVar[bool] = True
    config_model: ClassVar[type[BaseModel]] = MySQLConfig

    def __init__(self, integration_name: str, config: BaseModel, context: ConnectorContext) -> None:
        if not isinstance(config, MySQLConfig):
            raise TypeError("MySQLConnector takes a MySQLConfig")
        self.name = integration_name
        self.config = config
        self.context = context

    # --- the contract

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        return tagged_principal(self.config.user_prefix, self.name, self.context.installation, grant_id)

    def discover(self) -> Iterable[DiscoveredResource]:
        with self._errors(), self._cursor() as cur:
            mariadb = _is_mariadb(cur)
            databases = _rows(cur, Statement(q.SCHEMATA_MARIADB if mariadb else q.SCHEMATA_MYSQL))
            tables = _rows(cur, Statement(q.TABLES))
        wanted = self.config.databases
        found: list[DiscoveredResource] = []
        for db, comment in databases:
            if wanted is None or db in wanted:
                path = f"{self.name}/{path_segment(db)}"
                found.append(DiscoveredResource("database", db, path, None, parse_tags(comment)))
        known = {r.name for r in found}
        for db, table, comment in tables:
            if db in known:
                parent = f"{self.name}/{path_segment(db)}"
                path = f"{parent}/{path_segment(table)}"
                found.append(DiscoveredResource("table", table, path, parent, parse_tags(comment)))
        return found

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        target = self._target(unit)
        user, host = self._principal(unit), self.config.account_host
        if not unit.secret:
            raise TargetError(f"{self.name}: a MySQL grant needs a generated password", retryable=False)
        with self._errors(unit.secret), self._cursor() as cur:
            self._require_exists(cur, target)
            mariadb = _is_mariadb(cur)
            limit = self.config.max_user_connections
            _run(cur, q.create_user(user, host, unit.secret, mariadb=mariadb, max_connections=limit))
            # it may have existed
            _run(cur, q.set_password(user, host, unit.secret, mariadb=mariadb, max_connections=limit))
            _run(cur, q.grant_statement(target, unit.permission, user, host))
            self._second_lock(cur, target, user, host, unit.ends_at)
            details: dict[str, Any] = {
                "host": self.config.public_host or self.config.host,
                "port": self.config.port,
                "database": target.database,
                "username": user,
                "tls": self._tls is not None,
                "flavor": "mariadb" if mariadb else "mysql",
            }
            if target.table is not None:
                details["table"] = target.table
            return details

    def revoke(self, unit: AccessUnit) -> None:
        # The orphan sweep revokes by principal alone; an account is found by its user name only,
        # whatever host part it was made with.
        if unit.resource_path:
            self._target(unit)
        user = self._principal(unit)
        with self._errors(unit.secret), self._cursor() as cur:
            hosts = [row[0] for row in _rows(cur, Statement(q.ACCOUNTS_OF, (user,)))]
            for host in hosts:  # cut new logins first, so nothing gets in while sessions are killed
                _run(cur, Statement("ALTER USER IF EXISTS %s@%s ACCOUNT LOCK", (user, host)))
            self._kill_sessions(cur, user)
            for host in hosts:
                _run(cur, Statement("DROP USER IF EXISTS %s@%s", (user, host)))
            self._kill_sessions(cur, user)  # one that was logging in during the lock
            self._drop_events(cur, user)

    def list_managed(self) -> list[ManagedPrincipal]:
        with self._errors(), self._cursor() as cur:
            pattern = q.like_prefix(self.config.user_prefix)
            users = [row[0] for row in _rows(cur, Statement(q.MANAGED_USERS, (pattern,)))]
        found = [
            managed_by_name(self.config.user_prefix, self.name, self.context.installation, u) for u in users
        ]
        return [m for m in found if m is not None]

    def check(self) -> list[str]:
        try:
            with self._errors(), self._cursor() as cur:
                (current,) = _rows(cur, Statement(q.CURRENT_USER))[0]
                name, _, host = str(current).rpartition("@")
                grantee = f"'{name}'@'{host}'"
                held = {(p, g) for p, g in _rows(cur, Statement(q.PRIVILEGES_OF, (grantee,)))}
                databases = {r[0] for r in _rows(cur, Statement(q.SCHEMATA_MYSQL))}
                scheduler = str(_rows(cur, Statement(q.EVENT_SCHEDULER))[0][0])
                pattern = q.like_prefix(self.config.user_prefix) + "@%"
                defined = _rows(cur, Statement(q.DEFINED_BY, (pattern,) * 4))
        except TargetError as exc:
            return [*self._plaintext_problems(), f"cannot connect: {exc.detail}"]
        privileges = {p for p, _ in held}
        problems = self._plaintext_problems()
        if "CREATE USER" not in privileges:
            problems.append("the admin account lacks CREATE USER: it cannot create or drop accounts")
        if "PROCESS" not in privileges and "SUPER" not in privileges:
            problems.append("the admin account lacks PROCESS: it cannot see a revoked account's sessions")
        if not privileges & {"SUPER", "CONNECTION ADMIN", "CONNECTION_ADMIN"}:
            problems.append(
                "the admin account lacks CONNECTION ADMIN (or SUPER): it cannot end revoked sessions"
            )
        if self.config.second_lock:
            problems += self._second_lock_problems(privileges, scheduler)
        if self.config.account_host == "%":
            problems.append(
                "accounts are made on host '%': any host may log in with a grant's password; set"
                " user_host to where grantees connect from"
            )
        if defined:
            named = ", ".join(f"{kind} {schema}.{name}" for kind, schema, name in defined)
            problems.append(
                f"objects whose DEFINER is a Sluice account fail once it is dropped (error 1449); give"
                f" them another definer: {named}"
            )
        lacking = [p for p in q.GRANTABLE_NEEDED if (p, "YES") not in held]
        if lacking:
            problems.append(
                "the admin account does not hold these globally WITH GRANT OPTION, so it can grant them "
                f"only where it holds them itself: {', '.join(lacking)}"
            )
        missing = [db for db in self.config.databases or [] if db not in databases]
        if missing:
            problems.append(f"configured databases not found: {', '.join(missing)}")
        return problems

    # --- steps and helpers

    def _second_lock(
        self, cur: Cursor, target: Target, user: str, host: str, ends_at: datetime | None
    ) -> None:
        """An event in the granted database drops the account at the end plus the margin, so it
        cannot log in after its end even when the worker is down or the server was unreachable then.
        Without the EVENT privilege there the grant goes on without it; `check` reports that."""
        self._drop_events(cur, user)  # an extension moves the end: one event, at the new time
        if not self.config.second_lock or ends_at is None:
            return
        at = ends_at.replace(tzinfo=ends_at.tzinfo or UTC) + timedelta(
            seconds=self.config.expiry_margin_seconds
        )
        text = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        try:
            _run(cur, q.expiry_event(target.database, user, host, text))
        except pymysql.err.MySQLError as exc:
            if not (exc.args and exc.args[0] in _DENIED):
                raise

    def _drop_events(self, cur: Cursor, user: str) -> None:
        for (schema,) in _rows(cur, Statement(q.EVENTS_NAMED, (user,))):
            _run(cur, q.drop_event(schema, user))

    def _plaintext_problems(self) -> list[str]:
        if self._tls is not None or is_loopback(self.config.host):
            return []
        return [plaintext_warning(self.config.host, "tls: false")]

    @staticmethod
    def _second_lock_problems(privileges: set[str], scheduler: str) -> list[str]:
        problems = []
        if "EVENT" not in privileges:
            problems.append(
                "the admin account lacks EVENT: no second lock (a scheduled event that drops an account"
                " at its end when Sluice cannot), so only a running worker ends access"
            )
        if scheduler.upper() not in ("ON", "1"):
            problems.append(
                "the server's event_scheduler is OFF: the second lock's events never run; set"
                " event_scheduler=ON, or second_lock: false to accept that only the worker ends access"
            )
        return problems

    def _require_exists(self, cur: Cursor, target: Target) -> None:
        if target.table is None:
            present = _rows(cur, Statement(q.DATABASE_EXISTS, (target.database,)))
        else:
            present = _rows(cur, Statement(q.TABLE_EXISTS, (target.database, target.table)))
        if not present:
            raise TargetError(f"{self.name}: no {target.type} {target}", retryable=False)

    def _kill_sessions(self, cur: Cursor, user: str) -> None:
        for (session_id,) in _rows(cur, Statement(q.SESSIONS_OF, (user,))):
            try:
                _run(cur, Statement("KILL CONNECTION %s", (int(session_id),)))
            except pymysql.err.MySQLError as exc:
                if exc.args and exc.args[0] == _UNKNOWN_THREAD:
                    continue  # it ended by itself meanwhile
                raise

    def _target(self, unit: AccessUnit) -> Target:
        names = split_path(self.name, unit.resource_path)
        if names is None or not 1 <= len(names) <= 2 or any(len(n) > q.MAX_IDENTIFIER for n in names):
            raise TargetError(
                f"{unit.resource_path!r} is not a resource path of {self.name}", retryable=False
            )
        target = Target(*names)
        if target.type != unit.resource_type:
            raise TargetError(
                f"{unit.resource_path!r} is a {target.type}, not a {unit.resource_type}", retryable=False
            )
        if unit.permission not in self.permissions[target.type]:
            raise TargetError(f"{unit.permission!r} cannot be granted on a {target.type}", retryable=False)
        return target

    def _principal(self, unit: AccessUnit) -> str:
        return require_own_name(
            self.config.user_prefix,
            self.name,
            self.context.installation,
            unit.principal,
            unit.grant_id,
            "an account",
        )

    @contextmanager
    def _errors(self, *extra: str | None) -> Iterator[None]:
        """Turn driver errors into TargetError, with every secret scrubbed from the text."""
        try:
            yield
        except TargetError:
            raise
        except (pymysql.err.MySQLError, OSError, InvalidInput, ValueError) as exc:
            detail = exc.detail if isinstance(exc, InvalidInput) else str(exc).strip()
            code = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
            retryable = (
                isinstance(
                    exc,
                    pymysql.err.OperationalError
                    | pymysql.err.InterfaceError
                    | pymysql.err.InternalError
                    | OSError
                    | InvalidInput,
                )
                and code not in _LASTING
            )
            secrets = resolved_secrets([self.config.password], extra)
            raise TargetError(f"{self.name}: {scrub(detail, secrets)}", retryable=retryable) from None

    @property
    def _tls(self) -> ssl.SSLContext | None:
        wanted = self.config.tls
        if wanted is None:
            wanted = bool(self.config.ca_file) or not is_loopback(self.config.host)
        return ssl.create_default_context(cafile=self.config.ca_file) if wanted else None

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        password = self.config.password.resolve(f"{self.name} password") if self.config.password else ""
        ssl = self._tls
        conn = pymysql.connect(
            host=self.config.host,
            port=self.config.port,
            user=self.config.user,
            password=password,
            connect_timeout=self.config.connect_timeout_seconds,
            read_timeout=self.config.statement_timeout_seconds,
            write_timeout=self.config.statement_timeout_seconds,
            autocommit=True,
            charset="utf8mb4",
            ssl=ssl,
            init_command=(
                f"SET SESSION lock_wait_timeout = {int(self.config.statement_timeout_seconds)},"
                " time_zone = '+00:00'"
            ),
            program_name="sluice",
        )
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()


def _run(cur: Cursor, statement: Statement) -> None:
    cur.execute(statement.text, statement.params)


def _rows(cur: Cursor, statement: Statement) -> list[tuple[Any, ...]]:
    cur.execute(statement.text, statement.params)
    return list(cur.fetchall())


def _is_mariadb(cur: Cursor) -> bool:
    return "mariadb" in str(_rows(cur, Statement("SELECT VERSION()"))[0][0]).lower()
