"""The shape of a config document: identities, groups, integrations, flows, scopes, bundles,
schedules and webhooks, each validated on its own (`file.py` reads the YAML into it, `checks.py` checks
it as a whole)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from sluice.domain.bundles import BundleSpec, ScopeSpec
from sluice.domain.durations import parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import FlowSpec
from sluice.domain.shifts import ScheduleSpec
from sluice.domain.text import MAX_ITEMS, Description, Email, Name, PersonName, Token, Value
from sluice.services.audit.webhooks import WebhookSpec
from sluice.services.config.checks import MAX_GROUPS
from sluice.services.config.integration_checks import builtin_groups_config
from sluice.services.config.source import SourceMap
from sluice.services.directory.changes import MAX_ATTRIBUTES, MAX_GROUPS_PER_IDENTITY
from sluice.services.directory.ldap_config import DirectorySourceSpec

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
# A config file declares a small directory; a large one comes from SCIM or LDAP. Kept well below what
# one SQL statement may bind (SQLite: 32,766 values), as every name is looked up in one query.
MAX_IDENTITIES = 10_000
_INTEGRATION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _email(value: str) -> str:
    cleaned = value.strip().lower()
    if not _EMAIL.match(cleaned):
        raise ValueError(f"{value!r} is not an email address")
    return cleaned


def _none_is_empty(value: Any) -> Any:
    """`identities:` with nothing after it means an empty list, as a person would expect."""
    return [] if value is None else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentitySpec(_Strict):
    email: Email
    name: PersonName = ""
    manager: Email | None = None
    groups: list[Name] = Field(default_factory=list, max_length=MAX_GROUPS_PER_IDENTITY)
    attributes: dict[Token, Value] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)
    active: bool = True

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return _email(value)

    @field_validator("manager")
    @classmethod
    def _valid_manager(cls, value: str | None) -> str | None:
        return None if value is None else _email(value)

    @field_validator("groups", mode="before")
    @classmethod
    def _groups_list(cls, value: Any) -> Any:
        return _none_is_empty(value)

    @field_validator("groups")
    @classmethod
    def _group_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.strip():
                raise ValueError(f"group name {name!r} must hold more than spaces")
        return list(dict.fromkeys(value))


class GroupSpec(_Strict):
    name: Name
    description: Description = ""


class IntegrationSpec(_Strict):
    name: Token
    kind: Token
    owner: Email | None = None
    sync_interval: Token = "1h"
    disabled: bool = False  # no new requests; live grants run out
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _INTEGRATION_NAME.match(value) or len(value) > 120:
            raise ValueError(
                f"integration name {value!r} must start with a lower-case letter or digit and hold only "
                "lower-case letters, digits, '-' and '_' (at most 120); it is the first segment of "
                "every resource path"
            )
        return value

    @field_validator("owner")
    @classmethod
    def _valid_owner(cls, value: str | None) -> str | None:
        return None if value is None else _email(value)

    @field_validator("sync_interval", mode="before")
    @classmethod
    def _valid_interval(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("sync_interval is a duration like '10m' or '1h'")
        try:
            parse_duration(value)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from exc
        return str(value)

    @field_validator("config", mode="before")
    @classmethod
    def _config_mapping(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def sync_interval_seconds(self) -> int:
        return int(parse_duration(self.sync_interval).total_seconds())


class ConfigDocument(_Strict):
    identities: list[IdentitySpec] = Field(default_factory=list, max_length=MAX_IDENTITIES)
    groups: list[GroupSpec] = Field(default_factory=list, max_length=MAX_GROUPS)
    integrations: list[IntegrationSpec] = Field(default_factory=list, max_length=MAX_ITEMS)
    flows: list[FlowSpec] = Field(default_factory=list, max_length=MAX_ITEMS)
    scopes: list[ScopeSpec] = Field(default_factory=list, max_length=MAX_ITEMS)
    bundles: list[BundleSpec] = Field(default_factory=list, max_length=MAX_ITEMS)
    schedules: list[ScheduleSpec] = Field(default_factory=list, max_length=MAX_ITEMS)
    webhooks: list[WebhookSpec] = Field(default_factory=list, max_length=100)
    directory_sources: list[DirectorySourceSpec] = Field(default_factory=list, max_length=100)

    _source: SourceMap | None = PrivateAttr(default=None)
    _unchecked: dict[str, set[str]] = PrivateAttr(default_factory=dict)

    @field_validator(
        "identities",
        "groups",
        "integrations",
        "flows",
        "scopes",
        "bundles",
        "schedules",
        "webhooks",
        "directory_sources",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _none_is_empty(value)

    @property
    def source(self) -> SourceMap:
        """Where the document came from; a document built in code has no positions."""
        return self._source or SourceMap("<config>")

    def unchecked(self, section: str) -> set[str]:
        """Names declared by items of `section` left out of this document for problems of their own
        (see `parse_config`): references to them are not reported as leading nowhere. The sections
        are those of the document, plus `attributes` (attribute names of left-out identities)."""
        return self._unchecked.get(section, set())

    def declared_groups(self) -> dict[str, str | None]:
        """Every group the document names, with its description where one is written: from
        `groups:`, from builtin_groups integrations, and from identities' `groups`."""
        found: dict[str, str | None] = {}
        for integration in self.integrations:
            builtin = builtin_groups_config(integration)
            for group in builtin.groups if builtin else []:
                found[group.name] = group.description
        for spec in self.groups:
            found[spec.name] = spec.description
        for identity in self.identities:
            for name in identity.groups:
                found.setdefault(name, None)
        return found
