"""Writing an LDAP snapshot's groups and memberships as the source `ldap:<name>`.

Groups come from group entries (their `member` / `uniqueMember` values) and, with
`member_of_attribute`, from the people's own entries (`memberOf`). A group name another source owns is
a conflict: reported, and its members are not written. Memberships are `group_members` rows with the
source, so memberships from the config file, SCIM or grants are never touched. A group the directory
no longer has loses the source's members, and goes once nothing else holds members in it. Nothing
here commits."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, func, or_, select

from sluice.connectors import ldap_dn
from sluice.events.audit import Action
from sluice.services.directory.ldap_people import SyncContext
from sluice.services.directory.ldap_reader import DirectorySnapshot, DnKey, dn_key
from sluice.store.people_queries import record_people_change
from sluice.store.tables import Group, GroupMember, Identity
from sluice.store.types import new_id


def wanted_groups(snapshot: DirectorySnapshot, owned: dict[DnKey, Identity]) -> dict[str, set[str]]:
    """Group name -> ids of the source's identities in it."""
    names: dict[DnKey, str] = {}
    members: dict[str, set[str]] = {}
    for group in sorted(snapshot.groups, key=lambda g: g.dn.lower()):
        key = dn_key(group.dn)
        if key is None or group.name in members:
            continue
        names[key] = group.name
        members[group.name] = {owned[k].id for m in group.members if (k := dn_key(m)) in owned}
    member_of = {key: person.member_of for person in snapshot.people if (key := dn_key(person.dn))}
    for key, identity in owned.items():
        for group_dn in member_of.get(key, []):
            name = _group_name(group_dn, names, snapshot.groups_read)
            if name:
                members.setdefault(name, set()).add(identity.id)
    return members


def _group_name(group_dn: str, names: dict[DnKey, str], groups_read: bool) -> str | None:
    """A `memberOf` value's group: the group read with that DN; when groups are not read, the value of
    the DN's first RDN (`cn=sre,ou=groups,…` is `sre`)."""
    key = dn_key(group_dn)
    if key is None:
        return None
    if key in names or groups_read:
        return names.get(key)
    return ldap_dn.rdns(group_dn)[0][1] or None


def sync_groups(ctx: SyncContext, wanted: dict[str, set[str]]) -> None:
    session = ctx.session
    rows = session.scalars(
        select(Group).where(or_(Group.source == ctx.source, Group.name.in_(sorted(wanted))))
    )
    existing = {row.name: row for row in rows}
    mine: dict[str, Group] = {}
    for name in sorted(wanted):
        row = existing.get(name)
        if row is not None and row.source != ctx.source:
            ctx.conflict("group", name, row.source)
            continue
        if row is None:
            row = Group(id=new_id("grp"), name=name, description="", source=ctx.source)
            session.add(row)
            ctx.result.groups_created += 1
            ctx.audit("group", name, Action.OBJECT_CREATED, [])
        mine[name] = row
    session.flush()
    _sync_memberships(ctx, {mine[n].id: ids for n, ids in wanted.items() if n in mine}, mine)
    for name, row in existing.items():
        if row.source == ctx.source and name not in wanted:
            _remove_group(ctx, row)


def _sync_memberships(ctx: SyncContext, wanted: dict[str, set[str]], groups: dict[str, Group]) -> None:
    session = ctx.session
    current: dict[str, set[str]] = defaultdict(set)
    query = select(GroupMember.group_id, GroupMember.identity_id).where(GroupMember.source == ctx.source)
    for group_id, identity_id in session.execute(query):
        current[group_id].add(identity_id)
    emails = dict(
        session.execute(select(Identity.id, Identity.email).where(Identity.source == ctx.source)).all()
    )
    for name, group in groups.items():
        want, have = wanted.get(group.id, set()), current.get(group.id, set())
        added, removed = sorted(want - have), sorted(have - want)
        if not added and not removed:
            continue
        session.add_all(
            GroupMember(group_id=group.id, identity_id=i, source=ctx.source, expires_at=None) for i in added
        )
        if removed:
            session.execute(
                delete(GroupMember).where(
                    GroupMember.group_id == group.id,
                    GroupMember.source == ctx.source,
                    GroupMember.identity_id.in_(removed),
                )
            )
        ctx.result.memberships_added += len(added)
        ctx.result.memberships_removed += len(removed)
        words = [f"added {emails.get(i, i)}" for i in added] + [
            f"removed {emails.get(i, i)}" for i in removed
        ]
        ctx.audit("group", name, Action.OBJECT_CHANGED, ["members"], "; ".join(words))
        for identity_id in [*added, *removed]:
            record_people_change(
                session,
                identity_id=identity_id,
                reason=f"{ctx.source}: members of {name} changed",
                now=ctx.now,
            )


def _remove_group(ctx: SyncContext, row: Group) -> None:
    session = ctx.session
    members = list(
        session.scalars(
            select(GroupMember.identity_id).where(
                GroupMember.group_id == row.id, GroupMember.source == ctx.source
            )
        )
    )
    session.execute(
        delete(GroupMember).where(GroupMember.group_id == row.id, GroupMember.source == ctx.source)
    )
    for identity_id in members:
        record_people_change(
            session, identity_id=identity_id, reason=f"{ctx.source}: group {row.name} is gone", now=ctx.now
        )
    ctx.result.memberships_removed += len(members)
    others = session.scalar(
        select(func.count()).select_from(GroupMember).where(GroupMember.group_id == row.id)
    )
    if others:
        ctx.result.warnings.append(
            f"group {row.name} is gone from the directory but holds {others} membership(s) of other sources; "
            "it stays until they end"
        )
        return
    session.delete(row)
    ctx.result.groups_removed += 1
    ctx.audit("group", row.name, Action.OBJECT_REMOVED, [])
