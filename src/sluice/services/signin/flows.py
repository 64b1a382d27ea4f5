"""The sign-in use cases: start a browser sign-in, take the provider's answer, hand a CLI its session,
and the device authorization grant (RFC 8628).

Each browser sign-in is an attempt row keyed by the hash of its `state`, holding the `nonce` and the
provider-side PKCE verifier (sealed). The attempt is bound to whoever started it: a web sign-in to a
cookie set on the browser that asked, a CLI sign-in to the PKCE challenge of a verifier only the CLI
holds. An attempt is used once; a second answer carrying the same state (a replay) is refused.

The provider is called between transactions, never inside one: `claim_attempt` commits the attempt
as used, the caller redeems the code, then `complete_sign_in` writes the person and the session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sluice.domain.errors import InvalidInput
from sluice.services.grants.secrets import SecretBox
from sluice.services.signin.id_tokens import SignInRefused, verify_id_token
from sluice.services.signin.people import is_admin, person_for_claims
from sluice.services.signin.provider import OpenIdProvider
from sluice.services.signin.sessions import digest, open_session
from sluice.services.signin.settings import SignInSettings
from sluice.store.auth_tables import LoginAttempt, SignInSession
from sluice.store.tables import Identity
from sluice.store.types import new_id

ATTEMPT_MINUTES = 10
HANDOFF_MINUTES = 2
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def loopback_redirect(value: str) -> str:
    """A CLI's redirect: plain http on a loopback address with a port (RFC 8252 7.3), nothing else,
    so a sign-in can never be handed to another host."""
    parts = urlsplit(value)
    host = parts.netloc.rsplit(":", 1)[0] if parts.port else ""
    if parts.scheme != "http" or host not in LOOPBACK_HOSTS or not parts.port or parts.username:
        raise InvalidInput("redirect_uri must be http://127.0.0.1:<port>/<path> (a loopback listener)")
    if parts.query or parts.fragment or len(value) > 300:
        raise InvalidInput("redirect_uri must carry no query or fragment")
    return value


def begin_browser_sign_in(
    session: Session,
    provider: OpenIdProvider,
    box: SecretBox,
    *,
    redirect_uri: str,
    now: datetime,
    cli_redirect: str | None = None,
    cli_challenge: str | None = None,
    login_hint: str | None = None,
) -> tuple[str, str | None]:
    """The provider's authorization URL for a new attempt, and for a web sign-in the value of the
    cookie that binds the attempt to this browser (a CLI sign-in is bound to `cli_challenge`)."""
    metadata = provider.metadata()
    if metadata.code_challenge_methods and "S256" not in metadata.code_challenge_methods:
        raise SignInRefused("the provider does not support PKCE with S256, which Sluice requires")
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    binding = None if cli_challenge else secrets.token_urlsafe(32)
    forget_finished(session, now=now)
    if cli_challenge is not None and not 43 <= len(cli_challenge) <= 128:
        raise InvalidInput("code_challenge must be an S256 PKCE challenge (43 characters)")
    session.add(
        LoginAttempt(
            id=new_id("login"),
            kind="cli" if cli_challenge else "web",
            state_hash=digest(state),
            nonce=nonce,
            sealed_verifier=box.seal(verifier),
            redirect_uri=redirect_uri,
            browser_hash=digest(binding) if binding else None,
            cli_redirect=cli_redirect,
            cli_challenge=cli_challenge,
            created_at=now,
            expires_at=now + timedelta(minutes=ATTEMPT_MINUTES),
        )
    )
    params = {
        "response_type": "code",
        "client_id": provider.settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(provider.settings.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint[:320]
    endpoint = metadata.authorization_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}", binding


def forget_finished(session: Session, *, now: datetime) -> None:
    """Attempts past their time and sessions ended a week ago are of no use: each new sign-in
    clears them (one indexed delete), so neither table grows without bound."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.expires_at < now))
    session.execute(delete(SignInSession).where(SignInSession.expires_at < now - timedelta(days=7)))


@dataclass(frozen=True)
class PendingSignIn:
    """An attempt taken for completion: what redeeming its code and checking the token need."""

    id: str
    kind: str
    nonce: str
    verifier: str
    redirect_uri: str
    cli_redirect: str | None


