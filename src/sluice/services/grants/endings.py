"""Transitions of grant rows that the services and the worker share. Each sets what *should* be; the
worker makes the target match."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from sluice.domain.states import Desired, awaits_start, is_ended, never_touched
from sluice.events.audit import Action, NewEvent, new_event
from sluice.events.audit_batch import record_many
from sluice.store.bulk import Prepared, update_by_id
from sluice.store.tables import AccessRequest, Grant, Identity


def activate_request_grants(session: Session, request: AccessRequest, now: datetime) -> None:
    """An approved request's grants should now exist, until now + the requested duration. A request
    for a later start keeps them pending until then (the worker starts them); the duration counts from
    the start, not from the asking. Nothing is flushed here: the caller's next flush writes the rows
    (for a request just submitted, together with their INSERT)."""
    start = max(now, request.starts_at or now)
    for grant in request.grants:
        if not awaits_start(grant.desired):
            continue
        grant.starts_at = start
        grant.ends_at = start + timedelta(seconds=grant.duration_seconds)
        grant.updated_at = now
        if start > now:
            continue
        grant.desired = Desired.ACTIVE
        grant.next_attempt_at = None


def _ending(
    ends_at: datetime | None, actual: str, revoked_at: datetime | None, *, now: datetime, reason: str
) -> dict[str, Any]:
    """The columns ending a live grant sets: to be revoked, due at its end time for an expiry and now
    for an early revoke, with a fresh count of attempts; one that never touched the target is over."""
    return {
        "desired": Desired.REVOKED.value,
        "end_reason": reason,
        "revoke_requested_at": ends_at if ends_at is not None and ends_at < now else now,
        "next_attempt_at": None,
        "attempts": 0,
        "updated_at": now,
        "revoked_at": now if never_touched(actual) else revoked_at,
    }


# Some of a grant's columns, read as a row rather than loaded as an object (`ENDING_COLUMNS`, …).
GrantRow: TypeAlias = Row[*tuple[Any, ...]]


def _ended_event(
    grant: Grant | GrantRow, grantee: str | None, *, now: datetime, actor: str, action: Action, reason: str
) -> NewEvent:
    """The event of one grant ended, from its object or its row (`ENDING_COLUMNS`)."""
    return new_event(
        now=now,
        actor=actor,
        action=action,
        subject_type="grant",
        subject_id=grant.id,
        reason=reason,
        request_id=grant.request_id,
        grantee=grantee,
        resource=grant.resource_path,
        permission=grant.permission,
    )


def end_grants(
    session: Session,
    grants: Iterable[Grant],
    *,
    now: datetime,
    actor: str,
    action: Action,
    reason: str,
) -> list[Grant]:
    """Mark live grants as to be revoked. A grant that never touched the target simply ends."""
    ended = []
    events = []
    for grant in grants:
        if is_ended(grant.desired):
            continue
        for name, value in _ending(
            grant.ends_at, grant.actual, grant.revoked_at, now=now, reason=reason
        ).items():
            setattr(grant, name, value)
        events.append(
            _ended_event(grant, grant.identity.email, now=now, actor=actor, action=action, reason=reason)
        )
        ended.append(grant)
    record_many(session, events)
    return ended


# What ending a grant reads of it, for `end_grant_rows`: a query to narrow (and lock) as the caller needs.
ENDING_COLUMNS = select(
    Grant.id,
    Grant.desired,
    Grant.actual,
    Grant.ends_at,
    Grant.revoked_at,
    Grant.request_id,
    Grant.resource_path,
    Grant.permission,
    Identity.email,
).outerjoin(Identity, Grant.identity_id == Identity.id)  # outer: a grant ends even without its grantee row

_END_ROW = update_by_id(Grant, _ending(None, "", None, now=datetime.min, reason=""), key="grant_id")


def end_grant_rows(
    session: Session, rows: Sequence[GrantRow], *, now: datetime, actor: str, action: Action, reason: str
) -> list[GrantRow]:
    """`end_grants` for rows read with `ENDING_COLUMNS` (and locked) rather than loaded as objects:
    the same changes and events, written with one prebuilt statement per table, for the passes that
    end hundreds at once (expiry). The session must hold none of these grants as objects."""
    ended = [row for row in rows if not is_ended(row.desired)]
    Prepared(session, _END_ROW, reuse=True).execute_many(
        [
            {"grant_id": row.id, **_ending(row.ends_at, row.actual, row.revoked_at, now=now, reason=reason)}
            for row in ended
        ]
    )
    record_many(
        session,
        [_ended_event(row, row.email, now=now, actor=actor, action=action, reason=reason) for row in ended],
    )
    return ended
