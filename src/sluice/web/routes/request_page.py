"""One request: its units, approvals and live status (htmx polls the status part), the timeline of
the request and its grants from the audit log, and the actions the viewer may take (approve or
reject for an approver, withdraw for the requester). Seen exactly by whom the API shows it to."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.params import IdPath, changing
from sluice.api.reading import shown_request
from sluice.domain.errors import InvalidInput
from sluice.services.audit import reads as audit_reads
from sluice.services.requests import break_glass, reads
from sluice.services.requests.acting import RequestAction, act_on_request, review_request
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
        may_review = (
            asked.break_glass
            and asked.reviewed_at is None
            and break_glass.review_refusal(session, asked, identity, now) is None
        )
        timeline = audit_reads.request_timeline(session, request_id=asked.id)
        session.expunge_all()
    return {
        "viewer": viewer,
        "asked": shown,
        "now": now,
        "own": shown.requester == viewer.email,
        "may_decide": may_decide,
        "may_review": may_review,
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
    """approve, reject or cancel (withdraw): the same service as the API's routes of those names."""
    values = dict(await form_fields(request))
    try:
        action = RequestAction(values.get("decision", ""))
    except ValueError:
        raise InvalidInput("choose approve, reject or cancel") from None
    with changing(runtime) as session:
        act_on_request(
            session,
            request_id=request_id,
            action=action,
            actor=viewer.identity_in(session),
            role=viewer.caller.role,
            reason=values.get("reason", ""),
            now=runtime.clock(),
        )
    return go_to(request, f"/requests/{request_id}")


@router.post("/requests/{request_id}/review")
async def review(request_id: IdPath, request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    """Review a break-glass request: the same service as the API's POST .../review."""
    values = dict(await form_fields(request))
    with changing(runtime) as session:
        review_request(
            session,
            request_id=request_id,
            actor=viewer.identity_in(session),
            role=viewer.caller.role,
            reason=values.get("reason", ""),
            outcome=values.get("outcome", "ok"),
            now=runtime.clock(),
        )
    return go_to(request, "/approvals" if values.get("from") == "inbox" else f"/requests/{request_id}")