def claim_attempt(
    session: Session, box: SecretBox, *, state: str, binding: str | None, now: datetime
) -> PendingSignIn:
    """Take the attempt `state` names, once. A web attempt must come back to the browser that
    started it (`binding`, its cookie). The caller commits before calling the provider."""
    attempt = session.scalar(select(LoginAttempt).where(LoginAttempt.state_hash == digest(state)))
    if attempt is None or attempt.kind == "device":
        raise SignInRefused("this sign-in is not known here (mismatched state); start again")
    if attempt.used_at is not None:
        raise SignInRefused("this sign-in was already completed once (a replayed answer); start again")
    bound = binding is not None and hmac.compare_digest(digest(binding), attempt.browser_hash or "")
    if attempt.kind == "web" and not bound:
        raise SignInRefused(
            "this sign-in was started in another browser (state does not match this browser); start again"
        )
    if attempt.expires_at <= now:
        raise SignInRefused("this sign-in took too long; start again")
    taken = session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.id == attempt.id, LoginAttempt.used_at.is_(None))
        .values(used_at=now)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise SignInRefused("this sign-in was already completed once (a replayed answer); start again")
    return PendingSignIn(
        id=attempt.id,
        kind=attempt.kind,
        nonce=attempt.nonce,
        verifier=box.open(attempt.sealed_verifier or ""),
        redirect_uri=attempt.redirect_uri,
        cli_redirect=attempt.cli_redirect,
    )


def redeem_code(
    provider: OpenIdProvider, pending: PendingSignIn, *, code: str, now: datetime
) -> dict[str, Any]:
    """Exchange the code at the provider (with the client secret and the PKCE verifier) and return
    the verified claims. Calls the provider: run it outside any transaction."""
    status, body = provider.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.verifier,
        }
    )
    if status != 200:
        raise SignInRefused(f"the provider refused the sign-in code: {body.get('error') or status}")
    return claims_from_tokens(provider, body, nonce=pending.nonce, now=now)


def claims_from_tokens(
    provider: OpenIdProvider, body: dict[str, Any], *, nonce: str | None, now: datetime
) -> dict[str, Any]:
    """The ID token's verified claims, completed from the userinfo endpoint when the token lacks the
    email claim (some providers put only `sub` in the ID token)."""
    id_token = body.get("id_token")
    if not isinstance(id_token, str):
        raise SignInRefused("the provider sent no ID token; is the openid scope allowed for this client?")
    claims = verify_id_token(provider, id_token, nonce=nonce, now=now)
    access_token = body.get("access_token")
    if provider.settings.email_claim not in claims and isinstance(access_token, str):
        extra = provider.userinfo(access_token)
        if extra.get("sub") == claims["sub"]:
            claims = {**extra, **claims}
    return claims


def complete_sign_in(
    session: Session,
    settings: SignInSettings,
    pending: PendingSignIn,
    claims: dict[str, Any],
    *,
    now: datetime,
) -> tuple[str, SignInSession | None]:
    """For a web sign-in: a new session, its token and row. For a CLI sign-in: a one-time hand-off
    code for the CLI's loopback listener, exchanged (with the CLI's verifier) by `exchange_handoff`."""
    identity, admin = person_for_claims(session, settings, claims, now=now)
    if pending.kind == "web":
        return open_session(
            session, identity=identity, admin=admin, method="web", hours=settings.session_hours, now=now
        )
    handoff = secrets.token_urlsafe(32)
    session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.id == pending.id)
        .values(
            handoff_hash=digest(handoff),
            identity_id=identity.id,
            expires_at=now + timedelta(minutes=HANDOFF_MINUTES),
        )
    )
    return handoff, None


def exchange_handoff(
    session: Session, settings: SignInSettings, *, code: str, verifier: str, now: datetime
) -> tuple[str, SignInSession]:
    """The CLI's session for the hand-off code its listener received, proven with its verifier."""
    attempt = session.scalar(select(LoginAttempt).where(LoginAttempt.handoff_hash == digest(code)))
    if attempt is None or attempt.identity_id is None or attempt.finished_at is not None:
        raise SignInRefused("this sign-in code is not valid or was already used; run `sluice login` again")
    if attempt.expires_at <= now:
        raise SignInRefused("this sign-in code has expired; run `sluice login` again")
    if not attempt.cli_challenge or not hmac.compare_digest(s256(verifier), attempt.cli_challenge):
        raise SignInRefused("the code verifier does not match the one this sign-in started with")
    taken = session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.id == attempt.id, LoginAttempt.finished_at.is_(None))
        .values(finished_at=now)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise SignInRefused("this sign-in code was already used; run `sluice login` again")
    identity = session.get(Identity, attempt.identity_id)
    if identity is None or not identity.active:
        raise SignInRefused("the person of this sign-in is no longer active")
    return open_session(
        session,
        identity=identity,
        admin=is_admin(session, settings, identity, now),
        method="cli",
        hours=settings.session_hours,
        now=now,
    )
