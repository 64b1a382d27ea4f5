"""Acting on a grant as a person: first the rule for seeing it (a stranger gets the answer for an
absent grant), then ending or extending it with the rights the caller's role gives. The API's routes
and the portal's pages both call these."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sluice.domain.roles import Role
from sluice.services.grants.extensions import extend_grant
from sluice.services.grants.revocation import revoke_grant
from sluice.services.requests import reads
from sluice.store.tables import Grant, Identity


def end_grant_as(
    session: Session, *, grant_id: str, actor: Identity, role: Role, reason: str, now: datetime
) -> Grant:
    reads.visible_grant(session, grant_id=grant_id, viewer=actor, is_admin=role.reads_everything, now=now)
    return revoke_grant(
        session, grant_id=grant_id, actor=actor, is_admin=role.operates, reason=reason, now=now
    )


def extend_grant_as(
    session: Session,
    *,
    grant_id: str,
    actor: Identity,
    role: Role,
    by: timedelta,
    reason: str,
    now: datetime,
) -> Grant:
    reads.visible_grant(session, grant_id=grant_id, viewer=actor, is_admin=role.reads_everything, now=now)
    return extend_grant(
        session, grant_id=grant_id, actor=actor, is_admin=role.administers, by=by, reason=reason, now=now
    )
