"""What happens when a resource disappears from its target: requests still waiting for a decision on
it are closed (cancelled by Sluice, with the reason), since nothing could be granted on it any more."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.states import RequestStatus
from sluice.events.audit import Action
from sluice.services.requests.decisions import close_pending
from sluice.store.tables import AccessRequest, Grant


def close_requests_on_vanished(
    session: Session, resource_ids: Sequence[str], paths: dict[str, str], now: datetime
) -> list[str]:
    """Cancel pending requests holding a grant on one of these (now deleted) resources."""
    if not resource_ids:
        return []
    closed: list[str] = []
    ids = list(resource_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        requests = session.scalars(
            select(AccessRequest)
            .where(
                AccessRequest.status == RequestStatus.PENDING,
                AccessRequest.id.in_(select(Grant.request_id).where(Grant.resource_id.in_(chunk))),
            )
            .with_for_update()
        ).all()
        for request in requests:
            gone = sorted({paths[g.resource_id] for g in request.grants if g.resource_id in paths})
            reason = f"resource no longer exists in the target: {', '.join(gone)}"
            if close_pending(
                session,
                request,
                status=RequestStatus.CANCELLED,
                now=now,
                reason=reason,
                action=Action.REQUEST_CANCELLED,
                grants_reason=reason,
                resources=gone,
            ):
                closed.append(request.id)
    return closed
