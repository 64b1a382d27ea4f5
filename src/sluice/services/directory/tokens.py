"""API tokens: random, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sluice.domain.errors import NotAuthenticated, NotFound
from sluice.domain.roles import Role
from sluice.events.audit import Action, acting_via, record
from sluice.store.queries import identity_by_email
from sluice.store.tables import ApiToken, Identity
from sluice.store.types import new_id

TOKEN_PREFIX = "slt_"  # noqa: S105 (a visible marker, not a secret)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who is calling and how: an API token (`method="token"`) or a sign-in session (`web`, `cli`,
    `device`), which ends at `expires_at`."""

    identity: Identity
    role: Role
    token_id: str  # the API token's id, or the session's
    method: str = "token"
    expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role.administers


def create_token(
    session: Session,
    *,
    email: str,
    actor: str,
    now: datetime,
    admin: bool = False,
    role: Role | None = None,
) -> str:
    """A new token for `email`; `role` (or `admin`, the same as role admin) says what more it may do."""
    identity = identity_by_email(session, email)
    if identity is None:
        raise NotFound(f"no identity {email!r}; add it to the config file and run `sluice apply` first")
    role = role or (Role.ADMIN if admin else Role.USER)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        id=new_id("tok"), identity_id=identity.id, token_hash=digest(token), role=role.value, created_at=now
    )
    session.add(row)
    record(
        session,
        now=now,
        actor=actor,
        action=Action.TOKEN_CREATED,
        subject_type="identity",
        subject_id=identity.email,
        admin=role.administers,
        role=role.value,
    )
    return token


# Asked on every API call: built once, the hash bound at execution.
_CALLER = (
    select(Identity, ApiToken.role, ApiToken.id)
    .join(ApiToken, ApiToken.identity_id == Identity.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


def authenticate(session: Session, token: str) -> Caller:
    """The caller behind a token, with their identity loaded in `session` (one query for both)."""
    found = session.execute(_CALLER, {"token_hash": digest(token)}).first()
    if found is None:
        raise NotAuthenticated(
            "the API token is not valid; create one with `sluice token create --email ...`"
        )
    identity, role, token_id = found
    if not identity.active:
        raise NotAuthenticated(f"{identity.email} is not active")
    acting_via(f"token:{token_id}")
    return Caller(identity=identity, role=Role(role), token_id=token_id)
