"""Checks over a whole config document, after each part has its right shape: duplicate names,
references that lead nowhere, connector configs, and admin secrets written inline."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sluice.connectors.builtin_groups import BuiltinGroupsConfig
from sluice.connectors.registry import connector_class, validate_config
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import Target
from sluice.domain.text import storable_text
from sluice.services.config.people import people_problems
from sluice.services.config.source import ConfigPath, ConfigProblem, SourceMap
from sluice.services.config.targeting import targeting_problems
from sluice.services.config.validation import problems_from_validation
from sluice.store.tables import Group, Identity, Integration

if TYPE_CHECKING:
    from sluice.services.config.file import ConfigDocument, IntegrationSpec

CONFIG_SOURCE = "config"
MAX_GROUPS = 10_000  # groups one file may name in all
_LOOKUP_CHUNK = 5_000

INLINE_ADMIN_KEY_MESSAGE = (
    "admin secrets are never written in the config: use password: {env: NAME} or {file: PATH}"
)
_URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)


def builtin_groups_config(integration: IntegrationSpec) -> BuiltinGroupsConfig | None:
    """The validated config of a builtin_groups integration; None for other kinds or a bad config."""
    try:
        model = validate_config(integration.kind, integration.config)
    except (InvalidInput, ImportError, AttributeError):
        return None
    return model if isinstance(model, BuiltinGroupsConfig) else None


def secret_problems(config: Any, path: ConfigPath, source: SourceMap) -> list[ConfigProblem]:
    """A `password:` written as plain text, or a URL with a password in it, anywhere in a config."""
    problems: list[ConfigProblem] = []
    if isinstance(config, dict):
        for key, value in config.items():
            child = (*path, str(key))
            if str(key).lower() == "password" and not isinstance(value, dict):
                problems.append(source.problem(child, INLINE_ADMIN_KEY_MESSAGE))
            elif isinstance(value, str) and _URL_WITH_PASSWORD.match(value):
                problems.append(
                    source.problem(
                        child,
                        f"this URL holds a password, and admin secrets are never written in the config: "
                        f"use {key}: {{env: NAME}} or {{file: PATH}}",
                    )
                )
            else:
                problems += secret_problems(value, child, source)
    elif isinstance(config, list):
        for index, item in enumerate(config):
            problems += secret_problems(item, (*path, index), source)
    return problems


def text_problems(config: Any, path: ConfigPath, source: SourceMap) -> list[ConfigProblem]:
    """Text no store takes (a NUL, a lone surrogate) anywhere in a free-form config, keys included."""
    problems: list[ConfigProblem] = []
    items = (
        config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else []
    )
    for key, value in items:
        child = (*path, key if isinstance(key, int) else str(key))
        for text in (key, value):
            if isinstance(text, str):
                try:
                    storable_text(text)
                except ValueError as exc:
                    problems.append(source.problem(child, str(exc)))
                    break
        else:
            problems += text_problems(value, child, source)
    return problems


def check_document(doc: ConfigDocument, session: Session | None) -> list[ConfigProblem]:
    """Every problem in a well-shaped document. With a session, references may also resolve to
    objects already in Sluice that the config does not manage."""
    return _Checker(doc, session).run()


class _Checker:
    def __init__(self, doc: ConfigDocument, session: Session | None) -> None:
        self.doc = doc
        self.source = doc.source
        self.session = session
        self.problems: list[ConfigProblem] = []
        self.file_emails = {i.email for i in doc.identities} | doc.unchecked("identities")
        self.file_groups = set(doc.declared_groups()) | doc.unchecked("groups")
        self.integration_kinds = {i.name: i.kind for i in doc.integrations}
        self.unchecked_integrations = doc.unchecked("integrations")
        self._classes: dict[str, tuple[Any, str]] = {}
        self._identity_refs: list[tuple[str, ConfigPath, str]] = []
        self._group_refs: list[tuple[str, ConfigPath]] = []

    def add(self, path: ConfigPath, message: str) -> None:
        self.problems.append(self.source.problem(path, message))

    def run(self) -> list[ConfigProblem]:
        self._group_count()
        self._duplicates()
        self._integrations()
        self._identities()
        self._flows()
        self._resolve_identities()
        self._resolve_groups()
        return self.problems

    def _group_count(self) -> None:
        """Groups named in identities' `groups` count too: each is created, and looked up in one query."""
        count = len(self.file_groups)
        if count > MAX_GROUPS:
            self.add(
                ("groups",),
                f"the file names {count} groups (under groups:, in identities and in builtin_groups); "
                f"at most {MAX_GROUPS} are allowed",
            )

    def _duplicates(self) -> None:
        sections = (
            ("identities", "email", "identity"),
            ("groups", "name", "group"),
            ("integrations", "name", "integration"),
            ("flows", "name", "flow"),
            ("scopes", "name", "scope"),
            ("bundles", "name", "bundle"),
            ("schedules", "name", "schedule"),
        )
        for section, key, what in sections:
            first: dict[str, int] = {}
            for index, item in enumerate(getattr(self.doc, section)):
                value = getattr(item, key)
                if value not in first:
                    first[value] = index
                    continue
                line = self.source.line_of((section, first[value], key))
                at = f" (first at line {line})" if line else ""
                self.add((section, index, key), f"{what} {value!r} is declared twice{at}; declare it once")

    def connector(self, kind: str) -> tuple[Any, str]:
        """The connector class of `kind`, or None and why it cannot be used."""
        if kind not in self._classes:
            try:
                cls = connector_class(kind)
                lacking = [name for name in ("permissions", "config_model") if not hasattr(cls, name)]
                if lacking:
                    self._classes[kind] = (
                        None,
                        f"integration kind {kind!r} does not define {', '.join(lacking)}",
                    )
                else:
                    self._classes[kind] = (cls, "")
            except InvalidInput as exc:
                self._classes[kind] = (None, exc.detail)
            except (ImportError, AttributeError) as exc:
                self._classes[kind] = (
                    None,
                    f"integration kind {kind!r} is installed but cannot be loaded: {exc}",
                )
        return self._classes[kind]

    def _integrations(self) -> None:
        for index, spec in enumerate(self.doc.integrations):
            base: ConfigPath = ("integrations", index)
            if spec.owner:
                self._identity_refs.append((spec.owner, (*base, "owner"), "owner"))
            secrets = secret_problems(spec.config, (*base, "config"), self.source)
            secrets += text_problems(spec.config, (*base, "config"), self.source)
            self.problems += secrets
            cls, why = self.connector(spec.kind)
            if cls is None:
                self.add((*base, "kind"), why)
                continue
            if secrets:
                continue
            try:
                json.dumps(spec.config)
            except (TypeError, ValueError):
                self.add(
                    (*base, "config"),
                    "config values must be text, numbers, true/false, lists or mappings "
                    "(quote dates and times)",
                )
                continue
            try:
                validate_config(spec.kind, spec.config)
            except InvalidInput as exc:
                cause = exc.__cause__
                if isinstance(cause, ValidationError):
                    self.problems += problems_from_validation(
                        cause, self.source, cls.config_model, (*base, "config")
                    )
                else:
                    self.add((*base, "config"), exc.detail)

    def _identities(self) -> None:
        for index, spec in enumerate(self.doc.identities):
            if spec.manager is None:
                continue
            path: ConfigPath = ("identities", index, "manager")
            if spec.manager == spec.email:
                self.add(path, "an identity cannot be its own manager")
            else:
                self._identity_refs.append((spec.manager, path, "manager"))

    def _flows(self) -> None:
        targets = [t for flow in self.doc.flows for t in flow.targets]
        targets += [t for bundle in self.doc.bundles for t in bundle.targets]
        self._known_store_integrations(
            {t.integration for t in targets if t.integration}
            - set(self.integration_kinds)
            - self.unchecked_integrations
        )
        targeting_problems(self, self.doc, self.session)
        people_problems(self, self.doc, self.session)
        for index, flow in enumerate(self.doc.flows):
            base: ConfigPath = ("flows", index)
            for role in ("requesters", "approvers"):
                for number, subject in enumerate(getattr(flow, role)):
                    if subject.user:
                        self._identity_refs.append(
                            (subject.user.lower(), (*base, role, number, "user"), "user")
                        )
                    if subject.group and subject.group not in self.file_groups:
                        self._group_refs.append((subject.group, (*base, role, number, "group")))
            for number, target in enumerate(flow.targets):
                self._target(target, (*base, "targets", number))

    def _target(self, target: Target, path: ConfigPath) -> None:
        if target.integration is None:
            return  # a bundle or scope reference: checked by targeting_problems
        if target.integration in self.unchecked_integrations:
            return  # the integration has problems of its own
        kind = self.integration_kinds.get(target.integration)
        if kind is None:
            names = [i.name for i in self.doc.integrations] + sorted(self.unchecked_integrations)
            declared = ", ".join(names) or "none"
            self.add(
                (*path, "integration"),
                f"integration {target.integration!r} is not declared under integrations "
                f"(declared: {declared})",
            )
            return
        cls, _ = self.connector(kind)
        if cls is None:
            return  # reported on the integration itself
        permissions: dict[str, tuple[str, ...]] = cls.permissions
        if target.type not in permissions:
            self.add(
                (*path, "type"),
                f"{kind} integrations have no resource type {target.type!r}; "
                f"resource types: {', '.join(sorted(permissions))}",
            )
            return
        valid = permissions[target.type]
        for number, permission in enumerate(target.permissions):
            if permission not in valid:
                self.add(
                    (*path, "permissions", number),
                    f"permission {permission!r} cannot be granted on {target.type} resources of {kind}; "
                    f"permissions: {', '.join(valid)}",
                )

    def _known_store_integrations(self, names: set[str]) -> None:
        if not names or self.session is None:
            return
        rows = self.session.execute(
            select(Integration.name, Integration.kind).where(
                Integration.name.in_(sorted(names)), Integration.source != CONFIG_SOURCE
            )
        )
        for name, kind in rows:
            self.integration_kinds[name] = kind

    def _where(self) -> str:
        return "in this file or in Sluice" if self.session is not None else "in this file"

    def _resolve_identities(self) -> None:
        missing = {email for email, _, _ in self._identity_refs} - self.file_emails
        found = self._store_emails(missing)
        for email, path, what in self._identity_refs:
            if email not in self.file_emails and email not in found:
                self.add(path, f"{what} {email!r} is not an identity {self._where()}")

    def _resolve_groups(self) -> None:
        found = self._store_groups({name for name, _ in self._group_refs})
        for name, path in self._group_refs:
            if name not in found:
                self.add(
                    path,
                    f"group {name!r} is not known {self._where()}: name it under groups:, in an identity's "
                    "groups, or in a builtin_groups integration",
                )

    def _store_emails(self, emails: Iterable[str]) -> set[str]:
        lowered = func.lower(Identity.email)
        return self._found(emails, lambda chunk: select(lowered).where(lowered.in_(chunk)))

    def _store_groups(self, names: Iterable[str]) -> set[str]:
        return self._found(
            names,
            lambda chunk: select(Group.name).where(Group.name.in_(chunk), Group.source != CONFIG_SOURCE),
        )

    def _found(self, values: Iterable[str], query: Callable[[list[str]], Select[Any]]) -> set[str]:
        """Which of `values` the store holds, asked in chunks: one statement binds only so many values."""
        wanted = sorted(values)
        if self.session is None:
            return set()
        found: set[str] = set()
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            found.update(self.session.scalars(query(wanted[start : start + _LOOKUP_CHUNK])))
        return found
