"""What the caller may request: resources with the flow each permission would use, and bundles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sluice.api.auth import CallerDep, RuntimeDep, me
from sluice.api.params import FilterText, Limit, Offset
from sluice.api.targeting_schemas import (
    OptionView,
    RequestableBundleView,
    RequestableItem,
    RequestablePageView,
)
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.db import transaction

router = APIRouter(tags=["targeting"])


@router.get("/requestable", response_model=RequestablePageView, summary="What you may request")
def list_requestable(
    runtime: RuntimeDep,
    caller: CallerDep,
    integration: FilterText | None = None,
    resource_type: Annotated[FilterText | None, Query(alias="type")] = None,
    path_prefix: FilterText | None = None,
    tag: Annotated[
        FilterText | None, Query(description="key=value, key, key != value, key in [a, b]")
    ] = None,
    q: FilterText | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RequestablePageView:
    where = RequestableFilter(integration, resource_type, path_prefix, tag, q)
    with transaction(runtime.factory) as session:
        page = requestable(
            session,
            identity=me(session, caller),
            where=where,
            limit=limit,
            offset=offset,
            now=runtime.clock(),
        )
        return RequestablePageView(
            items=[
                RequestableItem(
                    id=i.resource.id,
                    integration=i.resource.integration,
                    type=i.resource.type,
                    name=i.resource.name,
                    path=i.resource.path,
                    tags=dict(i.resource.tags),
                    options=[OptionView(**o.__dict__) for o in i.options],
                )
                for i in page.items
            ],
            next_offset=page.next_offset,
            bundles=[RequestableBundleView(**b.__dict__) for b in page.bundles],
        )
