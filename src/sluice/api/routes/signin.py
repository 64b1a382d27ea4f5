"""Signing in through the OpenID Provider: `/auth/login` and `/auth/callback` for a browser,
`/auth/cli/*` for `sluice login` (browser with a loopback hand-off), `/auth/device/*` for
`sluice login --device`, and `/auth/logout`.

The provider is called between transactions, never while one is open."""

from __future__ import annotations

import html
from dataclasses import asdict
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from sluice.api.auth import SESSION_COOKIE, AdminDep, CredentialDep, RuntimeDep
from sluice.domain.errors import InvalidInput, NotFound
from sluice.events.audit import Action, record
from sluice.runtime.wiring import Runtime
from sluice.services.signin import device
from sluice.services.signin.flows import (
    begin_browser_sign_in,
    claim_attempt,
    complete_sign_in,
    exchange_handoff,
    loopback_redirect,
    redeem_code,
)
from sluice.services.signin.id_tokens import SignInRefused
from sluice.services.signin.provider import OpenIdProvider
from sluice.services.signin.sessions import end_session, end_sessions_of, is_session_token
from sluice.store.auth_tables import SignInSession
from sluice.store.db import transaction

router = APIRouter(prefix="/auth", tags=["sign-in"])
# Under /api/v1, beside the directory: an administrator ends a person's sessions.
sessions_router = APIRouter(tags=["sign-in"])

LOGIN_COOKIE = "sluice_login"
LOGIN_COOKIE_PATH = "/auth"


class SessionView(BaseModel):
    token: str
    email: str
    method: str
    admin: bool
    expires_at: datetime


class CliStart(BaseModel):
    redirect_uri: str = Field(max_length=300, description="the CLI's listener: http://127.0.0.1:<port>/…")
    code_challenge: str = Field(min_length=43, max_length=128, description="S256 of the CLI's verifier")
    login_hint: str | None = Field(default=None, max_length=320)


class CliStarted(BaseModel):
    authorization_url: str


class CliToken(BaseModel):
    code: str = Field(min_length=1, max_length=200)
    code_verifier: str = Field(min_length=43, max_length=128)


class DeviceStarted(BaseModel):
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: int
    expires_in: int
    poll_token: str


class DevicePoll(BaseModel):
    poll_token: str = Field(min_length=1, max_length=200)


class DevicePending(BaseModel):
    status: str = Field(description="`authorization_pending`, or `slow_down`: poll 5 s less often")


class SessionsEnded(BaseModel):
    ended: int


def _provider(runtime: Runtime) -> OpenIdProvider:
    if runtime.signin is None:
        raise NotFound("sign-in is not configured on this server; use an API token (SLUICE_TOKEN)")
    return runtime.signin


def _callback_url(request: Request, provider: OpenIdProvider) -> str:
    public = provider.settings.public_url
    return f"{public}/auth/callback" if public else str(request.url_for("auth_callback"))


def _secure(request: Request, provider: OpenIdProvider) -> bool:
    public = provider.settings.public_url
    return request.url.scheme == "https" or bool(public and public.startswith("https://"))


def _refused(runtime: Runtime, exc: SignInRefused, now: datetime) -> None:
    """Refusals are audited in a transaction of their own (the failed one rolled back)."""
    with transaction(runtime.factory) as session:
        record(
            session,
            now=now,
            actor="oidc",
            action=Action.SIGN_IN_REFUSED,
            subject_type="sign-in",
            subject_id="oidc",
            error=exc.detail[:500],
        )


def _view(token: str, row: SignInSession) -> SessionView:
    return SessionView(
        token=token, email=row.identity.email, method=row.method, admin=row.admin, expires_at=row.expires_at
    )


@router.get("/login", summary="Sign in: go to the identity provider", response_class=RedirectResponse)
def login(
    request: Request, runtime: RuntimeDep, login_hint: str | None = Query(default=None, max_length=320)
) -> RedirectResponse:
    provider = _provider(runtime)
    provider.metadata()  # fetched (or failed) before the transaction opens
    with transaction(runtime.factory) as session:
        url, binding = begin_browser_sign_in(
            session,
            provider,
            runtime.box,
            redirect_uri=_callback_url(request, provider),
            login_hint=login_hint,
            now=runtime.clock(),
        )
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        LOGIN_COOKIE,
        binding or "",
        max_age=600,
        path=LOGIN_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request, provider),
    )
    return response


