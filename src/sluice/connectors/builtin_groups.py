"""Built-in groups: groups that Sluice itself keeps, so temporary membership works with no server.

A grant makes the grantee a member of the group until it is revoked; flows that name the group as
requesters or approvers see the membership at once. Memberships live in Sluice's own group table and
are reached only through the narrow `MembershipCapability`. That table is this installation's own
store, so another installation of Sluice can never see or remove these memberships: nothing here
needs an installation mark.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluice.connectors.base import (
    AccessUnit,
    ConnectorContext,
    DiscoveredResource,
    ManagedPrincipal,
    MembershipCapability,
)
from sluice.domain.errors import TargetError

_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class BuiltinGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _GROUP_NAME.match(value):
            raise ValueError("a group name is letters, digits, '.', '_' or '-' (at most 100)")
        return value


class BuiltinGroupsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[BuiltinGroup] = Field(default_factory=list)


class BuiltinGroupsConnector:
    kind: ClassVar[str] = "builtin_groups"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"group": ("member",)}
    issues_secret: ClassVar[bool] = False
    config_model: ClassVar[type[BaseModel]] = BuiltinGroupsConfig

    def __init__(self, integration_name: str, config: BaseModel, context: ConnectorContext) -> None:
        if not isinstance(config, BuiltinGroupsConfig):
            raise TypeError("BuiltinGroupsConnector takes a BuiltinGroupsConfig")
        self.name = integration_name
        self.config = config
        self._memberships = context.memberships

    @property
    def memberships(self) -> MembershipCapability:
        if self._memberships is None:
            raise TargetError("built-in groups need the membership capability", retryable=False)
        return self._memberships

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        return grantee_email

    def _group_of(self, path: str) -> str:
        prefix = self.name + "/"
        group = path[len(prefix) :] if path.startswith(prefix) else ""
        if group not in {g.name for g in self.config.groups}:
            raise TargetError(f"{path} is not a group of {self.name}", retryable=False)
        return group

    def discover(self) -> Iterable[DiscoveredResource]:
        for group in self.config.groups:
            yield DiscoveredResource(type="group", name=group.name, path=f"{self.name}/{group.name}")

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        group = self._group_of(unit.resource_path)
        self.memberships.add(
            group=group, email=unit.grantee_email, grant_id=unit.grant_id, expires_at=unit.ends_at
        )
        return {"group": group, "member": unit.grantee_email}

    def revoke(self, unit: AccessUnit) -> None:
        # Without a resource path (an orphan), the principal list_managed reported names the group.
        prefix = self.name + "/"
        group = unit.resource_path[len(prefix) :] if unit.resource_path else unit.principal.rpartition(":")[0]
        self.memberships.remove(group=group, grant_id=unit.grant_id)

    def list_managed(self) -> list[ManagedPrincipal]:
        ours = {g.name for g in self.config.groups}
        return [
            ManagedPrincipal(principal=f"{group}:{grant_id}", grant_id=grant_id)
            for group, grant_id in self.memberships.list_grant_members()
            if group in ours
        ]

    def check(self) -> list[str]:
        return [] if self._memberships is not None else ["the membership capability is not wired"]
