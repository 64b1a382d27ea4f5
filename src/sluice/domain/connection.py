"""What a grantee needs to reach a target, typed per kind of target, and the ready client hints built
from it: the command line a person runs (`psql`, `mysql`, `redis-cli`, `ldapsearch`) and the
environment variables those clients read (`PGHOST=…`, `MYSQL_PWD=…`, `REDISCLI_AUTH=…`).

A connector's `grant` returns loose, non-secret details; `connection_of` reads them into the model of
the integration's kind (a kind without one keeps its details as they are). The password never goes
into a command line (other users of the machine could read it from the process list): the hints read
it from the environment, which `sluice access credentials ID --env` prints."""

from __future__ import annotations

import shlex
from typing import Any, Literal, cast

from pydantic import BaseModel, ValidationError


class PostgresConnection(BaseModel):
    kind: Literal["postgresql"] = "postgresql"
    host: str
    port: int
    database: str
    username: str
    sslmode: str | None = None  # as libpq names it: disable, prefer, require, verify-ca, verify-full


class MySQLConnection(BaseModel):
    kind: Literal["mysql"] = "mysql"
    host: str
    port: int
    database: str
    table: str | None = None
    username: str
    tls: bool = False  # the server's certificate is verified
    flavor: Literal["mariadb", "mysql"] | None = None  # which client's TLS flags apply


class RedisConnection(BaseModel):
    kind: Literal["redis"] = "redis"
    host: str
    port: int
    username: str
    key_prefix: str
    tls: bool = False


class LdapGroupConnection(BaseModel):
    kind: Literal["ldap_groups"] = "ldap_groups"
    url: str | None = None
    group: str
    member: str
    attribute: str


class SshConnection(BaseModel):
    kind: Literal["ssh"] = "ssh"
    grant_id: str
    host: str
    port: int
    username: str
    certificate: str  # the OpenSSH user certificate (public); the private key comes with the credentials
    certificate_principal: str
    key_id: str
    valid_before: str


class OtherConnection(BaseModel):
    """The details of a kind Sluice has no model for (built-in groups, the HTTP protocol, plugins)."""

    kind: str
    details: dict[str, Any]


Connection = (
    PostgresConnection
    | MySQLConnection
    | RedisConnection
    | LdapGroupConnection
    | SshConnection
    | OtherConnection
)
_MODELS: dict[str, type[BaseModel]] = {
    "postgresql": PostgresConnection,
    "mysql": MySQLConnection,
    "redis": RedisConnection,
    "ldap_groups": LdapGroupConnection,
    "ssh": SshConnection,
}
SECRET_FIELDS = ("password", "private_key")  # credentials: never part of the connection


def connection_of(kind: str, details: dict[str, Any]) -> Connection:
    """The typed connection of a grant of `kind`; details that do not fit the kind's model (a grant
    made by an older connector) are kept as they are rather than lost."""
    model = _MODELS.get(kind)
    plain = {k: v for k, v in details.items() if k not in SECRET_FIELDS}
    if model is not None:
        try:
            return cast(Connection, model.model_validate({**plain, "kind": kind}))
        except ValidationError:
            pass
    return OtherConnection(kind=kind, details=plain)


def _libpq_value(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "_.@:/+=-" for c in text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _filter_value(value: str) -> str:
    """A value for an LDAP filter (RFC 4515): `\\`, `*`, `(`, `)` and NUL escaped."""
    return "".join(f"\\{ord(c):02x}" if c in "\\*()\0" else c for c in value)


def client_command(connection: Connection) -> str | None:
    """The command line that opens the target's own client as the grantee (the password is read from
    the environment `client_env` gives), or None for a kind with no such client."""
    words: list[str]
    if isinstance(connection, PostgresConnection):
        pairs = [
            ("host", connection.host),
            ("port", connection.port),
            ("dbname", connection.database),
            ("user", connection.username),
        ]
        if connection.sslmode:
            pairs.append(("sslmode", connection.sslmode))
        words = ["psql", " ".join(f"{k}={_libpq_value(v)}" for k, v in pairs)]
    elif isinstance(connection, MySQLConnection):
        words = ["mysql", f"--host={connection.host}", f"--port={connection.port}"]
        words += [f"--user={connection.username}"]
        if connection.tls:
            words += (
                ["--ssl-mode=VERIFY_IDENTITY"]
                if connection.flavor == "mysql"
                else ["--ssl", "--ssl-verify-server-cert"]
            )
        words.append(connection.database)
    elif isinstance(connection, RedisConnection):
        words = [
            "redis-cli",
            "-h",
            connection.host,
            "-p",
            str(connection.port),
            "--user",
            connection.username,
        ]
        if connection.tls:
            words.append("--tls")
    elif isinstance(connection, SshConnection):
        words = ["sluice", "access", "ssh-key", connection.grant_id]  # writes the key, prints the ssh line
    elif isinstance(connection, LdapGroupConnection) and connection.url:
        words = ["ldapsearch", "-H", connection.url, "-x", "-LLL", "-b", connection.group, "-s", "base"]
        words += [f"({connection.attribute}={_filter_value(connection.member)})", "dn"]
    else:
        return None
    return shlex.join(words)


def client_env(connection: Connection, password: str | None) -> dict[str, str]:
    """The environment variables the kind's client reads, the password among them."""
    env: dict[str, str] = {}
    if isinstance(connection, PostgresConnection):
        env = {
            "PGHOST": connection.host,
            "PGPORT": str(connection.port),
            "PGDATABASE": connection.database,
            "PGUSER": connection.username,
        }
        if connection.sslmode:
            env["PGSSLMODE"] = connection.sslmode
        if password:
            env["PGPASSWORD"] = password
    elif isinstance(connection, MySQLConnection):
        env = {"MYSQL_HOST": connection.host, "MYSQL_TCP_PORT": str(connection.port)}
        if password:
            env["MYSQL_PWD"] = password
    elif isinstance(connection, RedisConnection) and password:
        env["REDISCLI_AUTH"] = password
    return env


def env_lines(env: dict[str, str]) -> list[str]:
    """`NAME=value` lines a POSIX shell can `eval`, each value quoted."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
