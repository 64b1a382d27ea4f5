"""Redis connector: one ACL user per grant, limited to the keys of a namespace.

Resources are key-prefix namespaces: declared in the config (name, prefix, tags) and, when `scan` is
set, found by scanning the keyspace with a bound on the keys examined (each key's first segment before
the separator names a namespace). Paths are `{integration}/{namespace}`.

A grant creates the ACL user `{prefix}{tag}_{grant hex}` with `reset`, the SHA-256 of its password
(`#…`: Redis never sees the password itself), no pub/sub channels, the key pattern of the namespace
(`%R~` read-only for `read`, `%RW~` for `write`), the command rules of the permission, then
`ALWAYS_DENIED`: no command that lists key names, switches database or touches the server. Rules are
built from validated tokens, never by escaping: a prefix with a space or a control character is
refused. Redis keeps no comment on an ACL user, so the name is the marker `list_managed` reads: the
tag is seven hex digits of the installation id and the integration's name (`installation_tag`).
Revoking turns the user off, kills its clients and deletes it; a user already gone is success.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import redis
from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis.backoff import NoBackoff
from redis.retry import Retry

from sluice.connectors.base import (
    AccessUnit,
    ConnectorContext,
    DiscoveredResource,
    ManagedPrincipal,
    SecretRef,
)
from sluice.connectors.paths import path_segment, split_path
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

# A key prefix is printable and has no space: it goes into an ACL rule as one token.
_PREFIX = re.compile(r"^[\x21-\x7e\u00a0-\U0010ffff]{1,200}$")
_RULE = re.compile(r"^[+-]@?[a-z][a-z0-9|_-]*$")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
# A client's own connection: answer a ping, name itself, reset itself. No SELECT, no HELLO-driven
# protocol switch to another user, nothing about other clients.
_CONNECTION = ["+ping", "+echo", "+auth", "+client|setname", "+client|getname", "+client|id", "+reset"]
DEFAULT_RULES: dict[str, list[str]] = {
    "read": ["-@all", "+@read", "-@dangerous", *_CONNECTION],
    "write": ["-@all", "+@read", "+@write", "-@dangerous", *_CONNECTION],
}
# Appended after every permission's rules, the config's own included, so no rule set can open them:
# commands that name keys beyond the grant's pattern (SCAN, KEYS, RANDOMKEY, DBSIZE), reach another
# logical database (SELECT, SWAPDB, MOVE, COPY … DB), or act on the server or other clients.
ALWAYS_DENIED = [
    "-@dangerous",
    "-@admin",
    "-scan",
    "-keys",
    "-randomkey",
    "-dbsize",
    "-select",
    "-swapdb",
    "-move",
    "-copy",
]
_KEY_ACCESS = {"read": "%R~", "write": "%RW~"}


def _valid_prefix(value: str) -> str:
    if not _PREFIX.match(value):
        raise ValueError("a key prefix is 1 to 200 printable characters with no space or control character")
    return value


class Namespace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    prefix: str
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("prefix")
    @classmethod
    def _token(cls, value: str) -> str:
        return _valid_prefix(value)


class Scan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    separator: str = Field(default=":", min_length=1, max_length=1)
    max_keys: int = Field(default=10_000, ge=1, le=1_000_000)  # the bound: keys examined per discovery
    batch: int = Field(default=500, ge=1, le=10_000)
    db: int = Field(default=0, ge=0)


class RedisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=6379, ge=1, le=65535)
    username: str | None = None  # default: the `default` user
    password: SecretRef | None = None
    # TLS with the server's certificate and host name verified. Default: on toward any host but
    # this machine; false sends passwords in clear, and `check` says so.
    tls: bool | None = None
    ca_file: str | None = None  # the CA that signed the server's certificate; default the system's
    namespaces: list[Namespace] = Field(default_factory=list)
    scan: Scan | None = None
    user_prefix: str = "sluice_"
    rules: dict[str, list[str]] = Field(default_factory=lambda: copy.deepcopy(DEFAULT_RULES))
    save_acl: bool = False  # run ACL SAVE after each change, for servers that keep users in an aclfile
    public_host: str | None = None
    connect_timeout_seconds: float = Field(default=5, gt=0)
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("user_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not PRINCIPAL_PREFIX.match(value):
            raise ValueError("user_prefix is a lowercase letter then up to 11 lowercase letters, digits or _")
        return value

    @field_validator("rules")
    @classmethod
    def _plain_rules(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if set(value) != set(DEFAULT_RULES):
            raise ValueError("rules names exactly the permissions read and write")
        for rule in (r for rules in value.values() for r in rules):
            if not _RULE.match(rule):
                raise ValueError(f"{rule!r} is not a command rule such as +@read, -@dangerous or +get")
        return value


class RedisConnector:
    kind: ClassVar[str] = "redis"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"namespace": ("read", "write")}
    issues_secret: ClassVar[bool] = True
    config_model: ClassVar[type[BaseModel]] = RedisConfig

    def __init__(self, integration_name: str, config: BaseModel, context: ConnectorContext) -> None:
        if not isinstance(config, RedisConfig):
            raise TypeError("RedisConnector takes a RedisConfig")
        self.name = integration_name
        self.config = config
        self.context = context

    # --- the contract

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        return tagged_principal(self.config.user_prefix, self.name, self.context.installation, grant_id)

    def discover(self) -> Iterable[DiscoveredResource]:
        found = {ns.name: dict(ns.tags) for ns in self.config.namespaces}
        scan = self.config.scan
        with self._errors(), self._client(db=scan.db if scan else 0) as client:
            client.ping()  # declared namespaces too: a sync must not report a server it cannot reach
            for name in self._scanned(client, scan) if scan else []:
                found.setdefault(name, {"found_by": "scan"})
        return [
            DiscoveredResource("namespace", name, f"{self.name}/{path_segment(name)}", None, tags)
            for name, tags in sorted(found.items())
        ]

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        prefix = self._prefix(unit)
        user = self._principal(unit)
        if not unit.secret:
            raise TargetError(f"{self.name}: a Redis grant needs a generated password", retryable=False)
        digest = hashlib.sha256(unit.secret.encode()).hexdigest()
        pattern = _KEY_ACCESS[unit.permission] + _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        rules = ["reset", "on", "#" + digest, "resetchannels", pattern, *self.config.rules[unit.permission]]
        rules += ALWAYS_DENIED
        with self._errors(unit.secret), self._client() as client:
            client.execute_command("ACL", "SETUSER", user, *rules)
            self._save(client)
        return {
            "host": self.config.public_host or self.config.host,
            "port": self.config.port,
            "tls": self._tls,
            "username": user,
            "key_prefix": prefix,
        }

    def revoke(self, unit: AccessUnit) -> None:
        # Only the user matters here: a namespace taken out of the config since must still be revoked.
        user = self._principal(unit)
        with self._errors(unit.secret), self._client() as client:
            if client.execute_command("ACL", "GETUSER", user) is None:
                return
            try:
                client.execute_command("ACL", "SETUSER", user, "off")  # no new logins from here on
                client.execute_command("CLIENT", "KILL", "USER", user)
            except redis.ResponseError as exc:
                if "no such user" not in str(exc).lower():
                    raise  # deleted meanwhile is fine; anything else is not
            client.execute_command("ACL", "DELUSER", user)  # also disconnects what is left
            self._save(client)

    def list_managed(self) -> list[ManagedPrincipal]:
        with self._errors(), self._client() as client:
            users = [_text(u) for u in client.execute_command("ACL", "USERS")]
        found = [
            managed_by_name(self.config.user_prefix, self.name, self.context.installation, u)
            for u in sorted(users)
        ]
        return [m for m in found if m is not None]

    def check(self) -> list[str]:
        try:
            with self._errors(), self._client() as client:
                version = str(client.info("server").get("redis_version", "0"))
                me = _text(client.execute_command("ACL", "WHOAMI"))
                probes = {
                    "ACL SETUSER": ("ACL", "SETUSER", "sluice-check"),
                    "ACL DELUSER": ("ACL", "DELUSER", "sluice-check"),
                    "CLIENT KILL": ("CLIENT", "KILL", "USER", "sluice-check"),
                }
                if self.config.scan is not None:
                    probes["SCAN"] = ("SCAN", "0")
                refused = []
                if _major(version) >= 7:
                    try:
                        for what, command in probes.items():
                            answer = _text(client.execute_command("ACL", "DRYRUN", me, *command))
                            if answer != "OK":
                                refused.append(what)
                    except redis.ResponseError:  # may not even ask: no ACL rights at all
                        refused = ["ACL DRYRUN", *probes]
        except TargetError as exc:
            return [*self._plaintext_problems(), f"cannot connect: {exc.detail}"]
        problems = self._plaintext_problems()
        if _major(version) < 7:
            problems.append(
                f"Redis 7 or later is needed for read-only key patterns (the server runs {version})"
            )
        elif refused:
            problems.append(f"the admin user {me!r} may not run: {', '.join(refused)}")
        return problems

    @property
    def _tls(self) -> bool:
        return self.config.tls if self.config.tls is not None else not is_loopback(self.config.host)

    def _plaintext_problems(self) -> list[str]:
        if self._tls or is_loopback(self.config.host):
            return []
        return [plaintext_warning(self.config.host, "tls: false")]

    # --- helpers

    def _scanned(self, client: redis.Redis, scan: Scan) -> list[str]:
        names: set[str] = set()
        cursor, examined = 0, 0
        while examined < scan.max_keys:
            count = min(scan.batch, scan.max_keys - examined)
            cursor, keys = client.scan(cursor=cursor, count=count)
            keys = keys[: scan.max_keys - examined]  # COUNT is only a hint: hold the bound here
            examined += max(len(keys), 1)
            for key in keys:
                name, sep, _ = _text(key).partition(scan.separator)
                if sep and name and _PREFIX.match(name + sep):
                    names.add(name)
            if cursor == 0:
                break
        return sorted(names)

    def _prefix(self, unit: AccessUnit) -> str:
        names = split_path(self.name, unit.resource_path)
        if names is None or len(names) != 1:
            raise TargetError(
                f"{unit.resource_path!r} is not a resource path of {self.name}", retryable=False
            )
        if unit.resource_type != "namespace" or unit.permission not in self.permissions["namespace"]:
            raise TargetError(
                f"{unit.permission!r} on a {unit.resource_type!r} is not something {self.name} grants",
                retryable=False,
            )
        (name,) = names
        for ns in self.config.namespaces:
            if ns.name == name:
                return ns.prefix
        if self.config.scan is not None and _PREFIX.match(name + self.config.scan.separator):
            return name + self.config.scan.separator
        raise TargetError(f"{self.name} has no namespace {name!r}", retryable=False)

    def _principal(self, unit: AccessUnit) -> str:
        return require_own_name(
            self.config.user_prefix,
            self.name,
            self.context.installation,
            unit.principal,
            unit.grant_id,
            "a user",
        )

    def _save(self, client: redis.Redis) -> None:
        if self.config.save_acl:
            client.execute_command("ACL", "SAVE")

    @contextmanager
    def _errors(self, *extra: str | None) -> Iterator[None]:
        try:
            yield
        except TargetError:
            raise
        except (redis.RedisError, OSError, InvalidInput) as exc:
            detail = exc.detail if isinstance(exc, InvalidInput) else str(exc).strip() or type(exc).__name__
            retryable = not isinstance(exc, redis.ResponseError)
            secrets = resolved_secrets([self.config.password], extra)
            raise TargetError(f"{self.name}: {scrub(detail, secrets)}", retryable=retryable) from None

    @contextmanager
    def _client(self, db: int = 0) -> Iterator[redis.Redis]:
        password = self.config.password.resolve(f"{self.name} password") if self.config.password else None
        client = redis.Redis(
            host=self.config.host,
            port=self.config.port,
            db=db,
            username=self.config.username,
            password=password,
            ssl=self._tls,
            ssl_ca_certs=self.config.ca_file,
            ssl_check_hostname=self._tls,
            socket_connect_timeout=self.config.connect_timeout_seconds,
            socket_timeout=self.config.timeout_seconds,
            retry=Retry(NoBackoff(), 0),  # the worker retries with backoff; one call is one attempt
            client_name="sluice",
        )
        try:
            yield client
        finally:
            client.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0
