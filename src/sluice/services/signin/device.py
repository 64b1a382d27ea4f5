"""Sign-in with the device authorization grant (RFC 8628), for a CLI with no browser at hand.

The server asks the provider for a device code (with the client secret, which the CLI never sees),
keeps it sealed in an attempt row and gives the CLI the user code, the URL to visit and a poll token
of its own. The CLI polls Sluice; Sluice polls the provider and, once the person has approved, checks
the ID token and opens a session. The attempt is used once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sluice.services.grants.secrets import SecretBox
from sluice.services.signin.flows import claims_from_tokens
from sluice.services.signin.id_tokens import SignInRefused
from sluice.services.signin.people import person_for_claims
from sluice.services.signin.provider import OpenIdProvider, ProviderError
from sluice.services.signin.sessions import digest, open_session
from sluice.store.auth_tables import LoginAttempt, SignInSession
from sluice.store.types import new_id

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PENDING_ERRORS = frozenset({"authorization_pending", "slow_down"})


@dataclass(frozen=True)
class DeviceSignIn:
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: int
    expires_in: int
    poll_token: str


def ask_device_code(provider: OpenIdProvider) -> dict[str, Any]:
    """The provider's device authorization answer. Calls the provider: outside any transaction."""
    body = provider.device_authorization()
    for key in ("device_code", "user_code", "verification_uri"):
        if not isinstance(body.get(key), str):
            raise ProviderError(f"the provider's device authorization answer lacks {key}")
    return body


def begin_device_sign_in(
    session: Session, box: SecretBox, answer: dict[str, Any], *, now: datetime
) -> DeviceSignIn:
    expires_in = _seconds(answer.get("expires_in"), default=600, high=1800)
    interval = _seconds(answer.get("interval"), default=5, high=60)
    poll_token = secrets.token_urlsafe(32)
    session.add(
        LoginAttempt(
            id=new_id("login"),
            kind="device",
            state_hash=digest(poll_token),
            nonce="",
            redirect_uri="",
            sealed_device_code=box.seal(answer["device_code"]),
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in),
        )
    )
    complete = answer.get("verification_uri_complete")
    return DeviceSignIn(
        user_code=answer["user_code"],
        verification_uri=answer["verification_uri"],
        verification_uri_complete=complete if isinstance(complete, str) else None,
        interval=interval,
        expires_in=expires_in,
        poll_token=poll_token,
    )


def device_code_for(session: Session, box: SecretBox, *, poll_token: str, now: datetime) -> str:
    attempt = _attempt(session, poll_token)
    if attempt.expires_at <= now:
        raise SignInRefused("the device code has expired; run `sluice login --device` again")
    return box.open(attempt.sealed_device_code or "")


def poll_provider(provider: OpenIdProvider, device_code: str, *, now: datetime) -> dict[str, Any] | str:
    """The verified claims once the person approved; while they have not, the provider's word for
    it (`authorization_pending`, or `slow_down`: poll less often). Calls the provider: outside any
    transaction."""
    status, body = provider.token({"grant_type": DEVICE_GRANT, "device_code": device_code})
    if status == 200:
        return claims_from_tokens(provider, body, nonce=None, now=now)
    error = body.get("error")
    if isinstance(error, str) and error in PENDING_ERRORS:
        return error
    if error == "access_denied":
        raise SignInRefused("the sign-in was denied at the provider")
    if error == "expired_token":
        raise SignInRefused("the device code has expired; run `sluice login --device` again")
    raise SignInRefused(f"the provider refused the device sign-in: {error or status}")


def finish_device_sign_in(
    session: Session, provider: OpenIdProvider, claims: dict[str, Any], *, poll_token: str, now: datetime
) -> tuple[str, SignInSession]:
    attempt = _attempt(session, poll_token)
    taken = session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.id == attempt.id, LoginAttempt.used_at.is_(None))
        .values(used_at=now)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise SignInRefused("this device sign-in was already completed once")
    identity, admin = person_for_claims(session, provider.settings, claims, now=now)
    return open_session(
        session,
        identity=identity,
        admin=admin,
        method="device",
        hours=provider.settings.session_hours,
        now=now,
    )


def _attempt(session: Session, poll_token: str) -> LoginAttempt:
    attempt = session.scalar(
        select(LoginAttempt).where(
            LoginAttempt.state_hash == digest(poll_token), LoginAttempt.kind == "device"
        )
    )
    if attempt is None or attempt.used_at is not None:
        raise SignInRefused("this device sign-in is not known here or is finished; start again")
    return attempt


def _seconds(value: Any, *, default: int, high: int) -> int:
    return min(int(value), high) if isinstance(value, int) and value > 0 else default
