"""Sluice sessions opened by a sign-in: a random token given to the browser (as a cookie) or to the
CLI (stored in its credentials file), kept in the store only as a SHA-256 hash, with a bounded
lifetime, and revocable (sign-out, or an administrator ending every session of a person)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from sluice.domain.errors import NotAuthenticated, NotFound
from sluice.domain.roles import Role
from sluice.events.audit import Action, acting_via, record
from sluice.services.directory.tokens import Caller
from sluice.store.auth_tables import SignInSession
from sluice.store.queries import identity_by_email
from sluice.store.tables import Identity
from sluice.store.types import new_id

SESSION_PREFIX = "sls_"  # a visible marker, told apart from API tokens (`slt_`)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def is_session_token(token: str) -> bool:
    return token.startswith(SESSION_PREFIX)


def open_session(
    session: Session, *, identity: Identity, admin: bool, method: str, hours: int, now: datetime
) -> tuple[str, SignInSession]:
    """A new session for `identity`; the token is returned once and never stored."""
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    row = SignInSession(
        id=new_id("ses"),
        identity=identity,
        token_hash=digest(token),
        method=method,
        admin=admin,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        revoked_at=None,
    )
    session.add(row)
    record(
        session,
        now=now,
        actor=identity.email,
        action=Action.SIGNED_IN,
        subject_type="identity",
        subject_id=identity.email,
        kind=method,
        admin=admin,
        ends_at=row.expires_at.isoformat(),
    )
    return token, row


_SESSION = (
    select(Identity, SignInSession)
    .join(SignInSession, SignInSession.identity_id == Identity.id)
    .where(SignInSession.token_hash == bindparam("token_hash"), SignInSession.revoked_at.is_(None))
)


def session_caller(session: Session, token: str, *, now: datetime) -> Caller:
    """The caller behind a session token. Raises `NotAuthenticated` when it is unknown, ended,
    expired, or its person is no longer active."""
    found = session.execute(_SESSION, {"token_hash": digest(token)}).first()
    if found is None:
        raise NotAuthenticated("the session is not valid or has ended; sign in again (`sluice login`)")
    identity, row = found
    if row.expires_at <= now:
        raise NotAuthenticated(f"the session ended at {row.expires_at.isoformat()}; sign in again")
    if not identity.active:
        raise NotAuthenticated(f"{identity.email} is not active")
    acting_via(f"session:{row.id}")
    return Caller(
        identity=identity,
        role=Role.ADMIN if row.admin else Role.USER,
        token_id=row.id,
        method=row.method,
        expires_at=row.expires_at,
    )


def end_session(session: Session, *, token: str, now: datetime) -> bool:
    """Sign out: the session stops working at once. False when there was none to end."""
    row = session.scalar(
        select(SignInSession).where(
            SignInSession.token_hash == digest(token), SignInSession.revoked_at.is_(None)
        )
    )
    if row is None:
        return False
    row.revoked_at = now
    record(
        session,
        now=now,
        actor=row.identity.email,
        action=Action.SIGNED_OUT,
        subject_type="identity",
        subject_id=row.identity.email,
        kind=row.method,
    )
    return True


def end_sessions_of(session: Session, *, email: str, actor: str, now: datetime) -> int:
    """End every open session of a person at once (an administrator's lever); how many ended."""
    identity = identity_by_email(session, email)
    if identity is None:
        raise NotFound(f"no identity {email!r}")
    result = session.execute(
        update(SignInSession)
        .where(SignInSession.identity_id == identity.id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    ended = int(getattr(result, "rowcount", 0) or 0)
    record(
        session,
        now=now,
        actor=actor,
        action=Action.SIGNED_OUT,
        subject_type="identity",
        subject_id=identity.email,
        kind="all",
        removed=ended,
    )
    return ended
