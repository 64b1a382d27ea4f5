"""Integration status: reachable, last sync, resources, live grants, last error; and a live check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from sluice.api.auth import AdminDep, CallerDep, OperatorDep, RuntimeDep
from sluice.api.params import NamePath, changing
from sluice.api.schemas import ReasonBody
from sluice.services.directory.tokens import Caller
from sluice.services.grants.integration_ending import start_retirement
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
    disabled: bool = Field(description="Disabled in the config: no new requests, live grants run out")
    lifecycle: str = Field(description="active, retiring (grants being revoked) or retired")
    retired_at: datetime | None
    retire_error: str | None = Field(description="What keeps a retiring integration from being retired")


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
        status = {**status, "last_sync_error": None, "last_error": None, "retire_error": None}
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


@router.post(
    "/integrations/{name}/retire",
    response_model=IntegrationStatusView,
    status_code=202,
    summary="Retire an integration: revoke its grants, remove what Sluice made in the target (admin)",
)
def retire(name: NamePath, body: ReasonBody, runtime: RuntimeDep, caller: AdminDep) -> IntegrationStatusView:
    """No new request is taken from now on and every live grant is revoked; the worker then removes
    the rest of what Sluice made in the target and marks the integration `retired` (poll its status).
    Its requests, grants and audit events stay; the config may drop it afterwards."""
    with changing(runtime) as session:
        start_retirement(
            session, name=name, actor=caller.identity.email, reason=body.reason, now=runtime.clock()
        )
        status = integration_status(session, name)
    return _status_view(status.as_dict(), caller)
