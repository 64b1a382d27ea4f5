"""Access flows, as their specs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sluice.api.auth import CallerDep, RuntimeDep
from sluice.api.params import NamePath
from sluice.api.schemas import FlowList
from sluice.services.requests import reads
from sluice.store.db import transaction

router = APIRouter(prefix="/flows", tags=["flows"])


@router.get("", response_model=FlowList, summary="List access flows")
def list_flows(runtime: RuntimeDep, caller: CallerDep) -> FlowList:
    with transaction(runtime.factory) as session:
        return FlowList(items=reads.flow_specs(session))


@router.get("/{name}", summary="Show one access flow")
def show_flow(name: NamePath, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    with transaction(runtime.factory) as session:
        return reads.flow_spec(session, name)
