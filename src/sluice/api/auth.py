"""Who is calling: an API token or a sign-in session sent as `Authorization: Bearer <token>`, or the
session cookie a browser got from signing in (`/auth/login`). The runtime is read from the app's
state, never from a global.

A cookie is sent by the browser on its own, so a state-changing request that authenticates with the
cookie must also prove it was made by Sluice's own pages: it carries an `X-Requested-With` header
(which a cross-site form cannot set and a cross-site script cannot send without a CORS preflight that
Sluice never grants), and an `Origin`, when the browser sends one, that is this server's.

Every call needs a scope of the token it is made with (`domain/tokens.py`): `read` for a safe method,
`request` for one that changes something, unless its route declares another with
`openapi_extra=needs_scope(...)` (approving and rejecting need `approve`). The check is made where
every credential becomes a caller (`caller_for`), so a route cannot forget it. What a token may do
beyond its owner's own access is its role narrowed by its scopes (`admin` or not)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from sluice.domain.errors import NotAllowed, NotAuthenticated
from sluice.domain.tokens import Scope, format_scopes, permits, scope_needed
from sluice.runtime.wiring import Runtime
from sluice.services.directory.tokens import Caller, authenticate
from sluice.services.signin.sessions import is_session_token, session_caller
from sluice.store.db import transaction
from sluice.store.tables import Identity

SESSION_COOKIE = "sluice_session"
CSRF_HEADER = "X-Requested-With"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCOPE_EXTENSION = "x-sluice-scope"


def needs_scope(scope: Scope) -> dict[str, Any]:
    """A route's declaration of the token scope it needs, shown in the OpenAPI schema too."""
    return {SCOPE_EXTENSION: scope.value}


_bearer = HTTPBearer(
    auto_error=False, description="An API token from `sluice token create`, or a session from `sluice login`"
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The session cookie set by signing in at /auth/login; state-changing requests "
    f"also need the `{CSRF_HEADER}` header",
)


async def get_runtime(request: Request) -> Runtime:
    # A coroutine, so FastAPI calls it on the event loop instead of sending it to the thread pool.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True)
class Credential:
    """What the caller sent, not yet checked against the store."""

    value: str
    from_cookie: bool = False
    needs: Scope = Scope.READ  # the scope the call needs


def _scope_of(request: Request) -> Scope:
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    return scope_needed(request.method, extra.get(SCOPE_EXTENSION))


async def credential(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Credential:
    if bearer is not None and bearer.scheme.lower() == "bearer" and bearer.credentials:
        return Credential(bearer.credentials, needs=_scope_of(request))
    if cookie:
        check_csrf(request)
        return Credential(cookie, from_cookie=True, needs=_scope_of(request))
    raise NotAuthenticated(
        "send an API token as `Authorization: Bearer <token>`, or sign in (`sluice login`, /auth/login)"
    )


def check_csrf(request: Request) -> None:
    """A cookie-authenticated request that changes something must come from Sluice's own pages."""
    if request.method in SAFE_METHODS:
        return
    if not request.headers.get(CSRF_HEADER):
        raise NotAllowed(
            f"a request signed in with the session cookie that changes something needs the "
            f"{CSRF_HEADER} header (cross-site request protection)"
        )
    origin = request.headers.get("origin")
    if origin and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise NotAllowed(f"requests from {origin} are not accepted with the session cookie")


CredentialDep = Annotated[Credential, Depends(credential)]


def caller_for(session: Session, sent: Credential, now: datetime) -> Caller:
    """The caller behind a credential: a session token (cookie or `sls_` bearer) or an API token,
    once it is shown to hold the scope the call needs."""
    if sent.from_cookie or is_session_token(sent.value):
        caller = session_caller(session, sent.value, now=now)
    else:
        caller = authenticate(session, sent.value, now=now)
    if not permits(caller.scopes, sent.needs):
        raise NotAllowed(
            f"this token's scopes ({format_scopes(caller.scopes)}) do not include `{sent.needs.value}`, "
            "which this call needs"
        )
    return caller


def current_caller(runtime: RuntimeDep, sent: CredentialDep) -> Caller:
    with transaction(runtime.factory) as session:
        return caller_for(session, sent, runtime.clock())


CallerDep = Annotated[Caller, Depends(current_caller)]


def _without_admin_scope(caller: Caller) -> str:
    return "" if Scope.ADMIN in caller.scopes else " (with the `admin` scope)"


async def admin_caller(caller: CallerDep) -> Caller:
    if not caller.role.administers:
        raise NotAllowed(f"this needs an admin token{_without_admin_scope(caller)}")
    return caller


async def operator_caller(caller: CallerDep) -> Caller:
    if not caller.role.operates:
        raise NotAllowed(f"this needs an operator or admin token{_without_admin_scope(caller)}")
    return caller


async def auditor_caller(caller: CallerDep) -> Caller:
    if not caller.role.reads_everything:
        raise NotAllowed("this needs an auditor, operator or admin token")
    return caller


AdminDep = Annotated[Caller, Depends(admin_caller)]
OperatorDep = Annotated[Caller, Depends(operator_caller)]
AuditorDep = Annotated[Caller, Depends(auditor_caller)]


def me(session: Session, caller: Caller) -> Identity:
    """The caller's identity row in this session. When the caller was authenticated in this same
    session (see `create_request`), the row is already in it and no query is made."""
    identity = session.get(Identity, caller.identity.id)
    if identity is None or not identity.active:
        raise NotAuthenticated("the identity behind this token no longer exists or is not active")
    return identity
