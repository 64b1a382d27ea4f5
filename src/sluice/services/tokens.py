"""API tokens: random, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sluice.domain.errors import NotAuthenticated, NotFound
from sluice.events.audit import Action, record
from sluice.store.queries import identity_by_email
from sluice.store.tables import ApiToken, Identity
from sluice.store.types import new_id

TOKEN_PREFIX = "slt_"  # noqa: S105 (a visible marker, not a secret)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who is calling and how: an API token (`method="token"`) or a sign-in session (`web`, `cli`,
    `device`), which ends at `expires_at`."""

    identity: Identity
    is_admin: bool
    method: str = "token"
    expires_at: datetime | None = None
    session_id: str | None = None


def create_token(session: Session, *, email: str, admin: bool, actor: str, now: datetime) -> str:
    identity = identity_by_email(session, email)
    if identity is None:
        raise NotFound(f"no identity {email!r}; add it to the config file and run `sluice apply` first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        id=new_id("tok"), identity_id=identity.id, token_hash=_digest(token), admin=admin, created_at=now
    )
    session.add(row)
    record(
        session,
        now=now,
        actor=actor,
        action=Action.TOKEN_CREATED,
        subject_type="identity",
        subject_id=identity.email,
        admin=admin,
    )
    return token


# Asked on every API call: built once, the hash bound at execution.
_CALLER = (
    select(Identity, ApiToken.admin)
    .join(ApiToken, ApiToken.identity_id == Identity.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


def authenticate(session: Session, token: str) -> Caller:
    """The caller behind a token, with their identity loaded in `session` (one query for both)."""
    found = session.execute(_CALLER, {"token_hash": _digest(token)}).first()
    if found is None:
        raise NotAuthenticated(
            "the API token is not valid; create one with `sluice token create --email ...`"
        )
    identity, admin = found
    if not identity.active:
        raise NotAuthenticated(f"{identity.email} is not active")
    return Caller(identity=identity, is_admin=admin)
