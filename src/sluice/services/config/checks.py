"""Checks over a whole config document, after each part has its right shape: duplicate names and
references that lead nowhere (the integrations' own configs: `integration_checks`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sluice.domain.flows import Target
from sluice.services.config.integration_checks import ConnectorClasses, integration_problems
from sluice.services.config.people import people_problems
from sluice.services.config.source import ConfigPath, ConfigProblem
from sluice.services.config.targeting import targeting_problems
from sluice.store.tables import Group, Identity, Integration

if TYPE_CHECKING:
    from sluice.services.config.document import ConfigDocument

CONFIG_SOURCE = "config"
MAX_GROUPS = 10_000  # groups one file may name in all
_LOOKUP_CHUNK = 5_000


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
        self.connectors = ConnectorClasses()
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

    def _integrations(self) -> None:
        self.problems += integration_problems(self.doc, self.connectors)
        for index, spec in enumerate(self.doc.integrations):
            if spec.owner:
                self._identity_refs.append((spec.owner, ("integrations", index, "owner"), "owner"))

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
        cls, _ = self.connectors.get(kind)
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
