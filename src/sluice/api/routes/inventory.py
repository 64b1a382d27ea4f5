"""The inventory: integrations and the resources discovered in them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sluice.api.auth import CallerDep, OperatorDep, RuntimeDep
from sluice.api.params import FilterText, Limit, NamePath, Offset, RefPath
from sluice.api.reading import shown_resources
from sluice.api.schemas import IntegrationList, ResourcePage, ResourceView, SyncView
from sluice.api.views import integration_view
from sluice.services.targeting import reads as targeting_reads
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import transaction

router = APIRouter(tags=["inventory"])


@router.get("/resources", response_model=ResourcePage, summary="List resources")
def list_resources(
    runtime: RuntimeDep,
    caller: CallerDep,
    integration: FilterText | None = None,
    resource_type: Annotated[FilterText | None, Query(alias="type")] = None,
    path_prefix: FilterText | None = None,
    q: FilterText | None = None,
    tag: Annotated[
        FilterText | None, Query(description="key=value, key, key != value, key in [a, b]")
    ] = None,
    include_deleted: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ResourcePage:
    where = targeting_reads.ResourceFilter(
        integration=integration,
        type=resource_type,
        path_prefix=path_prefix,
        q=q,
        tag=tag,
        include_deleted=include_deleted,
    )
    with transaction(runtime.factory) as session:
        page = targeting_reads.list_resources(session, where=where, limit=limit, offset=offset)
        return ResourcePage(items=shown_resources(session, page.items), total=page.total)


@router.get("/resources/{ref:path}", response_model=ResourceView, summary="Show a resource by id or path")
def show_resource(ref: RefPath, runtime: RuntimeDep, caller: CallerDep) -> ResourceView:
    with transaction(runtime.factory) as session:
        return shown_resources(session, [targeting_reads.resource_by_ref(session, ref)])[0]


@router.get("/integrations", response_model=IntegrationList, summary="List integrations")
def list_integrations(runtime: RuntimeDep, caller: CallerDep) -> IntegrationList:
    with transaction(runtime.factory) as session:
        errors = caller.role.reads_everything
        return IntegrationList(
            items=[
                integration_view(i, with_errors=errors) for i in targeting_reads.list_integrations(session)
            ]
        )


@router.post("/integrations/{name}/sync", response_model=SyncView, summary="Discover resources now (admin)")
def sync(name: NamePath, runtime: RuntimeDep, caller: OperatorDep) -> SyncView:
    """Runs discovery against the target; a target that fails answers 502."""
    result = sync_integration(runtime.factory, runtime.hub, name, clock=runtime.clock)
    return SyncView(integration=result.integration, **result.as_dict())
