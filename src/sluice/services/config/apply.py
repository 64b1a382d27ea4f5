"""`sluice plan` / `sluice apply`: make the store match a config document.

Objects are keyed by email (identities) or name (groups, integrations, flows). Whatever the file names
is created or updated and marked `source = "config"`; objects marked so that the file no longer names
are removed: identities are deactivated (never deleted), groups and flows are deleted, integrations are
deleted only when no grant refers to them. Group memberships from the file are the `group_members`
rows with source `config`; memberships with any other source (temporary ones from grants) are never
touched. Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict
from sluice.domain.states import RequestStatus
from sluice.events.audit import Action, record
from sluice.services.audit.webhooks import reconcile_webhooks, webhook_problems
from sluice.services.config.checks import CONFIG_SOURCE, check_document
from sluice.services.config.directory_sources import reconcile_directory_sources
from sluice.services.config.file import ConfigDocument
from sluice.services.config.people import reconcile_people
from sluice.services.config.plan import Plan, PlanEntry
from sluice.services.config.source import ConfigError
from sluice.services.config.targeting import reconcile_targeting
from sluice.services.directory.sources import owned_by_directory, source_words
from sluice.store.grant_states import grant_is_live
from sluice.store.tables import AccessFlow, AccessRequest, Grant, Group, GroupMember, Identity, Integration
from sluice.store.types import new_id

__all__ = ["Plan", "PlanEntry", "apply_config", "plan_config"]


def plan_config(session: Session, doc: ConfigDocument) -> Plan:
    """What applying `doc` would change. Raises `ConfigError` for problems in the document (references
    are checked against the store here too) and `Conflict` for removals that cannot happen."""
    problems = check_document(doc, session) + webhook_problems(doc)
    if problems:
        raise ConfigError(problems)
    return _Reconciler(session, doc).run()


def apply_config(session: Session, doc: ConfigDocument, *, actor: str, now: datetime) -> Plan:
    """Make the store match `doc` and audit every change. All checks run before the first write, so a
    `ConfigError` or `Conflict` leaves the store as it was. Does not commit."""
    plan = plan_config(session, doc)
    if plan.is_empty:
        return plan
    applied = _Reconciler(session, doc, write=(actor, now)).run()
    record(
        session,
        now=now,
        actor=actor,
        action=Action.CONFIG_APPLIED,
        subject_type="config",
        subject_id=doc.source.filename[:200],
        counts=applied.counts(),
    )
    session.flush()
    return applied


# Column -> the word a person sees in a plan.
_LABELS = {"manager_email": "manager", "sync_interval_seconds": "sync_interval"}


def _differences(row: Any, wanted: Mapping[str, Any]) -> list[str]:
    return [_LABELS.get(key, key) for key, value in wanted.items() if getattr(row, key) != value]


def _assign(row: Any, wanted: Mapping[str, Any]) -> None:
    for key, value in wanted.items():
        setattr(row, key, value)


class _Reconciler:
    """Walks the document against the store once. Without `write` it only fills the plan; with
    `write=(actor, now)` it also makes each change and audits it."""

    def __init__(
        self, session: Session, doc: ConfigDocument, *, write: tuple[str, datetime] | None = None
    ) -> None:
        self.session = session
        self.doc = doc
        self.write = write
        self.plan = Plan()
        self.conflicts: list[str] = []
        self.identities: dict[str, Identity] = {}
        self.groups: dict[str, Group] = {}
        self.stale_groups: list[Group] = []

    def run(self) -> Plan:
        self._identities()
        self._groups()
        self._memberships()
        self._remove_stale_groups()
        self._integrations()
        reconcile_targeting(self)
        self._flows()
        reconcile_people(self)
        reconcile_webhooks(self)
        reconcile_directory_sources(self)
        if self.conflicts:
            raise Conflict("\n".join(self.conflicts), conflicts=self.conflicts)
        return self.plan

    @property
    def now(self) -> datetime:
        if self.write is None:
            raise RuntimeError("a plan has no clock")
        return self.write[1]

    def _event(self, action: Action, entry: PlanEntry, changed: list[str] | None = None) -> None:
        if self.write is None:
            return
        extra: dict[str, Any] = {"changed": changed} if changed else {}
        record(
            self.session,
            now=self.now,
            actor=self.write[0],
            action=action,
            subject_type=entry.kind,
            subject_id=entry.name[:200],
            kind=entry.kind,
            name=entry.name,
            **extra,
        )

    def created(self, kind: str, name: str) -> None:
        entry = PlanEntry(kind, name)
        self.plan.created.append(entry)
        self._event(Action.OBJECT_CREATED, entry)

    def changed(self, kind: str, name: str, fields: list[str]) -> None:
        entry = PlanEntry(kind, name)
        self.plan.changed.append(entry)
        self.plan.notes[entry] = ", ".join(fields)
        self._event(Action.OBJECT_CHANGED, entry, fields)

    def removed(self, kind: str, name: str, note: str = "") -> None:
        entry = PlanEntry(kind, name)
        self.plan.removed.append(entry)
        if note:
            self.plan.notes[entry] = note
        self._event(Action.OBJECT_REMOVED, entry)

    def _identities(self) -> None:
        emails = [spec.email for spec in self.doc.identities]
        lowered = func.lower(Identity.email)
        rows = self.session.scalars(
            select(Identity).where(or_(Identity.source == CONFIG_SOURCE, lowered.in_(emails)))
        )
        existing = {row.email.lower(): row for row in rows}
        for spec in self.doc.identities:
            wanted = {
                "name": spec.name,
                "active": spec.active,
                "manager_email": spec.manager,
                "attributes": dict(spec.attributes),
                "source": CONFIG_SOURCE,
            }
            row = existing.get(spec.email)
            if row is not None and self._owned_elsewhere("identity", spec.email, row.source):
                continue
            if row is None:
                if self.write:
                    row = Identity(
                        id=new_id("id"), email=spec.email, created_at=self.now, updated_at=self.now
                    )
                    _assign(row, wanted)
                    self.session.add(row)
                self.created("identity", spec.email)
            elif differences := _differences(row, wanted):
                if self.write:
                    _assign(row, wanted)
                    row.updated_at = self.now
                self.changed("identity", spec.email, differences)
            if row is not None:
                self.identities[spec.email] = row
        declared = set(emails)
        for email, row in existing.items():
            if email not in declared and row.source == CONFIG_SOURCE and row.active:
                if self.write:
                    row.active = False
                    row.updated_at = self.now
                self.removed("identity", row.email, "deactivated")

    def _owned_elsewhere(self, kind: str, name: str, source: str) -> bool:
        """A directory source (SCIM) owns this: the file may not take it over; a conflict, not a merge."""
        if not owned_by_directory(source):
            return False
        self.conflicts.append(
            f"{kind} {name!r} is owned by {source_words(source)}; the config file cannot change it. "
            f"Remove it from the file, or from the identity provider first"
        )
        return True

    def _groups(self) -> None:
        declared = self.doc.declared_groups()
        rows = self.session.scalars(
            select(Group).where(or_(Group.source == CONFIG_SOURCE, Group.name.in_(list(declared))))
        )
        existing = {row.name: row for row in rows}
        for name, description in declared.items():
            wanted: dict[str, Any] = {"source": CONFIG_SOURCE}
            if description is not None:
                wanted["description"] = description
            row = existing.get(name)
            if row is not None and self._owned_elsewhere("group", name, row.source):
                continue
            if row is None:
                if self.write:
                    row = Group(id=new_id("grp"), name=name, description=description or "")
                    _assign(row, wanted)
                    self.session.add(row)
                self.created("group", name)
            elif differences := _differences(row, wanted):
                if self.write:
                    _assign(row, wanted)
                self.changed("group", name, differences)
            if row is not None:
                self.groups[name] = row
        self.stale_groups = [
            row for name, row in existing.items() if name not in declared and row.source == CONFIG_SOURCE
        ]

    def _memberships(self) -> None:
        rows = self.session.execute(
            select(GroupMember, Group.name, Identity.email)
            .join(Group, Group.id == GroupMember.group_id)
            .join(Identity, Identity.id == GroupMember.identity_id)
            .where(GroupMember.source == CONFIG_SOURCE)
        )
        existing = {(group, email.lower()): member for member, group, email in rows}
        desired = [(group, spec.email) for spec in self.doc.identities for group in spec.groups]
        for group, email in desired:
            if (group, email) in existing:
                continue
            if self.write:
                self.session.add(
                    GroupMember(
                        group_id=self.groups[group].id,
                        identity_id=self.identities[email].id,
                        source=CONFIG_SOURCE,
                        expires_at=None,
                    )
                )
            self.created("membership", f"{group}/{email}")
        wanted = set(desired)
        for (group, email), member in existing.items():
            if (group, email) not in wanted:
                if self.write:
                    self.session.delete(member)
                self.removed("membership", f"{group}/{email}")

    def _remove_stale_groups(self) -> None:
        for row in self.stale_groups:
            others = self.session.scalar(
                select(func.count())
                .select_from(GroupMember)
                .where(GroupMember.group_id == row.id, GroupMember.source != CONFIG_SOURCE)
            )
            if others:
                self.plan.warnings.append(
                    f"group {row.name!r} is no longer in the config but has {others} membership(s) the "
                    "config does not manage (e.g. temporary ones from grants); it stays until they end"
                )
                continue
            if self.write:
                self.session.flush()  # its config memberships go first
                self.session.delete(row)
            self.removed("group", row.name)

    def _grant_count(self, integration_id: str, *, live_only: bool) -> int:
        query = select(func.count()).select_from(Grant).where(Grant.integration_id == integration_id)
        if live_only:
            query = query.where(grant_is_live())
        return self.session.scalar(query) or 0

    def _integrations(self) -> None:
        names = [spec.name for spec in self.doc.integrations]
        rows = self.session.scalars(
            select(Integration).where(or_(Integration.source == CONFIG_SOURCE, Integration.name.in_(names)))
        )
        existing = {row.name: row for row in rows}
        for spec in self.doc.integrations:
            wanted = {
                "kind": spec.kind,
                "config": spec.config,
                "owner": spec.owner,
                "sync_interval_seconds": spec.sync_interval_seconds,
                "source": CONFIG_SOURCE,
            }
            row = existing.get(spec.name)
            if row is None:
                if self.write:
                    row = Integration(
                        id=new_id("int"), name=spec.name, created_at=self.now, updated_at=self.now
                    )
                    _assign(row, wanted)
                    self.session.add(row)
                self.created("integration", spec.name)
                continue
            differences = _differences(row, wanted)
            if "kind" in differences and (live := self._grant_count(row.id, live_only=True)):
                self.conflicts.append(
                    f"integration {spec.name!r} cannot change kind from {row.kind} to {spec.kind} while it "
                    f"has {live} live grant(s) (pending or active); revoke them or wait for them to end first"
                )
            if differences:
                if self.write:
                    _assign(row, wanted)
                    row.updated_at = self.now
                self.changed("integration", spec.name, differences)
        for name, row in existing.items():
            if name not in names and row.source == CONFIG_SOURCE:
                self._remove_integration(row)

    def _remove_integration(self, row: Integration) -> None:
        live = self._grant_count(row.id, live_only=True)
        if live:
            self.conflicts.append(
                f"integration {row.name!r} is no longer in the config but has {live} live grant(s) (pending "
                "or active in the target); revoke them or wait for them to end, then apply again"
            )
            return
        ended = self._grant_count(row.id, live_only=False)
        if ended:
            self.conflicts.append(
                f"integration {row.name!r} is no longer in the config but {ended} ended grant(s) in the "
                "history still refer to it, so it cannot be deleted; keep it in the config"
            )
            return
        if self.write:
            self.session.delete(row)
        self.removed("integration", row.name)

    def _flows(self) -> None:
        names = [flow.name for flow in self.doc.flows]
        rows = self.session.scalars(
            select(AccessFlow).where(or_(AccessFlow.source == CONFIG_SOURCE, AccessFlow.name.in_(names)))
        )
        existing = {row.name: row for row in rows}
        for flow in self.doc.flows:
            spec = flow.model_dump(mode="json")
            row = existing.get(flow.name)
            if row is None:
                if self.write:
                    self.session.add(
                        AccessFlow(
                            id=new_id("flow"),
                            name=flow.name,
                            spec=spec,
                            source=CONFIG_SOURCE,
                            created_at=self.now,
                            updated_at=self.now,
                        )
                    )
                self.created("flow", flow.name)
                continue
            differences = sorted(k for k in spec.keys() | row.spec.keys() if spec.get(k) != row.spec.get(k))
            if row.source != CONFIG_SOURCE:
                differences.append("source")
            if differences:
                if self.write:
                    row.spec = spec
                    row.source = CONFIG_SOURCE
                    row.updated_at = self.now
                self.changed("flow", flow.name, differences)
        for name, row in existing.items():
            if name not in names and row.source == CONFIG_SOURCE:
                self._warn_pending_requests(name)
                if self.write:
                    self.session.delete(row)
                self.removed("flow", name)

    def _warn_pending_requests(self, flow: str) -> None:
        pending = self.session.scalar(
            select(func.count())
            .select_from(AccessRequest)
            .where(AccessRequest.flow_name == flow, AccessRequest.status == RequestStatus.PENDING)
        )
        if pending:
            self.plan.warnings.append(
                f"flow {flow!r} is removed while {pending} request(s) under it wait for approval; "
                "they can no longer be approved"
            )
