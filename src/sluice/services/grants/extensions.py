"""Making a grant last longer, within what its flow allows: at most `max_count` extensions, each at
most `length`, never past `ceiling` after the access started. A flow whose extensions need approval
lets only its approvers extend; otherwise the grantee (or an admin) may."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.durations import format_duration, parse_duration
from sluice.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from sluice.domain.states import Actual, held_in_target, should_be_active
from sluice.events.audit import Action, record
from sluice.services.requests.approvals import approves_grant
from sluice.services.requests.policy import load_flow
from sluice.store.tables import Grant, Identity


def _take_over_claim(grant: Grant, now: datetime) -> None:
    """A worker applying this grant in the target right now sends the old end time (its `VALID UNTIL`)
    and then records the row as applied, which would hide the new end from the target. So while its
    claim holds the extension waits its turn (409, try again); a lapsed claim is void, and clearing it
    makes that worker's late outcome not count, so the row is applied again with the new end."""
    if grant.claimed_until is not None and grant.claimed_until > now:
        raise Conflict(
            f"grant {grant.id} is being applied in the target right now; try again in a few seconds"
        )
    grant.claimed_by = None
    grant.claimed_until = None


def extend_grant(
    session: Session,
    *,
    grant_id: str,
    actor: Identity,
    is_admin: bool,
    by: timedelta,
    reason: str,
    now: datetime,
) -> Grant:
    grant = session.scalar(select(Grant).where(Grant.id == grant_id).with_for_update())
    if grant is None:
        raise NotFound(f"no grant {grant_id!r}")
    if not should_be_active(grant.desired) or grant.ends_at is None or grant.starts_at is None:
        raise Conflict(f"grant {grant.id} is not active (it is {grant.desired}); nothing to extend")
    if grant.ends_at <= now:
        raise Conflict(
            f"grant {grant.id} ended at {grant.ends_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC and is "
            "being revoked; it can no longer be extended, ask for access again"
        )
    if grant.request is None:
        raise InvalidInput("an automatic grant lasts as long as its flow allows it; it is not extended")
    flow = load_flow(session, grant.request.flow_name)
    rules = flow.extensions
    if rules is None or rules.max_count == 0:
        raise InvalidInput(f"flow {flow.name!r} does not allow extensions")
    approver = approves_grant(session, grant, actor, now) if rules.approval_required else False
    if rules.approval_required and not (approver or is_admin):
        raise NotAllowed(
            f"extensions under flow {flow.name!r} need approval: one of its approvers extends it"
        )
    if not rules.approval_required and actor.id != grant.identity_id and not is_admin:
        raise NotAllowed("only the grantee (or an admin) extends this grant")
    if grant.extensions >= rules.max_count:
        raise InvalidInput(
            f"grant {grant.id} was already extended {grant.extensions} time(s), the most flow allows"
        )
    length = parse_duration(rules.length)
    if by > length:
        raise InvalidInput(f"an extension may add at most {rules.length}; asked for {format_duration(by)}")
    ceiling = grant.starts_at + parse_duration(rules.ceiling)
    if grant.ends_at + by > ceiling:
        room = max(timedelta(0), ceiling - grant.ends_at)
        raise InvalidInput(
            f"extending by {format_duration(by)} would go past the ceiling of {rules.ceiling} after the "
            f"start ({ceiling:%Y-%m-%d %H:%M} UTC); at most {format_duration(room)} is left"
        )
    _take_over_claim(grant, now)
    grant.ends_at = grant.ends_at + by
    grant.extensions += 1
    grant.warned_at = None
    grant.updated_at = now
    if held_in_target(grant.actual):
        grant.actual = Actual.UNKNOWN  # re-applied, so a target-side expiry (VALID UNTIL) moves too
    record(
        session,
        now=now,
        actor=actor.email,
        action=Action.GRANT_EXTENDED,
        subject_type="grant",
        subject_id=grant.id,
        reason=reason or None,
        request_id=grant.request_id,
        grantee=grant.identity.email,
        ends_at=grant.ends_at.isoformat(),
        duration=format_duration(by),
    )
    return grant
