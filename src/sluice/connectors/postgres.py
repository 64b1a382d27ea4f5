"""PostgreSQL connector: temporary login roles on a PostgreSQL server.

Resources are databases, schemas and tables (views, partitioned tables, materialized views and foreign
tables count as tables), with paths `{integration}/{db}/{schema}/{table}` whose segments escape `/` and
`%`. Tags come from a `sluice: k=v k2=v2` line in an object's COMMENT.

Scale: privileges are never granted to the per-grant login roles. Each (resource, permission) has one
shared NOLOGIN privilege role (`{prefix}p_{hash}`) holding the privileges; a grant creates a LOGIN role
(`{prefix}{grant id}`) that is a member of it, so an object's ACL does not grow with the number of
grants. The login role's COMMENT marks it with its grant, integration and installation (the store
that made it), which is how `list_managed` finds it. Its password is a SCRAM verifier computed here,
so the plaintext never reaches the server; `VALID UNTIL` is set to the grant's end plus a margin as a
second lock. Revoking turns login off, ends the role's sessions, then drops what it owns and the role
itself; the shared privilege role stays for the other grants.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluice.connectors import postgres_sql as q
from sluice.connectors.base import (
    AccessUnit,
    ConnectorContext,
    DiscoveredResource,
    Leftovers,
    ManagedPrincipal,
    SecretRef,
)
from sluice.connectors.pg_pool import ConnectionPool
from sluice.connectors.postgres_leftovers import remove_privilege_roles
from sluice.connectors.postgres_sql import Target, path_segment, segment_name
from sluice.connectors.support import is_loopback, plaintext_warning
from sluice.domain.errors import InvalidInput, TargetError

__all__ = ["PostgresConfig", "PostgresConnector", "path_segment", "segment_name"]

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
_PLAINTEXT_MODES = ("disable", "allow", "prefer")
_ROLE_PREFIX = re.compile(r"^[a-z0-9_]{1,20}$")
_ALREADY_THERE = (errors.DuplicateObject, errors.UniqueViolation)
_TERMINATE_WAIT_MS = 5000


class PostgresConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    user: str = "postgres"
    dbname: str = "postgres"  # the maintenance database, where roles are managed
    password: SecretRef | None = None
    url: SecretRef | None = None  # a whole libpq URL; replaces host, port, user, dbname and password
    databases: list[str] | None = None  # limit discovery; default every database that allows connections
    role_prefix: str = "sluice_"
    public_host: str | None = None  # the host shown to grantees; default the host connected to
    # TLS as libpq names it. Default: verify-full (certificate and host name checked) toward any
    # host but this machine, prefer on loopback; an sslmode in `url` is kept.
    sslmode: SslMode | None = None
    ca_file: str | None = None  # the CA that signed the server's certificate; default the system's
    expiry_margin_seconds: int = Field(default=60, ge=0)
    connect_timeout_seconds: int = Field(default=5, ge=1)
    statement_timeout_seconds: int = Field(default=30, ge=1)

    @field_validator("role_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not _ROLE_PREFIX.match(value):
            raise ValueError("role_prefix is 1 to 20 lowercase letters, digits or underscores")
        return value


class PostgresConnector:
    kind: ClassVar[str] = "postgresql"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {
        "database": ("connect",),
        "schema": ("read", "write"),
        "table": ("read", "write"),
    }
    issues_secret: ClassVar[bool] = True
    config_model: ClassVar[type[BaseModel]] = PostgresConfig

    def __init__(self, integration_name: str, config: BaseModel, context: ConnectorContext) -> None:
        if not isinstance(config, PostgresConfig):
            raise TypeError("PostgresConnector takes a PostgresConfig")
        self.name = integration_name
        self.config = config
        self.context = context
        # grant and revoke borrow admin connections from here; discovery and checks connect afresh
        self._pool = ConnectionPool(self._connect)

    # --- the contract

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        return self.config.role_prefix + grant_id.split("_", 1)[-1]

    def discover(self) -> Iterable[DiscoveredResource]:
        with self._errors():
            with self._connect() as admin:
                databases = admin.execute(q.DATABASES).fetchall()
            wanted = self.config.databases
            for db, db_comment in databases:
                if wanted is not None and db not in wanted:
                    continue
                db_path = f"{self.name}/{path_segment(db)}"
                yield DiscoveredResource("database", db, db_path, None, q.parse_tags(db_comment))
                with self._connect(db) as conn:
                    schemas = conn.execute(q.SCHEMAS).fetchall()
                    tables = conn.execute(q.TABLES).fetchall()
                for schema, comment in schemas:
                    path = f"{db_path}/{path_segment(schema)}"
                    yield DiscoveredResource("schema", schema, path, db_path, q.parse_tags(comment))
                for schema, table, comment in tables:
                    parent = f"{db_path}/{path_segment(schema)}"
                    path = f"{parent}/{path_segment(table)}"
                    yield DiscoveredResource("table", table, path, parent, q.parse_tags(comment))

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        target = self._target(unit)
        login = self._principal(unit)
        if not unit.secret:
            raise TargetError(f"{self.name}: a PostgreSQL grant needs a generated password", retryable=False)
        verifier = q.scram_sha256_verifier(unit.secret, iterations=q.GRANT_SCRAM_ITERATIONS)
        privilege = q.privilege_role_name(self.config.role_prefix, unit.resource_path, unit.permission)
        # A table's grant runs on a connection to its database, where its ACLs can be read; roles are
        # the cluster's, so the login is made there too.
        home = target.database if target.schema is not None else None
        with self._errors(unit.secret, verifier), self._pool.borrow(home) as admin:
            if not self._grant_at_once(admin, unit, target, login, verifier, privilege):
                self._ensure_privilege_role(admin, privilege, unit)
                with admin.transaction():
                    admin.execute(q.LOCK, [q.lock_key(Target(target.database))])
                    for statement in q.database_grants(target, privilege):
                        admin.execute(statement)
                if target.schema is not None:
                    with self._connect_to(admin, target.database) as conn:
                        self._grant_objects(conn, target, unit.permission, privilege)
                self._ensure_login(admin, unit, login, verifier, privilege)
            return {
                "host": self.config.public_host or admin.info.host,
                "port": admin.info.port,
                "database": target.database,
                "username": login,
                "sslmode": admin.info.get_parameters().get("sslmode", "prefer"),
            }

    def revoke(self, unit: AccessUnit) -> None:
        # The orphan sweep revokes by principal alone (no resource path): the databases to clean are
        # then found from the role's dependencies only.
        database = self._target(unit).database if unit.resource_path else None
        login = self._principal(unit)
        ident = sql.Identifier(login)
        with self._errors(unit.secret), self._pool.borrow() as admin:
            row = admin.execute(q.ROLE, [login]).fetchone()
            if row is None:
                return
            role_oid, comment = row
            self._require_marker(login, comment, unit.grant_id)
            # Three round trips on the admin connection: the marker (read above), then access cut
            # (NOLOGIN, sessions ended) with the databases to clean, then the clean-up and the drop,
            # each step pipelined in the order written.
            try:
                with admin.pipeline():
                    # Cut access first, so an open session ends even if a later step fails. Statements
                    # between two protocol Syncs share one transaction, so NOLOGIN gets a transaction
                    # of its own: it is committed before any session is ended, and an ended session
                    # cannot log in again while the rest of this step runs.
                    with admin.transaction():
                        admin.execute(sql.SQL("ALTER ROLE {} WITH NOLOGIN").format(ident))
                    self._terminate(admin, login)
                    found = admin.execute(q.ROLE_DATABASES, [database, role_oid])
                databases = [r[0] for r in found.fetchall()]
                for db in databases:
                    if db != admin.info.dbname:
                        with self._pool.borrow(db) as conn, conn.pipeline(), conn.transaction():
                            self._drop_owned(conn, ident)
                with admin.pipeline():
                    if admin.info.dbname in databases:
                        with admin.transaction():
                            self._drop_owned(admin, ident)
                    self._terminate(admin, login)  # a session that was authenticating during the ALTER
                    admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            except errors.UndefinedObject:
                return  # dropped meanwhile: gone is what we want

    @staticmethod
    def _drop_owned(conn: psycopg.Connection[Any], ident: sql.Identifier) -> None:
        """Hand what the role made in this database to the admin, and drop its privileges here."""
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(ident))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))

    def list_managed(self) -> list[ManagedPrincipal]:
        with self._errors(), self._connect() as admin:
            rows = admin.execute(q.MANAGED_ROLES, [self.config.role_prefix]).fetchall()
        found = []
        for role, comment in rows:
            mark = q.parse_grant_comment(comment, self.name)
            if mark is not None and mark.installation in (self.context.installation, None):
                legacy = mark.installation is None
                found.append(ManagedPrincipal(principal=role, grant_id=mark.grant_id, legacy=legacy))
        return found

    def check(self) -> list[str]:
        try:
            with self._errors(), self._connect() as admin:
                version = admin.info.server_version
                role = admin.execute(q.ADMIN_ROLE).fetchone()
                databases = {r[0] for r in admin.execute(q.DATABASES)}
        except TargetError as exc:
            return [*self._plaintext_problems(), f"cannot connect: {exc.detail}"]
        problems = self._plaintext_problems()
        if version < 140000:
            problems.append("PostgreSQL 14 or later is needed (the server is older)")
        if role is not None:
            superuser, createrole, signal = role
            if not superuser and not createrole:
                problems.append(
                    "the admin role lacks CREATEROLE and is not a superuser: it cannot create roles"
                )
            if not superuser and not signal:
                problems.append(
                    "the admin role is not a member of pg_signal_backend: it cannot end revoked sessions"
                )
        missing = [db for db in self.config.databases or [] if db not in databases]
        if missing:
            problems.append(
                f"configured databases not found or not open to connections: {', '.join(missing)}"
            )
        return problems

    def remove_leftovers(self) -> Leftovers:
        """The privilege roles of this integration's resources, once no grant of it is live."""
        with self._errors():
            return remove_privilege_roles(
                self._pool.borrow,
                prefix=self.config.role_prefix,
                integration=self.name,
                maintenance_db=self.config.dbname,
            )

    # --- steps

    def _grant_at_once(
        self,
        conn: psycopg.Connection[Any],
        unit: AccessUnit,
        target: Target,
        login: str,
        verifier: str,
        privilege: str,
    ) -> bool:
        """The common case in one round trip: the privilege role already holds its privileges and the
        login is new. The login is created, marked and made a member in one pipelined transaction that
        also reads whether the privilege role is ready. False when the full path must run: the login
        exists (a retry), the privilege role is missing or lacks a privilege (the first grant of this
        resource and permission, or one changed by hand). A login committed here before its privilege
        role was ready is harmless: it holds less than the grant, and the full path completes it."""
        ready = q.privilege_ready(target, unit.permission, privilege)
        if ready is None:
            return False
        ident = sql.Identifier(login)
        marker = sql.Literal(q.grant_comment(unit.grant_id, self.name, self.context.installation))
        try:
            with conn.pipeline(), conn.transaction():
                conn.execute(
                    sql.SQL("CREATE ROLE {} WITH ").format(ident) + self._login_options(unit, verifier)
                )
                conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, marker))
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(privilege), ident))
                answer = conn.execute(ready)
        except (*_ALREADY_THERE, errors.UndefinedObject):
            return False
        row = answer.fetchone()
        return bool(row and row[0])

    def _login_options(self, unit: AccessUnit, verifier: str) -> sql.Composed:
        return sql.SQL("LOGIN INHERIT PASSWORD {} VALID UNTIL {}").format(
            sql.Literal(verifier), sql.Literal(self._valid_until(unit.ends_at))
        )

    def _ensure_privilege_role(self, admin: psycopg.Connection[Any], role: str, unit: AccessUnit) -> None:
        ident = sql.Identifier(role)
        comment = q.privilege_comment(unit.resource_path, unit.permission)
        try:
            with admin.transaction():
                admin.execute(sql.SQL("CREATE ROLE {} WITH NOLOGIN").format(ident))
                admin.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(comment)))
        except _ALREADY_THERE:
            pass  # made earlier, or by another worker just now

    def _grant_objects(
        self, conn: psycopg.Connection[Any], target: Target, permission: str, role: str
    ) -> None:
        owners: list[str] = []
        sequences: list[tuple[str, str]] = []
        if target.table is None:
            owners = [r[0] for r in conn.execute(q.SCHEMA_OWNER, [target.schema])]
        elif permission == "write":
            sequences = [(r[0], r[1]) for r in conn.execute(q.TABLE_SEQUENCES, [target.schema, target.table])]
        with conn.transaction():
            conn.execute(q.LOCK, [q.lock_key(target)])
            for statement in q.object_grants(
                target, permission, role, default_owners=owners, sequences=sequences
            ):
                conn.execute(statement)

    def _ensure_login(
        self, admin: psycopg.Connection[Any], unit: AccessUnit, login: str, verifier: str, privilege: str
    ) -> None:
        ident = sql.Identifier(login)
        options = self._login_options(unit, verifier)
        marker = sql.Literal(q.grant_comment(unit.grant_id, self.name, self.context.installation))
        for attempt in range(2):
            try:
                with admin.transaction():
                    row = admin.execute(q.ROLE, [login]).fetchone()
                    if row is None:
                        admin.execute(sql.SQL("CREATE ROLE {} WITH ").format(ident) + options)
                    else:
                        self._require_marker(login, row[1], unit.grant_id)
                        admin.execute(sql.SQL("ALTER ROLE {} WITH ").format(ident) + options)
                    if row is None or q.parse_grant_comment(row[1], self.name) != q.GrantMark(
                        unit.grant_id, self.context.installation
                    ):  # a new role, or a legacy marker that now gains this installation's id
                        admin.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, marker))
                    admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(privilege), ident))
                return
            except _ALREADY_THERE:
                if attempt:
                    raise  # another worker created it at the same moment: the second pass alters it

    def _terminate(self, admin: psycopg.Connection[Any], login: str) -> None:
        wait = min(_TERMINATE_WAIT_MS, self.config.statement_timeout_seconds * 500)
        admin.execute(q.TERMINATE, [wait, login])

    # --- helpers

    def _valid_until(self, ends_at: datetime | None) -> str:
        if ends_at is None:
            return "infinity"
        if ends_at.tzinfo is None:
            ends_at = ends_at.replace(tzinfo=UTC)
        return (ends_at + timedelta(seconds=self.config.expiry_margin_seconds)).astimezone(UTC).isoformat()

    def _target(self, unit: AccessUnit) -> Target:
        path = unit.resource_path
        head = self.name + "/"
        parts = path[len(head) :].split("/") if path.startswith(head) else []
        names = [segment_name(p) for p in parts]
        if not 1 <= len(names) <= 3 or any(not n or "\0" in n for n in names):
            raise TargetError(f"{path!r} is not a resource path of {self.name}", retryable=False)
        target = Target(*names)
        if target.type != unit.resource_type:
            raise TargetError(f"{path!r} is a {target.type}, not a {unit.resource_type}", retryable=False)
        if unit.permission not in self.permissions[target.type]:
            raise TargetError(f"{unit.permission!r} cannot be granted on a {target.type}", retryable=False)
        return target

    def _principal(self, unit: AccessUnit) -> str:
        name = unit.principal
        prefix = self.config.role_prefix
        if not name.startswith(prefix) or len(name) == len(prefix) or len(name.encode()) > 63:
            raise TargetError(f"{name!r} is not a role name {self.name} manages", retryable=False)
        if name.startswith(prefix + "p_"):
            raise TargetError(f"{name!r} is a privilege role name, not a login", retryable=False)
        return name

    def _require_marker(self, login: str, comment: str | None, grant_id: str) -> None:
        """A role is touched only when it is marked as this grant of this integration, made by this
        installation (or by one before markers named their installation)."""
        mark = q.parse_grant_comment(comment, self.name)
        if (
            mark is None
            or mark.grant_id != grant_id
            or mark.installation not in (self.context.installation, None)
        ):
            raise TargetError(
                f"role {login!r} exists but is not marked as grant {grant_id} of {self.name} in this "
                "installation; left untouched",
                retryable=False,
            )

    def _secrets(self, extra: Iterable[str | None]) -> list[str]:
        """Every secret text that must not show in an error: admin password, URL, URL password."""
        found = [s for s in extra if s]
        for ref in (self.config.password, self.config.url):
            if ref is not None:
                with suppress(InvalidInput):
                    found.append(ref.resolve("secret"))
        if self.config.url is not None:
            with suppress(InvalidInput):
                url = self.config.url.resolve("url")
                with suppress(ValueError):
                    found.append(urlsplit(url).password or "")
                with suppress(psycopg.Error):
                    found.append(str(conninfo_to_dict(url).get("password") or ""))
        return sorted({s for s in found if s}, key=len, reverse=True)

    @contextmanager
    def _errors(self, *extra: str | None) -> Iterator[None]:
        """Turn driver errors into TargetError, with every secret scrubbed from the text."""
        try:
            yield
        except TargetError:
            raise
        except (psycopg.Error, InvalidInput) as exc:
            detail = exc.detail if isinstance(exc, InvalidInput) else str(exc).strip()
            for secret in self._secrets(extra):
                detail = detail.replace(secret, "***")
            retryable = isinstance(
                exc, psycopg.OperationalError | psycopg.InterfaceError | psycopg.InternalError | InvalidInput
            )
            sqlstate = getattr(exc, "sqlstate", None)
            raise TargetError(f"{self.name}: {detail}", retryable=retryable, sqlstate=sqlstate) from None

    def _connect(self, dbname: str | None = None) -> psycopg.Connection[Any]:
        params: dict[str, Any] = {}
        if self.config.url is not None:
            conninfo = self.config.url.resolve(f"{self.name} url")
        else:
            conninfo = ""
            params = {"host": self.config.host, "port": self.config.port, "user": self.config.user}
            params["dbname"] = self.config.dbname
            if self.config.password is not None:
                params["password"] = self.config.password.resolve(f"{self.name} password")
        if dbname is not None:
            params["dbname"] = dbname
        params.update(self._tls_params(conninfo))
        conn = psycopg.connect(
            conninfo,
            autocommit=True,
            connect_timeout=self.config.connect_timeout_seconds,
            application_name="sluice",
            **params,
        )
        try:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                [f"{self.config.statement_timeout_seconds}s"],
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _tls_params(self, conninfo: str) -> dict[str, str]:
        """sslmode (and the CA to verify with) for a connection: the config's, the URL's own, or
        verify-full toward a host that is not this machine."""
        given = conninfo_to_dict(conninfo) if conninfo else {}
        mode = self.config.sslmode or given.get("sslmode")
        if mode is None:
            host = str(given.get("host") or "") if conninfo else self.config.host
            mode = "prefer" if is_loopback(host) else "verify-full"
        params = {"sslmode": str(mode)}
        if mode in ("verify-ca", "verify-full") and "sslrootcert" not in given:
            params["sslrootcert"] = self.config.ca_file or "system"
        return params

    def _plaintext_problems(self) -> list[str]:
        with suppress(InvalidInput, psycopg.Error):
            conninfo = self.config.url.resolve(f"{self.name} url") if self.config.url else ""
            host = str(conninfo_to_dict(conninfo).get("host") or "") if conninfo else self.config.host
            mode = self._tls_params(conninfo)["sslmode"]
            if mode in _PLAINTEXT_MODES and not is_loopback(host):
                return [plaintext_warning(host, f"sslmode={mode}")]
        return []

    @contextmanager
    def _connect_to(self, admin: psycopg.Connection[Any], dbname: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection to `dbname`: the admin one when it is already there, else a new one."""
        if admin.info.dbname == dbname:
            yield admin
        else:
            with self._pool.borrow(dbname) as conn:
                yield conn
