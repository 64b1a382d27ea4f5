"""Integration status: reachable, last sync, resources, live grants, last error; and a live check."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from sluice.api.auth import CallerDep, OperatorDep, RuntimeDep
from sluice.api.params import NamePath
from sluice.services.integration_status import (
    check_integration,
    integration_status,
    integration_statuses,
)
from sluice.store.db import transaction

router = APIRouter(tags=["inventory"])


class IntegrationStatusView(BaseModel):
    name: str
    kind: str
    owner: str | None
    reachable: bool | None
    last_sync_at: datetime | None
    last_sync_error: str | None
    resource_count: int
    resources_by_type: dict[str, int]
    grants_active: int
    grants_in_progress: int
    grants_failing: int
    last_error: str | None
    last_error_at: datetime | None


class IntegrationStatusList(BaseModel):
    items: list[IntegrationStatusView]


class IntegrationCheckView(BaseModel):
    integration: str
    kind: str
    reachable: bool
    ok: bool
    problems: list[str]
    checked_at: datetime
    seconds: float


@router.get(
    "/integrations/status", response_model=IntegrationStatusList, summary="Status of every integration"
)
def list_status(runtime: RuntimeDep, caller: CallerDep) -> IntegrationStatusList:
    with transaction(runtime.factory) as session:
        return IntegrationStatusList(
            items=[IntegrationStatusView(**s.as_dict()) for s in integration_statuses(session)]
        )


@router.get(
    "/integrations/{name}/status", response_model=IntegrationStatusView, summary="Status of an integration"
)
def show_status(name: NamePath, runtime: RuntimeDep, caller: CallerDep) -> IntegrationStatusView:
    with transaction(runtime.factory) as session:
        return IntegrationStatusView(**integration_status(session, name).as_dict())


@router.post(
    "/integrations/{name}/check",
    response_model=IntegrationCheckView,
    summary="Test the connection and the admin rights now (admin)",
)
def check(name: NamePath, runtime: RuntimeDep, caller: OperatorDep) -> IntegrationCheckView:
    """Problems are part of the answer (200), in words: what is missing and why it matters."""
    result = check_integration(runtime.factory, runtime.hub, name, now=runtime.clock())
    return IntegrationCheckView(
        integration=result.integration,
        kind=result.kind,
        reachable=result.reachable,
        ok=not result.problems,
        problems=result.problems,
        checked_at=result.checked_at,
        seconds=result.seconds,
    )
