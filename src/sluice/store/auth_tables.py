"""Sign-in through an OpenID Provider: the attempts in flight and the sessions they open.

Only hashes of the values a browser or CLI holds are stored (state, session token, hand-off code), so
a copy of the store opens no session. The provider-side PKCE verifier and a device code are sealed
with the secret box: the server needs them back, nobody else does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sluice.store.tables import Base, Identity


class LoginAttempt(Base):
    """One sign-in in flight: `web` (browser, bound to a cookie), `cli` (browser, handed off to a
    loopback listener, bound to the CLI's PKCE challenge) or `device` (RFC 8628, polled by the CLI)."""

    __tablename__ = "login_attempts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(64))
    sealed_verifier: Mapped[str | None] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    cli_redirect: Mapped[str | None] = mapped_column(String(300))
    cli_challenge: Mapped[str | None] = mapped_column(String(128))
    handoff_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    sealed_device_code: Mapped[str | None] = mapped_column(Text)
    identity_id: Mapped[str | None] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SignInSession(Base):
    """A Sluice session opened by a sign-in: a browser cookie or the CLI's stored credential."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(10))
    admin: Mapped[bool]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]

    identity: Mapped[Identity] = relationship()


class ServiceAccount(Base):
    """A non-human identity for automation: its `identities` row (kind told by this row) acts through
    tokens an admin creates; it never signs in and never approves. `owner` is the admin answerable for
    it; `role` bounds what its tokens may do (`domain/roles.py`)."""

    __tablename__ = "service_accounts"

    identity_id: Mapped[str] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]

    identity: Mapped[Identity] = relationship()
