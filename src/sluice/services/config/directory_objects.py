"""Apply steps for the directory the file declares: identities, groups and their `config` memberships.

Identities the file no longer names are deactivated (never deleted); groups are deleted once no
membership the config does not manage (a grant's) remains. A row a SCIM source owns is a conflict.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from sluice.services.config.checks import CONFIG_SOURCE
from sluice.services.config.reconciler import Reconciler, assign, differences
from sluice.services.directory.sources import owned_by_directory, source_words
from sluice.store.tables import Group, GroupMember, Identity
from sluice.store.types import new_id


def reconcile_directory(walker: Reconciler) -> None:
    """Identities, groups and memberships, in that order (memberships need both), then the groups the
    file no longer names once their config memberships are gone."""
    _identities(walker)
    _groups(walker)
    _memberships(walker)
    _remove_stale_groups(walker)


def _owned_elsewhere(walker: Reconciler, kind: str, name: str, source: str) -> bool:
    """A directory source (SCIM) owns this: the file may not take it over; a conflict, not a merge."""
    if not owned_by_directory(source):
        return False
    walker.conflicts.append(
        f"{kind} {name!r} is owned by {source_words(source)}; the config file cannot change it. "
        f"Remove it from the file, or from the identity provider first"
    )
    return True


def _identities(walker: Reconciler) -> None:
    session, doc = walker.session, walker.doc
    emails = [spec.email for spec in doc.identities]
    lowered = func.lower(Identity.email)
    rows = session.scalars(select(Identity).where(or_(Identity.source == CONFIG_SOURCE, lowered.in_(emails))))
    existing = {row.email.lower(): row for row in rows}
    for spec in doc.identities:
        wanted = {
            "name": spec.name,
            "active": spec.active,
            "manager_email": spec.manager,
            "attributes": dict(spec.attributes),
            "source": CONFIG_SOURCE,
        }
        row = existing.get(spec.email)
        if row is not None and _owned_elsewhere(walker, "identity", spec.email, row.source):
            continue
        if row is None:
            if walker.write:
                row = Identity(
                    id=new_id("id"), email=spec.email, created_at=walker.now, updated_at=walker.now
                )
                assign(row, wanted)
                session.add(row)
            walker.created("identity", spec.email)
        elif changed := differences(row, wanted):
            if walker.write:
                assign(row, wanted)
                row.updated_at = walker.now
            walker.changed("identity", spec.email, changed)
        if row is not None:
            walker.identities[spec.email] = row
    declared = set(emails)
    for email, row in existing.items():
        if email not in declared and row.source == CONFIG_SOURCE and row.active:
            if walker.write:
                row.active = False
                row.updated_at = walker.now
            walker.removed("identity", row.email, "deactivated")


def _groups(walker: Reconciler) -> None:
    session = walker.session
    declared = walker.doc.declared_groups()
    rows = session.scalars(
        select(Group).where(or_(Group.source == CONFIG_SOURCE, Group.name.in_(list(declared))))
    )
    existing = {row.name: row for row in rows}
    for name, description in declared.items():
        wanted: dict[str, Any] = {"source": CONFIG_SOURCE}
        if description is not None:
            wanted["description"] = description
        row = existing.get(name)
        if row is not None and _owned_elsewhere(walker, "group", name, row.source):
            continue
        if row is None:
            if walker.write:
                row = Group(id=new_id("grp"), name=name, description=description or "")
                assign(row, wanted)
                session.add(row)
            walker.created("group", name)
        elif changed := differences(row, wanted):
            if walker.write:
                assign(row, wanted)
            walker.changed("group", name, changed)
        if row is not None:
            walker.groups[name] = row
    walker.stale_groups = [
        row for name, row in existing.items() if name not in declared and row.source == CONFIG_SOURCE
    ]


def _memberships(walker: Reconciler) -> None:
    session = walker.session
    rows = session.execute(
        select(GroupMember, Group.name, Identity.email)
        .join(Group, Group.id == GroupMember.group_id)
        .join(Identity, Identity.id == GroupMember.identity_id)
        .where(GroupMember.source == CONFIG_SOURCE)
    )
    existing = {(group, email.lower()): member for member, group, email in rows}
    desired = [(group, spec.email) for spec in walker.doc.identities for group in spec.groups]
    for group, email in desired:
        if (group, email) in existing:
            continue
        if walker.write:
            session.add(
                GroupMember(
                    group_id=walker.groups[group].id,
                    identity_id=walker.identities[email].id,
                    source=CONFIG_SOURCE,
                    expires_at=None,
                )
            )
        walker.created("membership", f"{group}/{email}")
    wanted = set(desired)
    for (group, email), member in existing.items():
        if (group, email) not in wanted:
            if walker.write:
                session.delete(member)
            walker.removed("membership", f"{group}/{email}")


def _remove_stale_groups(walker: Reconciler) -> None:
    """Delete the groups the file no longer names, unless memberships it does not manage remain."""
    session = walker.session
    for row in walker.stale_groups:
        others = session.scalar(
            select(func.count())
            .select_from(GroupMember)
            .where(GroupMember.group_id == row.id, GroupMember.source != CONFIG_SOURCE)
        )
        if others:
            walker.plan.warnings.append(
                f"group {row.name!r} is no longer in the config but has {others} membership(s) the "
                "config does not manage (e.g. temporary ones from grants); it stays until they end"
            )
            continue
        if walker.write:
            session.flush()  # its config memberships go first
            session.delete(row)
        walker.removed("group", row.name)
