"""The connector contract.

A connector talks to one kind of target. It gets its integration's name, its validated config and a
narrow `ConnectorContext`; it never sees the store. The context names the installation (the store)
the connector works for: every principal it creates carries that id, and `list_managed` reports only
this installation's principals, plus the `legacy` ones made before principals carried it. Every
operation must be idempotent: granting what exists succeeds, revoking what is gone succeeds. Errors
are raised as `TargetError` (with `retryable`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from sluice.domain.errors import InvalidInput


@dataclass(frozen=True)
class DiscoveredResource:
    type: str
    name: str
    path: str  # full path, starting with the integration name: prod-pg/appdb/public/orders
    parent_path: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AccessUnit:
    """What a grant or revoke is about. `principal` is chosen by Sluice and recorded before the call."""

    grant_id: str
    principal: str
    grantee_email: str
    resource_type: str
    resource_path: str
    permission: str
    ends_at: datetime | None = None
    secret: str | None = None  # the generated password, for targets that log in with one


@dataclass(frozen=True)
class ManagedPrincipal:
    """Something this installation of Sluice created in the target, as the target reports it.

    `legacy`: the principal carries Sluice's mark for this integration but no installation id (it
    was made before principals carried one), so it may be another installation's. The orphan sweep
    touches a legacy principal only when this store has a grant row for it (docs/connectors.md).
    A principal marked with another installation's id is never reported."""

    principal: str
    grant_id: str | None
    legacy: bool = False


class MembershipCapability(Protocol):
    """What the built-in groups connector may do with Sluice's own group table, and nothing more."""

    def add(self, *, group: str, email: str, grant_id: str, expires_at: datetime | None) -> None: ...

    def remove(self, *, group: str, grant_id: str) -> None: ...

    def list_grant_members(self) -> list[tuple[str, str]]: ...  # (group, grant_id)

    def groups(self) -> list[tuple[str, str]]: ...  # (name, description)


_INSTALLATION = re.compile(r"^[a-z0-9][a-z0-9_-]{3,31}$")


@dataclass
class ConnectorContext:
    # The id of the store this connector works for (`installation` table): marks what it creates.
    installation: str
    timeout_seconds: float = 10.0
    memberships: MembershipCapability | None = None

    def __post_init__(self) -> None:
        if not _INSTALLATION.match(self.installation):
            raise ValueError(
                "installation is 4 to 32 lower-case letters, digits, '_' or '-', starting with a letter"
                " or digit"
            )


@runtime_checkable
class Connector(Protocol):
    kind: ClassVar[str]
    # resource type -> permissions that can be granted on it
    permissions: ClassVar[dict[str, tuple[str, ...]]]
    # True where a grant hands the grantee a generated password
    issues_secret: ClassVar[bool]
    config_model: ClassVar[type[BaseModel]]

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        """The name this grant will use in the target, decided before the target is touched."""
        ...

    def discover(self) -> Iterable[DiscoveredResource]: ...

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        """Make the access exist; return non-secret connection details (host, port, username...)."""
        ...

    def revoke(self, unit: AccessUnit) -> None:
        """Make the access be gone: no login, no open session, no privilege."""
        ...

    def list_managed(self) -> list[ManagedPrincipal]: ...

    def check(self) -> list[str]:
        """Problems with the connection or the admin privileges; empty when all is well."""
        ...


@dataclass(frozen=True)
class Leftovers:
    """What retiring an integration found in the target beyond its per-grant principals."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # still in use by someone else, with why


@runtime_checkable
class LeavesLeftovers(Protocol):
    """A connector that creates shared objects besides the per-grant principals (the PostgreSQL
    privilege roles) and can remove them when its integration retires. Called only once no grant of
    the integration is live; it removes only what it made for this integration and nothing anyone
    else still uses, and is idempotent like the rest of the contract."""

    def remove_leftovers(self) -> Leftovers: ...


ConnectorFactory = Callable[[str, BaseModel, ConnectorContext], Connector]


class SecretRef(BaseModel):
    """A secret named by where it lives, never written in the config itself."""

    env: str | None = None
    file: str | None = None

    def resolve(self, what: str) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise InvalidInput(f"{what}: environment variable {self.env} is not set")
            return value
        if self.file:
            try:
                return Path(self.file).expanduser().read_text().strip()
            except OSError as exc:
                raise InvalidInput(f"{what}: cannot read {self.file}: {exc.strerror}") from exc
        raise InvalidInput(f"{what}: name an environment variable (env) or a file (file)")
