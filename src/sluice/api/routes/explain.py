"""Why someone may (or may not) request a permission on a resource: each flow's verdict and approvers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sluice.api.auth import CallerDep, RuntimeDep
from sluice.api.params import FilterText, RequiredText
from sluice.api.targeting_schemas import ExplanationView, FlowVerdictView
from sluice.domain.errors import NotAllowed
from sluice.services.requests.explain import explain
from sluice.store.db import transaction

router = APIRouter(tags=["targeting"])


@router.get("/explain", response_model=ExplanationView, summary="Why may (or may not) someone request this")
def explain_access(
    runtime: RuntimeDep,
    caller: CallerDep,
    resource: Annotated[RequiredText, Query(description="A resource path or id")],
    permission: Annotated[RequiredText, Query()],
    identity: Annotated[FilterText | None, Query(description="An email; yourself when left out")] = None,
) -> ExplanationView:
    """Anyone may explain their own access; explaining someone else's needs an admin token."""
    if (
        identity
        and identity.strip().lower() != caller.identity.email.lower()
        and not caller.role.reads_everything
    ):
        raise NotAllowed("explaining another person's access needs an admin token")
    email = identity or caller.identity.email
    with transaction(runtime.factory) as session:
        result = explain(session, email=email, resource=resource, permission=permission, now=runtime.clock())
        return ExplanationView(
            identity=result.identity,
            resource=result.resource.path,
            resource_type=result.resource.type,
            tags=dict(result.resource.tags),
            permission=result.permission,
            allowed=result.allowed,
            summary=result.summary,
            flow=result.chosen_flow,
            flows=[FlowVerdictView(**v.__dict__) for v in result.flows],
        )
