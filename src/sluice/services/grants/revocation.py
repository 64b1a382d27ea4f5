"""Taking access away early (by the grantee, an approver or an admin) and at its end time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.errors import Conflict, NotAllowed, NotFound
from sluice.domain.states import should_be_active
from sluice.events.audit import Action
from sluice.services.grants.endings import ENDING_COLUMNS, GrantRow, end_grant_rows, end_grants
from sluice.services.requests.approvals import approves_grant
from sluice.store.db import transaction
from sluice.store.grant_states import grant_due_to_expire, grant_should_be_active
from sluice.store.locks import lock_grants
from sluice.store.tables import AccessRequest, Grant, Identity


def _may_revoke(session: Session, grant: Grant, actor: Identity, is_admin: bool, now: datetime) -> bool:
    return is_admin or actor.id == grant.identity_id or approves_grant(session, grant, actor, now)


def revoke_grant(
    session: Session, *, grant_id: str, actor: Identity, is_admin: bool, reason: str, now: datetime
) -> Grant:
    grant = session.scalar(select(Grant).where(Grant.id == grant_id).with_for_update())
    if grant is None:
        raise NotFound(f"no grant {grant_id!r}")
    if not _may_revoke(session, grant, actor, is_admin, now):
        raise NotAllowed("only the grantee, an approver of its flow or an admin can revoke this grant")
    if not should_be_active(grant.desired):
        raise Conflict(f"grant {grant.id} is not active (it is {grant.desired}); nothing to revoke")
    end_grants(
        session,
        [grant],
        now=now,
        actor=actor.email,
        action=Action.GRANT_REVOKE_REQUESTED,
        reason=reason or f"revoked by {actor.email}",
    )
    return grant


def revoke_request(
    session: Session, *, request_id: str, actor: Identity, is_admin: bool, reason: str, now: datetime
) -> AccessRequest:
    request = session.scalar(select(AccessRequest).where(AccessRequest.id == request_id).with_for_update())
    if request is None:
        raise NotFound(f"no request {request_id!r}")
    lock_grants(session, request.grants)  # an expiry or re-evaluation ending one meanwhile is seen
    live = [g for g in request.grants if should_be_active(g.desired)]
    if not live:
        raise Conflict(f"request {request.id} holds no active access to revoke")
    for grant in live:
        if not _may_revoke(session, grant, actor, is_admin, now):
            raise NotAllowed("only the grantee, an approver of its flow or an admin can revoke this request")
    end_grants(
        session,
        live,
        now=now,
        actor=actor.email,
        action=Action.GRANT_REVOKE_REQUESTED,
        reason=reason or f"revoked by {actor.email}",
    )
    return request


def expire_due_grants(session: Session, *, now: datetime, limit: int = 500) -> list[GrantRow]:
    """Grants whose end time has passed should be revoked. Rows another worker holds are skipped.
    Returns the rows ended (`ENDING_COLUMNS`: id, grantee email, …)."""
    due = session.execute(
        ENDING_COLUMNS.where(grant_due_to_expire(now))
        .order_by(Grant.ends_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Grant)  # not the grantee's row: others expire theirs
    ).all()
    return end_grant_rows(
        session, due, now=now, actor="sluice", action=Action.GRANT_EXPIRED, reason="lease ended"
    )


_FIRST_END = select(func.min(Grant.ends_at)).where(grant_should_be_active())  # built once, asked every pass


class GrantExpiry:
    """The worker's duty: end every grant whose end time has passed, in batches. The worker also runs
    it while target calls are under way, so a grant coming due meanwhile is not kept waiting."""

    BATCH = 500

    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def run(self) -> int:
        """Returns how many grants were ended."""
        ended = 0
        while True:
            with transaction(self.factory) as session:
                batch = len(expire_due_grants(session, now=self.clock(), limit=self.BATCH))
            ended += batch
            if batch < self.BATCH:
                return ended

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        return session.scalar(_FIRST_END)
