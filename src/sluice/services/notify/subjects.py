"""What a notification is about, read from the store for an outbox row: the request (or grant) the
event names, as it is now. Read once per event by the core; channels never touch the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from sluice.domain.durations import format_duration
from sluice.domain.states import grant_state, request_state
from sluice.services.notify.channels import Subject
from sluice.store.queries import identity_by_email
from sluice.store.tables import AccessRequest, Grant, OutboxMessage

MAX_RESOURCES = 20


@dataclass(frozen=True)
class About:
    """The rows an event is about: its request and, for a grant event, its grant."""

    request: AccessRequest | None
    grant: Grant | None


def about(session: Session, message: OutboxMessage) -> About:
    subject: dict[str, Any] = message.payload.get("subject") or {}
    kind, key = subject.get("type"), str(subject.get("id") or "")
    if kind == "request":
        return About(session.get(AccessRequest, key), None)
    if kind == "grant":
        grant = session.get(Grant, key)
        return About(grant.request if grant is not None else None, grant)
    return About(None, None)


def portal_link(public_url: str | None, request_id: str | None) -> str | None:
    if not public_url or not request_id:
        return None
    return f"{public_url.rstrip('/')}/requests/{request_id}"


def _state(grant: Grant) -> str:
    return grant_state(grant.desired, grant.actual, revoke_failed=grant.revoke_failed_at is not None).value


def read_subject(session: Session, message: OutboxMessage, public_url: str | None) -> Subject | None:
    """The subject of an outbox row's event, or None when the event is not about a request or grant
    (or what it named is gone)."""
    found = about(session, message)
    request, grant = found.request, found.grant
    if request is None and grant is None:
        return None
    state = ""
    grants = [grant] if grant is not None else list(request.grants if request is not None else [])
    paths = list(dict.fromkeys(g.resource_path for g in grants))
    person = request.requester if request is not None else grant.identity  # type: ignore[union-attr]
    if grant is not None:
        state = _state(grant)
    elif request is not None:
        state = request_state(request.status, [grant_state(g.desired, g.actual) for g in grants]).value
    seconds = request.duration_seconds if request is not None else (grant.duration_seconds if grant else 0)
    details = message.payload.get("details") or {}
    return Subject(
        request_id=request.id if request is not None else None,
        grant_id=grant.id if grant is not None else None,
        requester_name=person.name or person.email,
        requester_email=person.email,
        resources=paths[:MAX_RESOURCES],
        resource_count=len(paths),
        permission=grants[0].permission if grants else "",
        duration=format_duration(timedelta(seconds=seconds)) if seconds else None,
        reason=(request.reason or None) if request is not None else None,
        flow=request.flow_name if request is not None else (grant.flow_name if grant else None),
        state=state,
        decided_by=_name_of(session, request.decided_by if request is not None else None),
        decision_reason=request.decision_reason if request is not None else None,
        ends_at=grant.ends_at if grant is not None else _latest_end(grants),
        break_glass=bool(details.get("break_glass")) or message.topic == "request.break_glass",
        portal_url=portal_link(public_url, request.id if request is not None else None),
        reviewed_by=_name_of(session, request.reviewed_by if request is not None else None),
        review_outcome=request.review_outcome if request is not None else None,
        review_reason=request.review_reason if request is not None else None,
    )


def _name_of(session: Session, actor: str | None) -> str | None:
    """A person's name for an actor recorded by email (an actor such as "sluice" stays as it is)."""
    if actor and "@" in actor and (who := identity_by_email(session, actor)) is not None:
        return who.name or who.email
    return actor


def _latest_end(grants: list[Grant]) -> Any:
    ends = [g.ends_at for g in grants if g.ends_at is not None]
    return max(ends) if ends else None
