"""Read-only questions about the directory: people and groups with pages, and memberships as of now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sluice.domain.errors import NotFound
from sluice.services.pages import Page, page_of
from sluice.store.queries import identity_by_email
from sluice.store.tables import Group, GroupMember, Identity


def _membership_filter(now: datetime) -> Any:
    return or_(GroupMember.expires_at.is_(None), GroupMember.expires_at > now)


def list_identities(session: Session, *, limit: int, offset: int) -> Page[Identity]:
    return page_of(session, select(Identity).order_by(Identity.email), limit, offset)


def identity(session: Session, email: str) -> Identity:
    row = identity_by_email(session, email)
    if row is None:
        raise NotFound(f"no identity {email!r}")
    return row


def group_names_by_identity(
    session: Session, identities: Sequence[Identity], now: datetime
) -> dict[str, list[str]]:
    names: dict[str, set[str]] = defaultdict(set)
    ids = [i.id for i in identities]
    if ids:
        rows = session.execute(
            select(GroupMember.identity_id, Group.name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(GroupMember.identity_id.in_(ids), _membership_filter(now))
        )
        for identity_id, name in rows:
            names[identity_id].add(name)
    return {i: sorted(names.get(i, ())) for i in ids}


@dataclass(frozen=True)
class Member:
    email: str
    source: str
    expires_at: datetime | None


def list_groups(session: Session, *, limit: int, offset: int) -> Page[Group]:
    return page_of(session, select(Group).order_by(Group.name), limit, offset)


def group(session: Session, name: str) -> Group:
    row = session.scalar(select(Group).where(Group.name == name))
    if row is None:
        raise NotFound(f"no group {name!r}")
    return row


def members_by_group(session: Session, groups: Sequence[Group], now: datetime) -> dict[str, list[Member]]:
    """Current members of each group: directory ones and temporary ones a grant made."""
    members: dict[str, list[Member]] = {g.id: [] for g in groups}
    if groups:
        rows = session.execute(
            select(GroupMember.group_id, Identity.email, GroupMember.source, GroupMember.expires_at)
            .join(Identity, Identity.id == GroupMember.identity_id)
            .where(GroupMember.group_id.in_(list(members)), _membership_filter(now))
            .order_by(Identity.email, GroupMember.source)
        )
        for group_id, email, source, expires_at in rows:
            members[group_id].append(Member(email, source, expires_at))
    return members
