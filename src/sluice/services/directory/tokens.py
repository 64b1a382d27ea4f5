"""API tokens: random, shown once, stored only as a hash; checked on every API call (expiry,
revocation, the owner still active, scopes) with the last-used time written at most once a minute.
Creating, listing and revoking named tokens is in `token_lifecycle.py`."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from sluice.domain.errors import NotAuthenticated, NotFound
from sluice.domain.roles import Role
from sluice.domain.tokens import ALL_SCOPES, Scope, format_scopes, parse_scopes, role_within
from sluice.events.audit import Action, acting_via, record
from sluice.store.auth_tables import ServiceAccount
from sluice.store.queries import identity_by_email
from sluice.store.tables import ApiToken, Identity
from sluice.store.types import new_id

TOKEN_PREFIX = "slt_"  # noqa: S105 (a visible marker, not a secret)
DISPLAY_LENGTH = len(TOKEN_PREFIX) + 6  # `slt_` and six random characters: recognisable, not guessable
LAST_USED_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who is calling and how: an API token (`method="token"`) or a sign-in session (`web`, `cli`,
    `device`), which ends at `expires_at`. `role` is what the credential may do beyond the caller's own
    access, already narrowed by its scopes; a session carries every scope."""

    identity: Identity
    role: Role
    token_id: str  # the API token's id, or the session's
    method: str = "token"
    expires_at: datetime | None = None
    scopes: frozenset[Scope] = ALL_SCOPES
    service_account: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role.administers


def mint_token(
    session: Session,
    *,
    identity: Identity,
    role: Role,
    scopes: frozenset[Scope],
    name: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> tuple[str, ApiToken]:
    """A new token row for `identity`; the secret is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        id=new_id("tok"),
        identity_id=identity.id,
        identity=identity,
        token_hash=digest(token),
        display_prefix=token[:DISPLAY_LENGTH],
        role=role.value,
        name=name,
        scopes=format_scopes(scopes),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    return token, row


def create_token(
    session: Session,
    *,
    email: str,
    actor: str,
    now: datetime,
    admin: bool = False,
    role: Role | None = None,
    expires_at: datetime | None = None,
) -> str:
    """The store-side bootstrap: a token for `email` with every scope, made by whoever holds the store
    (how the first admin gets in). `role` (or `admin`, the same as role admin) says what more it may
    do; it lives until `expires_at` (None: until revoked)."""
    identity = identity_by_email(session, email)
    if identity is None:
        raise NotFound(f"no identity {email!r}; add it to the config file and run `sluice apply` first")
    role = role or (Role.ADMIN if admin else Role.USER)
    token, row = mint_token(
        session, identity=identity, role=role, scopes=ALL_SCOPES, name=None, expires_at=expires_at, now=now
    )
    record(
        session,
        now=now,
        actor=actor,
        action=Action.TOKEN_CREATED,
        subject_type="identity",
        subject_id=identity.email,
        admin=role.administers,
        role=role.value,
        token_id=row.id,
    )
    return token


# Asked on every API call: built once, the hash bound at execution.
_CALLER = (
    select(Identity, ApiToken, ServiceAccount.identity_id)
    .join(ApiToken, ApiToken.identity_id == Identity.id)
    .outerjoin(ServiceAccount, ServiceAccount.identity_id == Identity.id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def token_words(row: ApiToken) -> str:
    return f"API token {row.name or 'bootstrap'} ({row.display_prefix or row.id}…)"


def authenticate(session: Session, token: str, *, now: datetime) -> Caller:
    """The caller behind a token, with their identity loaded in `session` (one query for both).
    Raises `NotAuthenticated` when the token is unknown, revoked, expired, or its owner inactive."""
    found = session.execute(_CALLER, {"token_hash": digest(token)}).first()
    if found is None:
        raise NotAuthenticated("the API token is not valid; create one with `sluice token create`")
    identity, row, service_account = found
    if row.revoked_at is not None:
        raise NotAuthenticated(f"the {token_words(row)} was revoked at {row.revoked_at.isoformat()}")
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthenticated(f"the {token_words(row)} expired at {row.expires_at.isoformat()}")
    if not identity.active:
        raise NotAuthenticated(f"{identity.email} is not active")
    _note_use(session, row, now)
    acting_via(f"token:{row.id}")
    scopes = parse_scopes(row.scopes)
    return Caller(
        identity=identity,
        role=role_within(Role(row.role), scopes),
        token_id=row.id,
        expires_at=row.expires_at,
        scopes=scopes,
        service_account=service_account is not None,
    )


# Built once, and on the table rather than the mapped class: a one-row write needs none of the ORM's
# bulk-update machinery, and building the statement per call costs about as much as sending it.
_tokens = cast(Table, ApiToken.__table__)
_NOTE_USE = (
    update(_tokens)
    .where(
        _tokens.c.id == bindparam("token_id"),
        or_(_tokens.c.last_used_at.is_(None), _tokens.c.last_used_at <= bindparam("noted_before")),
    )
    .values(last_used_at=bindparam("used_at"))
)


def _note_use(session: Session, row: ApiToken, now: datetime) -> None:
    """Record the use, at most once a minute per token: a busy token does not write on every call. The
    condition is in the UPDATE too, so concurrent calls in the same minute write once between them."""
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_EVERY:
        return
    session.execute(_NOTE_USE, {"token_id": row.id, "noted_before": now - LAST_USED_EVERY, "used_at": now})
