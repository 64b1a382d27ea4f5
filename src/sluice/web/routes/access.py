"""My access: live grants with the time left (the list refreshes itself through htmx), credentials
revealed on purpose, a ready client command line, extending within the flow's limit, ending early;
upcoming grants (approved for a later start) with their start, and withdrawing what one asked for
before it is active (the API's cancel).
Each action calls the service the matching API route calls, with the same visibility check first."""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.params import IdPath, changing
from sluice.api.views import grant_view
from sluice.domain.durations import parse_duration
from sluice.domain.states import GrantState
from sluice.services.grants.access import reveal_credentials
from sluice.services.grants.acting import end_grant_as, extend_grant_as
from sluice.services.requests import reads
from sluice.services.requests.history import asked_by
from sluice.store.db import transaction
from sluice.web.guard import ViewerDep, form_fields
from sluice.web.rendering import go_to, is_htmx, render
from sluice.web.routing import portal_router

router = portal_router()

MY_GRANTS_SHOWN = 200


def client_command(kind: str, details: dict[str, Any]) -> str:
    """The command line that connects with these credentials, for the target's kind."""
    host = str(details.get("host", "localhost"))
    port = str(details.get("port", ""))
    user = str(details.get("username", ""))
    if kind == "postgresql":
        conninfo = f"host={host} port={port} dbname={details.get('database', '')} user={user}"
        return f"PGPASSWORD={shlex.quote(str(details.get('password', '')))} psql {shlex.quote(conninfo)}"
    if kind == "mysql":
        database = details.get("database")
        tail = f" {shlex.quote(str(database))}" if database else ""
        return f"mysql -h {shlex.quote(host)} -P {port} -u {shlex.quote(user)} -p{tail}"
    if kind == "redis":
        tls = " --tls" if details.get("tls") else ""
        return f"redis-cli -h {shlex.quote(host)} -p {port}{tls} --user {shlex.quote(user)} --askpass"
    return ""


def _grants_context(runtime: RuntimeDep, viewer: ViewerDep) -> dict[str, Any]:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        identity = viewer.identity_in(session)
        page = reads.grants_of(
            session, identity=identity, include_ended=False, limit=MY_GRANTS_SHOWN, offset=0
        )
        grants = [grant_view(g) for g in page.items]
        waiting = {g.request_id for g in grants if g.state == GrantState.PENDING and g.request_id}
        withdrawable = asked_by(session, requester=identity, request_ids=waiting)
    # Upcoming: approved for a later start; nothing exists in the target until then.
    upcoming = [g for g in grants if g.state == GrantState.PENDING and g.starts_at and g.starts_at > now]
    return {
        "grants": [g for g in grants if g not in upcoming],
        "upcoming": upcoming,
        "withdrawable": withdrawable,
        "now": now,
        "viewer": viewer,
    }


@router.get("/access")
def my_access(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    return render(request, "access.html", _grants_context(runtime, viewer))


@router.get("/access/live")
def my_access_live(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    """The grants table alone: what the page's htmx polling swaps in."""
    return render(request, "_grants.html", _grants_context(runtime, viewer))


@router.post("/access/{grant_id}/reveal")
def reveal(grant_id: IdPath, request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    with changing(runtime) as session:
        identity = viewer.identity_in(session)
        details = reveal_credentials(
            session, grant_id=grant_id, viewer=identity, box=runtime.box, now=runtime.clock()
        )
        grant = reads.own_grant(session, grant_id=grant_id, viewer=identity)
        kind = grant.integration.kind
        shown = grant_view(grant)
    context = {
        "grant": shown,
        "details": details,
        "command": client_command(kind, details),
        "viewer": viewer,
    }
    return render(request, "_credentials.html" if is_htmx(request) else "credentials.html", context)


@router.post("/access/{grant_id}/extend")
async def extend(grant_id: IdPath, request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    fields = dict(await form_fields(request))
    by = parse_duration(fields.get("by", ""))
    now = runtime.clock()
    with changing(runtime) as session:
        extend_grant_as(
            session,
            grant_id=grant_id,
            actor=viewer.identity_in(session),
            role=viewer.caller.role,
            by=by,
            reason=fields.get("reason", ""),
            now=now,
        )
    return go_to(request, "/access")


@router.post("/access/{grant_id}/end")
async def end_early(grant_id: IdPath, request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    fields = dict(await form_fields(request))
    now = runtime.clock()
    with changing(runtime) as session:
        end_grant_as(
            session,
            grant_id=grant_id,
            actor=viewer.identity_in(session),
            role=viewer.caller.role,
            reason=fields.get("reason", "") or "ended early in the portal",
            now=now,
        )
    return go_to(request, "/access")
