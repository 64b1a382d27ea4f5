"""Custom HTTP connector: for a system Sluice has no module for, an HTTPS endpoint that speaks a small
JSON protocol (docs/connectors.md has the whole of it; examples/http_connector/ is a reference).

Every call is `POST {url}/{operation}` (`status`, `list-resources`, `grant`, `revoke`, `list-managed`)
with a JSON body, signed with HMAC-SHA256 over the timestamp, the idempotency key, the operation and
the body, using a secret shared with the endpoint. Grant and revoke carry a key derived from the grant
(`grant-{id}` / `revoke-{id}`), so a retry after a timeout is recognised and answered the same; reads
carry a fresh key per call. Sluice generates the grantee's password and sends it in `grant`, so a
retried grant sets the same password. Calls time out (connect and read) and are retried a bounded
number of times on connection errors, timeouts, 429 and 5xx answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
import uuid
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    require_own_name,
    resolved_secrets,
    scrub,
    tagged_principal,
)
from sluice.domain.errors import InvalidInput, TargetError

PROTOCOL_VERSION = "v1"
_RETRY_STATUS = {429, 502, 503, 504}
_SECRET_KEYS = {"password", "secret", "token", "api_key", "private_key"}


def signature(secret: str, timestamp: str, key: str, operation: str, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 of `v1\\n{timestamp}\\n{idempotency key}\\n{operation}\\n{body}`."""
    message = f"{PROTOCOL_VERSION}\n{timestamp}\n{key}\n{operation}\n".encode() + body
    return f"{PROTOCOL_VERSION}=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class HttpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str  # https://host[:port]/base; operations are POSTed to {url}/{operation}
    secret: SecretRef  # the HMAC key shared with the endpoint
    ca_file: str | None = None  # verify the endpoint's certificate against this CA (default: system CAs)
    allow_insecure_localhost: bool = False  # plain http://, only to 127.0.0.1, ::1 or localhost
    principal_prefix: str = "sluice_"
    issues_secret: bool = True  # Sluice generates a password and sends it with each grant
    connect_timeout_seconds: float = Field(default=5, gt=0)
    timeout_seconds: float = Field(default=15, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10)

    @field_validator("principal_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not PRINCIPAL_PREFIX.match(value):
            raise ValueError(
                "principal_prefix is a lowercase letter then up to 11 lowercase letters, digits or _"
            )
        return value

    @model_validator(mode="after")
    def _safe_url(self) -> HttpConfig:
        parts = urlsplit(self.url)
        if parts.scheme == "https" and parts.hostname:
            return self
        if parts.scheme == "http" and parts.hostname and self.allow_insecure_localhost:
            if is_loopback(parts.hostname):
                return self
            raise ValueError("plain http:// is allowed only to 127.0.0.1, ::1 or localhost")
        raise ValueError("url must be https://… (or http:// to localhost with allow_insecure_localhost)")


# --- the answers the endpoint gives


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


_A = TypeVar("_A", bound=BaseModel)


class _Resource(_Answer):
    type: str
    name: str
    path: list[str] = Field(min_length=1)
    parent: list[str] | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class _Resources(_Answer):
    resources: list[_Resource]


class _Granted(_Answer):
    connection: dict[str, Any] = Field(default_factory=dict)


class _Principal(_Answer):
    principal: str
    grant_id: str | None = None


class _Principals(_Answer):
    principals: list[_Principal]


class _Status(_Answer):
    ok: bool
    problems: list[str] = Field(default_factory=list)


class HttpConnector:
    kind: ClassVar[str] = "http"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {
        "container": ("read", "write", "admin"),
        "resource": ("read", "write", "admin"),
        "group": ("member",),
    }
    issues_secret: ClassVar[bool] = True
    config_model: ClassVar[type[BaseModel]] = HttpConfig

    def __init__(self, integration_name: str, config: BaseModel, context: ConnectorContext) -> None:
        if not isinstance(config, HttpConfig):
            raise TypeError("HttpConnector takes a HttpConfig")
        self.name = integration_name
        self.config = config
        self.context = context
        self.issues_secret = config.issues_secret  # type: ignore[misc]

    # --- the contract

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        return tagged_principal(self.config.principal_prefix, self.name, self.context.installation, grant_id)

    def discover(self) -> list[DiscoveredResource]:
        answer = self._call("list-resources", {}, _Resources)
        found = []
        for item in answer.resources:
            if item.type not in self.permissions:
                raise TargetError(
                    f"{self.name}: the endpoint listed a resource of unknown type {item.type!r}",
                    retryable=False,
                )
            parent = self._path(item.parent) if item.parent else None
            found.append(DiscoveredResource(item.type, item.name, self._path(item.path), parent, item.tags))
        return found

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        body = {**self._unit_body(unit, required=True), "grantee_email": unit.grantee_email}
        body["ends_at"] = unit.ends_at.isoformat() if unit.ends_at else None
        body["secret"] = unit.secret if self.issues_secret else None
        answer = self._call("grant", body, _Granted, key=f"grant-{unit.grant_id}", hide=(unit.secret,))
        # The connection details are stored in clear: nothing secret may ride along in them.
        return {
            k: v
            for k, v in answer.connection.items()
            if k.lower() not in _SECRET_KEYS and (not unit.secret or v != unit.secret)
        }

    def revoke(self, unit: AccessUnit) -> None:
        self._call("revoke", self._unit_body(unit, required=False), _Answer, key=f"revoke-{unit.grant_id}")

    def list_managed(self) -> list[ManagedPrincipal]:
        answer = self._call("list-managed", {}, _Principals)
        # The name is the marker: whatever else the endpoint lists, only this installation's names
        # (and legacy ones, from before names carried it) are reported.
        found = [
            managed_by_name(self.config.principal_prefix, self.name, self.context.installation, p.principal)
            for p in answer.principals
        ]
        return [m for m in found if m is not None]

    def check(self) -> list[str]:
        try:
            answer = self._call("status", {}, _Status)
        except TargetError as exc:
            return [f"cannot reach the endpoint: {exc.detail}"]
        if answer.ok:
            return list(answer.problems)
        return list(answer.problems) or ["the endpoint says it is not ok and gives no reason"]

    # --- the protocol

    def _path(self, names: list[str]) -> str:
        return "/".join([self.name, *(path_segment(n) for n in names)])

    def _unit_body(self, unit: AccessUnit, *, required: bool) -> dict[str, Any]:
        prefix, installation = self.config.principal_prefix, self.context.installation
        require_own_name(prefix, self.name, installation, unit.principal, unit.grant_id, "a principal")
        body: dict[str, Any] = {"grant_id": unit.grant_id, "principal": unit.principal}
        if not unit.resource_path and not required:
            body.update(resource=None, permission=None)  # the orphan sweep knows the principal only
            return body
        names = split_path(self.name, unit.resource_path)
        if names is None or unit.permission not in self.permissions.get(unit.resource_type, ()):
            raise TargetError(
                f"{unit.permission!r} on {unit.resource_path!r} is not something {self.name} grants",
                retryable=False,
            )
        body.update(resource={"type": unit.resource_type, "path": names}, permission=unit.permission)
        return body

    def _call(
        self,
        operation: str,
        body: dict[str, Any],
        answer: type[_A],
        *,
        key: str | None = None,
        hide: tuple[str | None, ...] = (),
    ) -> _A:
        secrets = resolved_secrets([self.config.secret], hide)
        try:
            secret = self.config.secret.resolve(f"{self.name} secret")
        except InvalidInput as exc:
            raise TargetError(f"{self.name}: {exc.detail}", retryable=True) from None
        payload = json.dumps(
            {"integration": self.name, "installation": self.context.installation, **body}, sort_keys=True
        ).encode()
        key = key or f"{operation}-{uuid.uuid4()}"
        url = self.config.url.rstrip("/") + "/" + operation
        timeout = httpx.Timeout(self.config.timeout_seconds, connect=self.config.connect_timeout_seconds)
        last = ""
        with httpx.Client(timeout=timeout, verify=self._verify(), follow_redirects=False) as client:
            for attempt in range(self.config.max_attempts):
                if attempt:
                    time.sleep(min(2.0, 0.2 * 2**attempt))
                timestamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                    "Sluice-Integration": self.name,
                    "Sluice-Timestamp": timestamp,
                    "Sluice-Signature": signature(secret, timestamp, key, operation, payload),
                }
                try:
                    response = client.post(url, content=payload, headers=headers)
                except httpx.HTTPError as exc:
                    last = f"{operation}: {type(exc).__name__}: {exc}".rstrip(": ")
                    continue
                if response.status_code in _RETRY_STATUS or response.status_code >= 500:
                    last = f"{operation}: {self._problem(response)}"
                    if self._retryable(response, default=True):
                        continue
                    raise TargetError(f"{self.name}: {scrub(last, secrets)}", retryable=False)
                if response.status_code >= 300:
                    retryable = self._retryable(response, default=False)
                    detail = f"{operation}: {self._problem(response)}"
                    raise TargetError(f"{self.name}: {scrub(detail, secrets)}", retryable=retryable)
                try:
                    return answer.model_validate(response.json())
                except (ValueError, ValidationError) as exc:
                    detail = f"{operation}: the endpoint's answer does not follow the protocol: {exc}"
                    raise TargetError(
                        f"{self.name}: {scrub(detail, secrets)[:500]}", retryable=False
                    ) from None
        raise TargetError(f"{self.name}: {scrub(last, secrets)} (after {self.config.max_attempts} attempts)")

    def _verify(self) -> ssl.SSLContext | bool:
        if self.config.ca_file:
            return ssl.create_default_context(cafile=self.config.ca_file)
        return True

    @staticmethod
    def _problem(response: httpx.Response) -> str:
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        return f"HTTP {response.status_code}" + (f": {str(error)[:300]}" if error else "")

    @staticmethod
    def _retryable(response: httpx.Response, *, default: bool) -> bool:
        try:
            value = response.json().get("retryable")
        except (ValueError, AttributeError):
            return default
        return value if isinstance(value, bool) else default
