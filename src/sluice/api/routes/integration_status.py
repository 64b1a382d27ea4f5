"""Integration status: reachable, last sync, resources, live grants, last error; and a live check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from sluice.api.auth import CallerDep, OperatorDep, RuntimeDep
from sluice.api.params import NamePath
from sluice.services.directory.tokens import Caller
from sluice.services.targeting.integration_status import (
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
        statuses = integration_statuses(session)
    return IntegrationStatusList(items=[_status_view(s.as_dict(), caller) for s in statuses])


@router.get(
    "/integrations/{name}/status", response_model=IntegrationStatusView, summary="Status of an integration"
)
def show_status(name: NamePath, runtime: RuntimeDep, caller: CallerDep) -> IntegrationStatusView:
    with transaction(runtime.factory) as session:
        status = integration_status(session, name)
    return _status_view(status.as_dict(), caller)


def _status_view(status: dict[str, Any], caller: Caller) -> IntegrationStatusView:
    """Errors from a target name its hosts and accounts: only those who read everything see them."""
    if not caller.role.reads_everything:
        status = {**status, "last_sync_error": None, "last_error": None}
    return IntegrationStatusView(**status)


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
