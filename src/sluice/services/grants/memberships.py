"""The membership capability handed to the built-in groups connector: a few verbs over Sluice's own
group table, each in its own short transaction, and nothing else of the store.

A membership that starts or ends is a directory change like any other: it queues a re-evaluation of
the member in the same transaction, so grants that the membership allowed (a flow whose requesters
are the group) end on the worker's next pass, not at the periodic full re-evaluation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.errors import TargetError
from sluice.store.db import transaction
from sluice.store.people_queries import record_people_change
from sluice.store.queries import identity_by_email
from sluice.store.tables import Group, GroupMember
from sluice.store.types import new_id

GRANT_SOURCE_PREFIX = "grant:"


def wall_clock() -> datetime:
    return datetime.now(UTC)


class StoreMemberships:
    def __init__(
        self, factory: sessionmaker[Session], integration: str, *, clock: Callable[[], datetime] = wall_clock
    ) -> None:
        self._factory = factory
        self._integration = integration
        self._clock = clock

    def _group(self, session: Session, name: str) -> Group:
        group = session.scalar(select(Group).where(Group.name == name))
        if group is None:
            try:
                with session.begin_nested():  # two grants may create the group at once
                    group = Group(id=new_id("grp"), name=name, source=f"builtin:{self._integration}")
                    session.add(group)
            except IntegrityError:
                group = session.scalars(select(Group).where(Group.name == name)).one()
        return group

    def add(self, *, group: str, email: str, grant_id: str, expires_at: datetime | None) -> None:
        with transaction(self._factory) as session:
            identity = identity_by_email(session, email)
            if identity is None:
                raise TargetError(f"no identity {email} to add to group {group}", retryable=False)
            row = self._group(session, group)
            source = GRANT_SOURCE_PREFIX + grant_id
            existing = session.get(GroupMember, (row.id, identity.id, source))
            if existing is None:
                session.add(
                    GroupMember(
                        group_id=row.id, identity_id=identity.id, source=source, expires_at=expires_at
                    )
                )
                self._changed(session, identity.id, f"joined group {group} by grant {grant_id}")
            else:
                existing.expires_at = expires_at

    def remove(self, *, group: str, grant_id: str) -> None:
        with transaction(self._factory) as session:
            members = (
                GroupMember.source == GRANT_SOURCE_PREFIX + grant_id,
                GroupMember.group_id.in_(select(Group.id).where(Group.name == group)),
            )
            ended = list(session.scalars(select(GroupMember.identity_id).where(*members)))
            session.execute(delete(GroupMember).where(*members))
            for identity_id in sorted(set(ended)):
                self._changed(session, identity_id, f"left group {group}: grant {grant_id} ended")

    def _changed(self, session: Session, identity_id: str, reason: str) -> None:
        record_people_change(session, identity_id=identity_id, reason=reason, now=self._clock())

    def list_grant_members(self) -> list[tuple[str, str]]:
        with transaction(self._factory) as session:
            rows = session.execute(
                select(Group.name, GroupMember.source)
                .join(GroupMember, GroupMember.group_id == Group.id)
                .where(GroupMember.source.startswith(GRANT_SOURCE_PREFIX))
            )
            return [(name, source[len(GRANT_SOURCE_PREFIX) :]) for name, source in rows]

    def groups(self) -> list[tuple[str, str]]:
        with transaction(self._factory) as session:
            return [(g.name, g.description) for g in session.scalars(select(Group).order_by(Group.name))]
