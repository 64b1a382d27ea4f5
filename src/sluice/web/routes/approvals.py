"""The approvals inbox: what waits for me (the API's `scope=to_approve` list), why I am an approver
(the flow's approver rules, as the flow names them), the requester's last few requests and what
became of them, and deciding one or several at once with a
reason. Each decision goes through the same service as the API's approve/reject, which refuses a
requester deciding their own request."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.params import changing
from sluice.api.reading import shown_requests
from sluice.domain.errors import InvalidInput, SluiceError
from sluice.services.requests import break_glass, reads
from sluice.services.requests.acting import RequestAction, act_on_request
from sluice.services.requests.history import recent_requests
from sluice.services.requests.policy import find_flow
from sluice.services.targeting.requestable import approver_words
from sluice.store.db import transaction
from sluice.web.guard import ViewerDep, form_fields
from sluice.web.rendering import render
from sluice.web.routing import portal_router

router = portal_router()

INBOX_SHOWN = 200
HISTORY_SHOWN = 3  # the requester's recent requests shown beside each waiting one
MAX_DECIDED_AT_ONCE = 100


def _inbox(runtime: RuntimeDep, viewer: ViewerDep) -> dict[str, Any]:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        page = reads.list_requests(
            session,
            viewer=viewer.identity_in(session),
            is_admin=viewer.reads_everything,
            scope=reads.RequestScope.TO_APPROVE,
            status=None,
            limit=INBOX_SHOWN,
            offset=0,
            now=now,
        )
        words: dict[str, list[str]] = {}
        for name in {asked.flow_name for asked in page.items}:
            flow = find_flow(session, name)
            words[name] = approver_words(flow) if flow is not None else []
        shown = shown_requests(session, page.items, now)
        # one more than shown, since the newest of a requester's may be the row itself
        recent = recent_requests(
            session, {asked.requester_id for asked in page.items}, per_person=HISTORY_SHOWN + 1
        )
        rows = [
            {
                "request": view,
                "why": words[asked.flow_name],
                "history": [p for p in recent.get(asked.requester_id, []) if p.id != asked.id][
                    :HISTORY_SHOWN
                ],
            }
            for asked, view in zip(page.items, shown, strict=True)
        ]
        identity = viewer.identity_in(session)
        to_review = shown_requests(session, break_glass.to_review_by(session, identity, now), now)
    return {"rows": rows, "total": page.total, "viewer": viewer, "outcomes": [], "to_review": to_review}


@router.get("/approvals")
def inbox(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    return render(request, "approvals.html", _inbox(runtime, viewer))


@router.post("/approvals")
async def decide(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    fields = await form_fields(request)
    values = dict(fields)
    chosen = [value for name, value in fields if name == "request"]
    decision = values.get("decision", "")
    if decision not in ("approve", "reject"):
        raise InvalidInput("choose approve or reject")
    if not chosen:
        raise InvalidInput("tick at least one request")
    if len(chosen) > MAX_DECIDED_AT_ONCE:
        raise InvalidInput(f"decide at most {MAX_DECIDED_AT_ONCE} requests at once")
    outcomes = [
        _decide_one(runtime, viewer, request_id, decision, values.get("reason", "")) for request_id in chosen
    ]
    refused = any(not ok for _, ok, _ in outcomes)
    context = {**_inbox(runtime, viewer), "outcomes": outcomes}
    return render(request, "approvals.html", context, status=409 if refused and len(outcomes) == 1 else 200)


def _decide_one(
    runtime: RuntimeDep, viewer: ViewerDep, request_id: str, decision: str, reason: str
) -> tuple[str, bool, str]:
    """One decision in its own transaction, like one API call: (request id, done, what happened)."""
    now = runtime.clock()
    try:
        with changing(runtime) as session:
            act_on_request(
                session,
                request_id=request_id,
                action=RequestAction(decision),
                actor=viewer.identity_in(session),
                role=viewer.caller.role,
                reason=reason,
                now=now,
            )
    except SluiceError as exc:
        return request_id, False, exc.detail
    return request_id, True, "approved" if decision == "approve" else "rejected"
