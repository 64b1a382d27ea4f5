"""The people side of the config file: on-call `schedules:`, and checks of the conditions flows write
on people (an attribute nobody has, a schedule that does not exist). Applying queues a re-evaluation
of everyone, the same path a directory change takes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sluice.domain.people import BUILTIN_ATTRIBUTES, Subject
from sluice.services.config.directory_sources import directory_attributes, directory_source_problems
from sluice.services.config.source import ConfigPath
from sluice.services.directory.scim_user_fields import scim_attributes
from sluice.store.people_queries import known_attributes, record_people_change
from sluice.store.people_tables import Schedule
from sluice.store.types import new_id

if TYPE_CHECKING:
    from sluice.services.config.document import ConfigDocument

CONFIG_SOURCE = "config"


def _subjects(doc: ConfigDocument) -> Iterator[tuple[Subject, ConfigPath]]:
    for index, flow in enumerate(doc.flows):
        base: ConfigPath = ("flows", index)
        for role in ("requesters", "approvers", "grantees", "on_behalf"):
            for number, subject in enumerate(getattr(flow, role) or []):
                yield subject, (*base, role, number)
        if flow.approval is not None:
            tiers = [
                ("approval",),
                *[("approval", "escalation", n) for n in range(len(flow.approval.escalation))],
            ]
            for tier_path, tier in zip(tiers, flow.approval.tiers(), strict=True):
                for g, group in enumerate(tier.groups):
                    for a, approver in enumerate(group.approvers):
                        path: ConfigPath = (*base, *tier_path, "groups", g, "approvers", a)
                        if approver.condition is not None:
                            yield approver.condition, (*path, "condition")
                        elif approver.shift:
                            yield Subject(shift=approver.shift), (*path, "shift")


def _shifts(subject: Subject) -> set[str]:
    found = {subject.shift} if subject.shift else set()
    if subject.attribute == "shift":
        operand = subject.operand("is") or subject.operand("in") or []
        found |= {operand} if isinstance(operand, str) else set(operand)
    for child in (subject.all or []) + (subject.any or []):
        found |= _shifts(child)
    return found


def people_problems(checker: Any, doc: ConfigDocument, session: Session | None) -> None:
    """Add to `checker` (config_checks._Checker) a problem for each condition on an attribute no
    identity has, and each shift naming an unknown schedule."""
    attributes = {key for identity in doc.identities for key in identity.attributes}
    attributes |= doc.unchecked("attributes") | directory_attributes(doc, session)
    directory_source_problems(checker, doc)
    schedules = {s.name for s in doc.schedules} | doc.unchecked("schedules")
    if session is not None:
        attributes |= known_attributes(session) | scim_attributes(session)
        schedules |= set(session.scalars(select(Schedule.name).where(Schedule.source != CONFIG_SOURCE)))
    for subject, path in _subjects(doc):
        unknown = sorted(subject.attributes_used() - set(BUILTIN_ATTRIBUTES) - attributes)
        if unknown:
            known = ", ".join(sorted(attributes | set(BUILTIN_ATTRIBUTES)))
            checker.add(path, f"condition on unknown attribute {unknown[0]!r}; attributes: {known}")
        for name in sorted(_shifts(subject) - schedules):
            declared = ", ".join(sorted(schedules)) or "none"
            checker.add(path, f"shift {name!r} names no schedule (declared under schedules: {declared})")


def reconcile_people(reconciler: Any) -> None:
    """Make the store's schedules match the document (same rules as the other objects: created,
    changed, removed when the file no longer names one it manages)."""
    session: Session = reconciler.session
    doc: ConfigDocument = reconciler.doc
    names = [s.name for s in doc.schedules]
    rows = session.scalars(
        select(Schedule).where(or_(Schedule.source == CONFIG_SOURCE, Schedule.name.in_(names)))
    )
    existing = {row.name: row for row in rows}
    for spec in doc.schedules:
        wanted = spec.model_dump(mode="json")
        row = existing.get(spec.name)
        if row is None:
            if reconciler.write:
                session.add(
                    Schedule(
                        id=new_id("sch"),
                        name=spec.name,
                        spec=wanted,
                        source=CONFIG_SOURCE,
                        created_at=reconciler.now,
                        updated_at=reconciler.now,
                    )
                )
            reconciler.created("schedule", spec.name)
        elif row.spec != wanted or row.source != CONFIG_SOURCE:
            changed = sorted(k for k in wanted.keys() | row.spec.keys() if wanted.get(k) != row.spec.get(k))
            if reconciler.write:
                if spec.ical != row.spec.get("ical"):
                    row.feed_text = None
                row.spec, row.source, row.updated_at = wanted, CONFIG_SOURCE, reconciler.now
            reconciler.changed("schedule", spec.name, changed or ["source"])
    for name, row in existing.items():
        if name not in names and row.source == CONFIG_SOURCE:
            if reconciler.write:
                session.delete(row)
            reconciler.removed("schedule", name)
    if reconciler.write:
        record_people_change(session, identity_id=None, reason="config applied", now=reconciler.now)
