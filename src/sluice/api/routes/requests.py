"""Requests: submit, list, show, and the decisions on them (approve, reject, cancel, revoke)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from starlette.concurrency import run_in_threadpool

from sluice.api.auth import CallerDep, Credential, CredentialDep, RuntimeDep, caller_for, me, needs_scope
from sluice.api.params import IdPath, Limit, Offset, body_duration, changing
from sluice.api.reading import shown_request, shown_requests
from sluice.api.schemas import DecisionBody, RequestCreate, RequestPage, RequestView, ReviewBody
from sluice.domain.states import RequestStatus
from sluice.domain.tokens import Scope
from sluice.runtime.wiring import Runtime
from sluice.services.directory.tokens import Caller
from sluice.services.requests import reads
from sluice.services.requests.acting import RequestAction, act_on_request, review_request
from sluice.services.requests.break_glass import BreakGlassAsk
from sluice.services.requests.rules import grantee_of
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.store.db import transaction

router = APIRouter(prefix="/requests", tags=["requests"])

OptionalDecision = Annotated[DecisionBody | None, Body()]


@router.post("", status_code=201, response_model=RequestView, summary="Ask for access")
async def create_request(body: RequestCreate, runtime: RuntimeDep, sent: CredentialDep) -> RequestView:
    # The whole submission runs in one worker thread; answering (validating and serialising the view)
    # stays on the event loop rather than costing a second trip to the thread pool.
    return await run_in_threadpool(_submit, runtime, sent, body)


def _submit(runtime: Runtime, sent: Credential, body: RequestCreate) -> RequestView:
    now = runtime.clock()
    with changing(runtime) as session:
        # The token is checked here, in the transaction that submits, rather than by `CallerDep` in a
        # transaction of its own: the caller's identity is read once (with the token) and `me` finds
        # it in this session. (A missing token is still refused before the body is read.)
        caller = caller_for(session, sent, now)
        duration = body_duration(body.duration)
        request = submit_request(
            session,
            hub=runtime.hub,
            requester=me(session, caller),
            units=[UnitAsked(resource=path, permission=body.permission) for path in body.resources],
            duration=duration,
            reason=body.reason,
            now=now,
            flow_name=body.flow,
            starts_at=body.starts_at,
            grantee=grantee_of(session, body.beneficiary),
            break_glass=(
                None
                if body.break_glass is None
                else BreakGlassAsk(reason=body.break_glass.reason, incident=body.break_glass.incident)
            ),
        )
        return shown_request(session, request, now)


@router.get("", response_model=RequestPage, summary="List requests")
def list_requests(
    runtime: RuntimeDep,
    caller: CallerDep,
    limit: Limit = 50,
    offset: Offset = 0,
    scope: Annotated[
        reads.RequestScope,
        Query(
            description="mine: asked by you; to_approve: waiting for you; to_review: break-glass requests "
            "you may review; all: every one (admin)"
        ),
    ] = reads.RequestScope.MINE,
    status: RequestStatus | None = None,
) -> RequestPage:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        page = reads.list_requests(
            session,
            viewer=me(session, caller),
            is_admin=caller.role.reads_everything,
            scope=scope,
            status=status,
            limit=limit,
            offset=offset,
            now=now,
        )
        return RequestPage(items=shown_requests(session, page.items, now), total=page.total)


@router.get("/{request_id}", response_model=RequestView, summary="Show one request")
def show_request(request_id: IdPath, runtime: RuntimeDep, caller: CallerDep) -> RequestView:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        request = reads.visible_request(
            session,
            request_id=request_id,
            viewer=me(session, caller),
            is_admin=caller.role.reads_everything,
            now=now,
        )
        return shown_request(session, request, now)


def _decide(
    runtime: Runtime, caller: Caller, request_id: str, body: DecisionBody | None, action: RequestAction
) -> RequestView:
    """One decision in one transaction, as the acting person with their token's role."""
    now = runtime.clock()
    with changing(runtime) as session:
        request = act_on_request(
            session,
            request_id=request_id,
            action=action,
            actor=me(session, caller),
            role=caller.role,
            reason=(body or DecisionBody()).reason,
            now=now,
        )
        session.flush()
        return shown_request(session, request, now)


@router.post(
    "/{request_id}/approve",
    response_model=RequestView,
    openapi_extra=needs_scope(Scope.APPROVE),
    summary="Approve a pending request",
)
def approve(
    request_id: IdPath, runtime: RuntimeDep, caller: CallerDep, body: OptionalDecision = None
) -> RequestView:
    return _decide(runtime, caller, request_id, body, RequestAction.APPROVE)


@router.post(
    "/{request_id}/reject",
    response_model=RequestView,
    openapi_extra=needs_scope(Scope.APPROVE),
    summary="Reject a pending request",
)
def reject(
    request_id: IdPath, runtime: RuntimeDep, caller: CallerDep, body: OptionalDecision = None
) -> RequestView:
    return _decide(runtime, caller, request_id, body, RequestAction.REJECT)


@router.post("/{request_id}/cancel", response_model=RequestView, summary="Withdraw your request")
def cancel(
    request_id: IdPath, runtime: RuntimeDep, caller: CallerDep, body: OptionalDecision = None
) -> RequestView:
    return _decide(runtime, caller, request_id, body, RequestAction.CANCEL)


@router.post("/{request_id}/revoke", response_model=RequestView, summary="End a request's access now")
def revoke(
    request_id: IdPath, runtime: RuntimeDep, caller: CallerDep, body: OptionalDecision = None
) -> RequestView:
    return _decide(runtime, caller, request_id, body, RequestAction.REVOKE)


@router.post(
    "/{request_id}/review",
    response_model=RequestView,
    openapi_extra=needs_scope(Scope.APPROVE),
    summary="Review a break-glass request (outcome revoke ends its access now)",
)
def review(request_id: IdPath, body: ReviewBody, runtime: RuntimeDep, caller: CallerDep) -> RequestView:
    now = runtime.clock()
    with changing(runtime) as session:
        request = review_request(
            session,
            request_id=request_id,
            actor=me(session, caller),
            role=caller.role,
            reason=body.reason,
            outcome=body.outcome,
            now=now,
        )
        return shown_request(session, request, now)
