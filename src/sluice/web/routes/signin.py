"""Signing in to the portal: through the OpenID Provider (`/auth/login`, the identity routes) when one
is configured, and in demo mode only, a labelled demo sign-in that picks one of the demo people."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy import select

from sluice.api.auth import SESSION_COOKIE, RuntimeDep
from sluice.domain.errors import NotFound
from sluice.services.signin.sessions import end_session, open_session
from sluice.store.db import transaction
from sluice.store.queries import identity_by_email
from sluice.store.tables import Identity
from sluice.web.guard import MaybeViewer, form_fields
from sluice.web.rendering import go_to, render
from sluice.web.routing import portal_router

router = portal_router()

DEMO_SESSION_HOURS = 8
DEMO_METHOD = "demo"


@router.get("/")
def home(request: Request, viewer: MaybeViewer) -> Response:
    return go_to(request, "/access" if viewer else "/signin")


@router.get("/signin")
def signin_page(request: Request, runtime: RuntimeDep, viewer: MaybeViewer) -> Response:
    people: list[Identity] = []
    if runtime.demo:
        with transaction(runtime.factory) as session:
            people = list(
                session.scalars(select(Identity).where(Identity.active.is_(True)).order_by(Identity.email))
            )
            session.expunge_all()
    return render(
        request,
        "signin.html",
        {"viewer": viewer, "oidc": runtime.signin is not None, "demo": runtime.demo, "people": people},
    )


@router.post("/signin/demo")
async def demo_signin(request: Request, runtime: RuntimeDep) -> Response:
    """Only in demo mode: anywhere else this address does not exist."""
    if not runtime.demo:
        raise NotFound("there is no demo sign-in on this server")
    fields = dict(await form_fields(request))
    email = fields.get("email", "")
    with transaction(runtime.factory) as session:
        identity = identity_by_email(session, email)
        if identity is None or not identity.active:
            raise NotFound(f"no active demo person {email!r}")
        token, _ = open_session(
            session,
            identity=identity,
            admin=fields.get("admin") == "on",
            method=DEMO_METHOD,
            hours=DEMO_SESSION_HOURS,
            now=runtime.clock(),
        )
    response = go_to(request, "/access")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=DEMO_SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/signout")
def signout(request: Request, runtime: RuntimeDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with transaction(runtime.factory) as session:
            end_session(session, token=token, now=runtime.clock())
    response = go_to(request, "/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
