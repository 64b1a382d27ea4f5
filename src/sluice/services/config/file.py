"""The config file (`sluice apply -f FILE`): identities, groups, integrations and access flows as code.

`load_config` / `parse_config` read the YAML and check everything that can be checked before anything
is applied: syntax, keys, types, duplicates, references, connector configs and inline secrets. All
problems found are raised together as one `ConfigError`, each pointing at its line in the file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from sqlalchemy.orm import Session

from sluice.domain.bundles import BundleSpec, ScopeSpec
from sluice.domain.durations import parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import FlowSpec
from sluice.domain.shifts import ScheduleSpec
from sluice.domain.text import MAX_ITEMS, Description, Email, Name, PersonName, Token, Value
from sluice.services.audit.webhooks import WebhookSpec, webhook_problems
from sluice.services.config.checks import MAX_GROUPS, builtin_groups_config, check_document, secret_problems
from sluice.services.config.source import (
    ConfigError,
    ConfigProblem,
    SourceMap,
    position_of,
    read_yaml,
)
from sluice.services.config.validation import problems_from_validation
from sluice.services.directory.changes import MAX_ATTRIBUTES, MAX_GROUPS_PER_IDENTITY
from sluice.services.directory.ldap_config import DirectorySourceSpec

__all__ = [
    "ConfigDocument",
    "ConfigError",
    "ConfigProblem",
    "GroupSpec",
    "IdentitySpec",
    "IntegrationSpec",
    "WebhookSpec",
    "load_config",
    "parse_config",
]

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


def parse_config(text: str, filename: str, *, session: Session | None = None) -> ConfigDocument:
    """Read and check a config document. With a session, references may also name identities, groups
    and integrations already in Sluice (not managed by the config); without one, they must resolve
    within the file. Raises `ConfigError` with every problem found."""
    data, source, problems = read_yaml(text, filename)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(
            source.problem(
                (), "the file must be a mapping with the keys identities, groups, integrations, flows"
            )
        )
        raise ConfigError(problems)
    try:
        doc = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, source, ConfigDocument)
        partial, dropped = _valid_part(data, exc, source)
        integrations = data.get("integrations")
        for index, raw in enumerate(integrations if isinstance(integrations, list) else []):
            if isinstance(raw, dict) and (partial is None or index in dropped.get("integrations", ())):
                problems += secret_problems(raw.get("config"), ("integrations", index, "config"), source)
        if partial is not None:
            problems += check_document(partial, session) + webhook_problems(partial)
        raise ConfigError(problems) from exc
    doc._source = source
    problems += check_document(doc, session) + webhook_problems(doc)
    if problems:
        raise ConfigError(problems)
    return doc


_SECTIONS = frozenset(ConfigDocument.model_fields)
_NAME_KEYS = {
    "identities": "email",
    "groups": "name",
    "integrations": "name",
    "scopes": "name",
    "bundles": "name",
    "schedules": "name",
}


def _valid_part(
    data: dict[str, Any], exc: ValidationError, source: SourceMap
) -> tuple[ConfigDocument | None, dict[str, set[int]]]:
    """The document without the list items (and unknown top-level keys) that failed validation, so the
    checks across the document still run and every problem is reported at once; with the indexes left
    out per section. None when the failure is in the document's shape itself."""
    dropped: dict[str, set[int]] = defaultdict(set)
    unknown: set[str] = set()
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if len(loc) >= 2 and isinstance(loc[1], int) and loc[0] in _SECTIONS:
            dropped[str(loc[0])].add(loc[1])
        elif len(loc) == 1 and error["type"] == "extra_forbidden":
            unknown.add(str(loc[0]))
        else:
            return None, {}
    kept = {
        key: [item for index, item in enumerate(value) if index not in dropped[key]]
        if key in dropped
        else value
        for key, value in data.items()
        if key not in unknown
    }
    try:
        doc = ConfigDocument.model_validate(kept)
    except ValidationError:
        return None, {}
    doc._source = source.without(dropped, {key: len(data[key]) for key in dropped})
    doc._unchecked = _names_of(data, dropped)
    return doc, dropped


def _names_of(data: dict[str, Any], dropped: dict[str, set[int]]) -> dict[str, set[str]]:
    """What the left-out items declare, read from the raw data as far as it is text."""
    names: dict[str, set[str]] = defaultdict(set)
    for section, indexes in dropped.items():
        for index in indexes:
            item = data[section][index]
            if not isinstance(item, dict):
                continue
            value = item.get(_NAME_KEYS.get(section, ""))
            if isinstance(value, str):
                names[section].add(value.strip().lower() if section == "identities" else value)
            if section == "identities":
                groups, attributes = item.get("groups"), item.get("attributes")
                if isinstance(groups, list):
                    names["groups"].update(group for group in groups if isinstance(group, str))
                if isinstance(attributes, dict):
                    names["attributes"].update(str(key) for key in attributes)
    return names


def load_config(path: Path, *, session: Session | None = None) -> ConfigDocument:
    """Read and check the config file at `path` (see `parse_config`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, None, "", f"cannot read: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8")
        line, col = position_of(good, len(good))
        message = f"not UTF-8 text: the byte 0x{raw[exc.start]:02X} cannot start or continue a character"
        raise ConfigError([ConfigProblem(str(path), line, col, "", message)]) from exc
    return parse_config(text, str(path), session=session)
