"""What a grantee holds, and the credentials for it: shown to the grantee and to nobody else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.errors import Conflict, NotAllowed, NotFound
from sluice.domain.states import is_active
from sluice.events.audit import Action, record
from sluice.services.grants.secrets import SecretBox
from sluice.store.tables import Grant, Identity


def grant_of(session: Session, grant_id: str) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(f"no grant {grant_id!r}")
    return grant


def credentials_for(session: Session, *, grant_id: str, viewer: Identity, box: SecretBox) -> dict[str, Any]:
    """Connection details plus the secret, for the grantee only (admins included: they never see it)."""
    grant = session.scalar(select(Grant).where(Grant.id == grant_id))
    if grant is None or grant.identity_id != viewer.id:
        # Same answer for "absent" and "someone else's": no probing for grant ids.
        raise NotFound(f"you hold no grant {grant_id!r}")
    if not is_active(grant.desired, grant.actual):
        raise Conflict(f"grant {grant_id} is not active, so it has no usable credentials")
    details: dict[str, Any] = dict(grant.connection or {})
    details.setdefault("username", grant.principal)
    if grant.credentials is not None:
        details.update(secret_fields(grant.integration.kind, box.open(grant.credentials)))
    return details


def secret_fields(kind: str, secret: str) -> dict[str, str]:
    """The secret as the grantee uses it: a password for most targets; a connector class may say
    otherwise with `secret_fields` (the SSH connector hands over a private key made from it)."""
    custom = getattr(connector_class(kind), "secret_fields", None)
    found: dict[str, str] = custom(secret) if custom is not None else {"password": secret}
    return found


def reveal_credentials(
    session: Session, *, grant_id: str, viewer: Identity, box: SecretBox, now: datetime
) -> dict[str, Any]:
    """The credentials, shown on purpose (the portal's reveal button): each showing is an audit event,
    which names the grant and never the secret."""
    details = credentials_for(session, grant_id=grant_id, viewer=viewer, box=box)
    grant = grant_of(session, grant_id)
    record(
        session,
        now=now,
        actor=viewer.email,
        action=Action.CREDENTIALS_REVEALED,
        subject_type="grant",
        subject_id=grant.id,
        request_id=grant.request_id,
        resource=grant.resource_path,
        principal=grant.principal,
    )
    return details


def ensure_viewer(grant: Grant, viewer: Identity, is_admin: bool) -> None:
    if not is_admin and grant.identity_id != viewer.id:
        raise NotAllowed("this grant belongs to someone else")
