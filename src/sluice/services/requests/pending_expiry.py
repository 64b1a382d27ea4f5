"""Pending requests nobody answered in time expire at their deadline: the worker's duty, and the pass
it runs (each request closed like any other ending, `decisions.close_pending`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.states import RequestStatus
from sluice.events.audit import Action
from sluice.services.requests.decisions import close_pending
from sluice.store.db import transaction
from sluice.store.tables import AccessRequest


def expire_pending_requests(session: Session, *, now: datetime) -> list[str]:
    """Pending requests nobody answered in time expire."""
    due = session.scalars(
        select(AccessRequest)
        .where(AccessRequest.status == RequestStatus.PENDING, AccessRequest.pending_until <= now)
        .with_for_update(skip_locked=True)
    ).all()
    return [
        request.id
        for request in due
        if close_pending(
            session,
            request,
            status=RequestStatus.EXPIRED,
            now=now,
            reason="nobody approved it in time",
            action=Action.REQUEST_EXPIRED,
            grants_reason="request expired",
            event_reason=f"no decision by {request.pending_until:%Y-%m-%d %H:%M:%S} UTC",
        )
    ]


# Built once: the worker asks every pass.
_FIRST_PENDING_END = select(func.min(AccessRequest.pending_until)).where(
    AccessRequest.status == RequestStatus.PENDING
)


class PendingRequestExpiry:
    """The worker's duty: expire pending requests at their deadline."""

    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def run(self) -> list[str]:
        with transaction(self.factory) as session:
            return expire_pending_requests(session, now=self.clock())

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        return session.scalar(_FIRST_PENDING_END)
