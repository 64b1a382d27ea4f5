"""One request: its units, approvals and live status (htmx polls the status part), the timeline of
the request and its grants from the audit log, and the actions the viewer may take (approve or
reject for an approver, withdraw for the requester). Seen exactly by whom the API shows it to."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.params import IdPath, changing
from sluice.api.reading import shown_request
from sluice.services.requests import decisions, reads
from sluice.store.db import transaction
from sluice.web.guard import ViewerDep, form_fields
from sluice.web.rendering import go_to, render
from sluice.web.routing import portal_router

router = portal_router()


def _request_context(runtime: RuntimeDep, viewer: ViewerDep, request_id: str) -> dict[str, Any]:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        identity = viewer.identity_in(session)
        asked = reads.visible_request(
            session, request_id=request_id, viewer=identity, is_admin=viewer.reads_everything, now=now
        )
        shown = shown_request(session, asked, now)
        may_decide = asked.requester_id != identity.id and reads.may_decide(session, asked, identity, now)
        timeline = reads.request_timeline(session, request_id=asked.id)
        session.expunge_all()
    return {
        "viewer": viewer,
        "asked": shown,
        "now": now,
        "own": shown.requester == viewer.email,
        "may_decide": may_decide,
        "timeline": timeline,
    }


@router.get("/requests/{request_id}")
def request_detail(request_id: IdPath, request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    return render(request, "request_page.html", _request_context(runtime, viewer, request_id))


@router.get("/requests/{request_id}/live")
def request_live(request_id: IdPath, request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    return render(request, "_request_live.html", _request_context(runtime, viewer, request_id))


@router.post("/requests/{request_id}/decide")
async def decide(request_id: IdPath, request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    """approve, reject or cancel (withdraw), as the API's routes of the same names."""
    values = dict(await form_fields(request))
    action = values.get("decision", "")
    reason = values.get("reason", "")
    now = runtime.clock()
    with changing(runtime) as session:
        actor = viewer.identity_in(session)
        reads.visible_request(
            session, request_id=request_id, viewer=actor, is_admin=viewer.reads_everything, now=now
        )
        if action == "approve":
            decisions.approve_request(session, request_id=request_id, approver=actor, reason=reason, now=now)
        elif action == "reject":
            decisions.reject_request(session, request_id=request_id, approver=actor, reason=reason, now=now)
        else:
            decisions.cancel_request(
                session,
                request_id=request_id,
                actor=actor,
                is_admin=viewer.caller.role.administers,
                reason=reason,
                now=now,
            )
    return go_to(request, f"/requests/{request_id}")