@router.get("/callback", name="auth_callback", summary="Where the identity provider sends people back")
def callback(
    request: Request,
    runtime: RuntimeDep,
    state: str | None = Query(default=None, max_length=200),
    code: str | None = Query(default=None, max_length=4000),
    error: str | None = Query(default=None, max_length=200),
    error_description: str | None = Query(default=None, max_length=1000),
    iss: str | None = Query(default=None, max_length=2000),
) -> Response:
    provider = _provider(runtime)
    now = runtime.clock()
    try:
        if iss is not None and iss != provider.metadata().issuer:  # RFC 9207: a mixed-up answer
            raise SignInRefused(f"this answer comes from another identity provider ({iss})")
        if error:
            said = f": {error_description}" if error_description else ""
            raise SignInRefused(f"the identity provider refused the sign-in ({error}){said}")
        if not state or not code:
            raise SignInRefused("the identity provider's answer lacks a code or a state")
        with transaction(runtime.factory) as session:
            pending = claim_attempt(
                session, runtime.box, state=state, binding=request.cookies.get(LOGIN_COOKIE), now=now
            )
        claims = redeem_code(provider, pending, code=code, now=now)
        with transaction(runtime.factory) as session:
            value, row = complete_sign_in(session, provider.settings, pending, claims, now=now)
            signed_in = (row.identity.email, row.expires_at) if row else None
    except SignInRefused as exc:
        _refused(runtime, exc, now)
        raise
    if signed_in is None:  # a CLI sign-in: hand the one-time code to its loopback listener
        return RedirectResponse(f"{pending.cli_redirect}?{urlencode({'code': value})}", status_code=303)
    email, until = signed_in
    page = HTMLResponse(
        "<!doctype html><title>Signed in to Sluice</title>"
        f"<p>Signed in to Sluice as {html.escape(email)} until {until:%Y-%m-%d %H:%M} UTC.</p>"
        '<p><a href="/access">Open the portal</a></p>'
    )
    page.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=provider.settings.session_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, provider),
    )
    page.delete_cookie(LOGIN_COOKIE, path=LOGIN_COOKIE_PATH)
    return page


@router.post("/logout", status_code=204, summary="Sign out: end this session")
def logout(runtime: RuntimeDep, sent: CredentialDep) -> Response:
    if not (sent.from_cookie or is_session_token(sent.value)):
        raise InvalidInput("an API token is not signed out; an admin revokes it")
    with transaction(runtime.factory) as session:
        end_session(session, token=sent.value, now=runtime.clock())
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/cli/start", response_model=CliStarted, summary="`sluice login`: where to send the browser")
def cli_start(request: Request, runtime: RuntimeDep, body: CliStart) -> CliStarted:
    provider = _provider(runtime)
    provider.metadata()
    with transaction(runtime.factory) as session:
        url, _ = begin_browser_sign_in(
            session,
            provider,
            runtime.box,
            redirect_uri=_callback_url(request, provider),
            cli_redirect=loopback_redirect(body.redirect_uri),
            cli_challenge=body.code_challenge,
            login_hint=body.login_hint,
            now=runtime.clock(),
        )
    return CliStarted(authorization_url=url)


@router.post("/cli/token", response_model=SessionView, summary="`sluice login`: the session for a code")
def cli_token(runtime: RuntimeDep, body: CliToken) -> SessionView:
    provider = _provider(runtime)
    now = runtime.clock()
    try:
        with transaction(runtime.factory) as session:
            token, row = exchange_handoff(
                session, provider.settings, code=body.code, verifier=body.code_verifier, now=now
            )
            return _view(token, row)
    except SignInRefused as exc:
        _refused(runtime, exc, now)
        raise


@router.post("/device/start", response_model=DeviceStarted, summary="`sluice login --device`: a code")
def device_start(runtime: RuntimeDep) -> DeviceStarted:
    provider = _provider(runtime)
    answer = device.ask_device_code(provider)
    with transaction(runtime.factory) as session:
        started = device.begin_device_sign_in(session, runtime.box, answer, now=runtime.clock())
    return DeviceStarted(**asdict(started))


@router.post(
    "/device/token",
    response_model=SessionView,
    responses={202: {"model": DevicePending, "description": "not approved yet: poll again"}},
    summary="`sluice login --device`: the session once approved",
)
def device_token(runtime: RuntimeDep, body: DevicePoll) -> SessionView | JSONResponse:
    provider = _provider(runtime)
    now = runtime.clock()
    try:
        with transaction(runtime.factory) as session:
            device_code = device.device_code_for(session, runtime.box, poll_token=body.poll_token, now=now)
        claims = device.poll_provider(provider, device_code, now=now)
        if isinstance(claims, str):
            return JSONResponse(DevicePending(status=claims).model_dump(), status_code=202)
        with transaction(runtime.factory) as session:
            token, row = device.finish_device_sign_in(
                session, provider, claims, poll_token=body.poll_token, now=now
            )
            return _view(token, row)
    except SignInRefused as exc:
        _refused(runtime, exc, now)
        raise


@sessions_router.delete(
    "/identities/{email}/sessions", response_model=SessionsEnded, summary="End a person's sessions (admin)"
)
def end_sessions(email: str, runtime: RuntimeDep, caller: AdminDep) -> SessionsEnded:
    with transaction(runtime.factory) as session:
        ended = end_sessions_of(session, email=email, actor=caller.identity.email, now=runtime.clock())
    return SessionsEnded(ended=ended)
