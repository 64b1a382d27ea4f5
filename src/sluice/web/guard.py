"""Who is looking at a portal page, and the portal's cross-site request rule.

The portal signs people in with the same session cookie as the API (`api/auth.SESSION_COOKIE`) and
asks the same service (`session_caller`) who is behind it, so a page is authorised exactly as the API
call it mirrors. Every state-changing request to the portal must carry the CSRF token: a random value
kept in its own cookie (`sluice_csrf`, SameSite=Strict, HttpOnly) and echoed in each form (field
`csrf`) or, for htmx, in the `X-CSRF-Token` header (double submit, compared in constant time); an
`Origin`, when the browser sends one, must be this server. The check is a dependency of the whole
portal router, so a new POST route cannot forget it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from sluice.api.auth import SAFE_METHODS, SESSION_COOKIE, RuntimeDep
from sluice.domain.errors import NotAllowed, NotAuthenticated
from sluice.services.directory.tokens import Caller
from sluice.services.signin.sessions import session_caller
from sluice.store.db import transaction
from sluice.store.tables import Identity

CSRF_COOKIE = "sluice_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_FIELDS = 600


class SignInNeeded(NotAuthenticated):
    """A page asked for without a (valid) session: the portal answers with the sign-in page."""


def csrf_token(request: Request) -> str:
    """The token this browser's forms carry: its cookie's value, or a new one (set by `render`)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if len(existing) >= 32:
        return existing
    fresh: str = request.state.__dict__.setdefault("new_csrf", secrets.token_urlsafe(32))
    return fresh


async def form_fields(request: Request) -> list[tuple[str, str]]:
    """The fields of an `application/x-www-form-urlencoded` body (what a plain form and htmx send),
    read once and kept on the request."""
    cached: list[tuple[str, str]] | None = request.state.__dict__.get("form_fields")
    if cached is not None:
        return cached
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        fields = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, strict_parsing=False)
    except ValueError as exc:
        raise NotAllowed(f"the form is too large: {exc}") from None
    request.state.form_fields = fields
    return fields


async def check_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise NotAllowed(f"forms sent from {origin} are not accepted")
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER) or next(
        (value for name, value in await form_fields(request) if name == CSRF_FIELD), ""
    )
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise NotAllowed(
            "this form lacks its cross-site request token or it does not match; reload the page and try again"
        )


@dataclass(frozen=True)
class Viewer:
    """The signed-in person and the role of their session."""

    caller: Caller
    session_token: str

    @property
    def email(self) -> str:
        return self.caller.identity.email

    @property
    def reads_everything(self) -> bool:
        return self.caller.role.reads_everything

    def identity_in(self, session: Session) -> Identity:
        identity = session.get(Identity, self.caller.identity.id)
        if identity is None or not identity.active:
            raise SignInNeeded("your identity is no longer active; sign in again")
        return identity


def optional_viewer(request: Request, runtime: RuntimeDep) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        with transaction(runtime.factory) as session:
            caller = session_caller(session, token, now=runtime.clock())
    except NotAuthenticated:
        return None
    return Viewer(caller=caller, session_token=token)


def signed_in_viewer(viewer: Annotated[Viewer | None, Depends(optional_viewer)]) -> Viewer:
    if viewer is None:
        raise SignInNeeded("sign in to use the portal")
    return viewer


def auditor_viewer(viewer: Annotated[Viewer, Depends(signed_in_viewer)]) -> Viewer:
    """The API's `AuditorDep`: auditors, operators and admins read everything."""
    if not viewer.reads_everything:
        raise NotAllowed("this page is for admins")
    return viewer


MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]
ViewerDep = Annotated[Viewer, Depends(signed_in_viewer)]
AuditorViewer = Annotated[Viewer, Depends(auditor_viewer)]
