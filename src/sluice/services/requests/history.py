"""Who asked for what, read in batch for a page: a requester's recent requests for the approvals inbox
(what else they asked for lately and what became of it: status, resources, when; no reasons and no
decisions' words, enough to judge a new ask, not a second way to read requests), and which of a
page's requests a person asked for (and so may withdraw)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from sluice.store.tables import AccessRequest, Grant, Identity


@dataclass(frozen=True)
class PastRequest:
    id: str
    status: str
    created_at: datetime
    units: list[str] = field(default_factory=list)  # "permission on path", in grant order


_RANKED = (
    select(
        AccessRequest.id,
        AccessRequest.requester_id,
        AccessRequest.status,
        AccessRequest.created_at,
        func.row_number()
        .over(
            partition_by=AccessRequest.requester_id,
            order_by=(AccessRequest.created_at.desc(), AccessRequest.id.desc()),
        )
        .label("newness"),
    )
    .where(AccessRequest.requester_id.in_(bindparam("requester_ids", expanding=True)))
    .subquery()
)
_LATEST = (
    select(_RANKED.c.id, _RANKED.c.requester_id, _RANKED.c.status, _RANKED.c.created_at)
    .where(_RANKED.c.newness <= bindparam("per_person"))
    .order_by(_RANKED.c.requester_id, _RANKED.c.newness)
)
_UNITS = (
    select(Grant.request_id, Grant.permission, Grant.resource_path)
    .where(Grant.request_id.in_(bindparam("request_ids", expanding=True)))
    .order_by(Grant.request_id, Grant.id)
)


def recent_requests(
    session: Session, requester_ids: set[str], *, per_person: int
) -> dict[str, list[PastRequest]]:
    """Requester id -> their `per_person` newest requests (any status), newest first; two queries
    for all of them."""
    if not requester_ids or per_person < 1:
        return {}
    rows = session.execute(_LATEST, {"requester_ids": sorted(requester_ids), "per_person": per_person}).all()
    units: dict[str | None, list[str]] = defaultdict(list)
    if rows:
        for request_id, permission, path in session.execute(_UNITS, {"request_ids": [r.id for r in rows]}):
            units[request_id].append(f"{permission} on {path}")
    recent: dict[str, list[PastRequest]] = defaultdict(list)
    for row in rows:
        recent[row.requester_id].append(PastRequest(row.id, row.status, row.created_at, units[row.id]))
    return dict(recent)


def asked_by(session: Session, *, requester: Identity, request_ids: set[str]) -> set[str]:
    """Those of `request_ids` that `requester` asked for (and so may withdraw), in one query."""
    if not request_ids:
        return set()
    return set(
        session.scalars(
            select(AccessRequest.id).where(
                AccessRequest.id.in_(sorted(request_ids)), AccessRequest.requester_id == requester.id
            )
        )
    )
