"""Every identity's grants, for operators (admin): find what is stuck, e.g. `state=revoke_failed`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from sluice.api.auth import AuditorDep, OperatorDep, RuntimeDep
from sluice.api.params import FilterText, Limit, Offset, changing
from sluice.api.schemas import AdminGrantPage, AdminGrantView, IntegrationStopBody
from sluice.api.views import grant_view
from sluice.domain.states import GrantState
from sluice.services.grants.integration_ending import revoke_integration_grants
from sluice.services.requests import reads
from sluice.store.db import transaction
from sluice.store.tables import Grant

router = APIRouter(prefix="/grants", tags=["grants"])


def admin_grant_view(grant: Grant) -> AdminGrantView:
    return AdminGrantView(
        **grant_view(grant).model_dump(),
        failing_since=grant.failing_since,
        revoke_failed_at=grant.revoke_failed_at,
    )


@router.get("", response_model=AdminGrantPage, summary="List everyone's grants (admin)")
def list_grants(
    runtime: RuntimeDep,
    caller: AuditorDep,
    state: Annotated[
        GrantState | None, Query(description="Only grants in this state, e.g. revoke_failed")
    ] = None,
    integration: Annotated[FilterText | None, Query(description="Only grants on this integration")] = None,
    identity: Annotated[FilterText | None, Query(description="Only grants held by this email")] = None,
    resource: Annotated[
        FilterText | None, Query(description="Only grants on resources whose path starts with this")
    ] = None,
    include_ended: Annotated[
        bool, Query(description="Without `state`: include ended grants too (live ones only otherwise)")
    ] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AdminGrantPage:
    where = reads.GrantFilter(
        state=state,
        integration=integration,
        identity=identity,
        resource_prefix=resource,
        include_ended=include_ended,
    )
    with transaction(runtime.factory) as session:
        page = reads.list_grants(session, where=where, limit=limit, offset=offset)
        return AdminGrantPage(items=[admin_grant_view(g) for g in page.items], total=page.total)


class IntegrationStop(BaseModel):
    integration: str
    revoked: list[str] = Field(description="The grants now being revoked")


@router.post(
    "/revoke",
    response_model=IntegrationStop,
    summary="Emergency stop: revoke every live grant of one integration (operator)",
)
def revoke_all(body: IntegrationStopBody, runtime: RuntimeDep, caller: OperatorDep) -> IntegrationStop:
    """Audited as one `integration.grants_revoked` event, plus one per grant. New requests are still
    taken: disable the integration in the config (or retire it) to stop those too."""
    with changing(runtime) as session:
        ended = revoke_integration_grants(
            session,
            name=body.integration,
            actor=caller.identity.email,
            reason=body.reason,
            now=runtime.clock(),
        )
        return IntegrationStop(integration=body.integration, revoked=[g.id for g in ended])
