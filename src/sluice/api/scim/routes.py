"""/scim/v2/Users and /scim/v2/Groups: list (filter, startIndex, count), get, create, replace, patch,
delete, each in one transaction that also wakes the worker, so a deactivation or a group change is
re-evaluated at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from scim2_models import Context, ListResponse, Resource, ResponseParameters
from sqlalchemy.orm import Session

from sluice.api.auth import RuntimeDep
from sluice.api.params import changing
from sluice.api.scim.auth import SourceDep
from sluice.api.scim.responses import ScimResponse, ScimRoute, scim_body
from sluice.runtime.wiring import Runtime
from sluice.services.directory import scim_groups, scim_users
from sluice.services.directory.scim_common import ForeignOwner, Page
from sluice.store.db import transaction

router = APIRouter(route_class=ScimRoute, tags=["scim"])
BodyDep = Annotated[Any, Depends(scim_body)]
ResourceT = TypeVar("ResourceT", bound=Resource[Any])
T = TypeVar("T")

Filter = Annotated[str | None, Query(alias="filter", max_length=4000)]
StartIndex = Annotated[int | None, Query(alias="startIndex")]
Count = Annotated[int | None, Query(alias="count")]
Attributes = Annotated[str | None, Query(alias="attributes", max_length=4000)]
Excluded = Annotated[str | None, Query(alias="excludedAttributes", max_length=4000)]


def base_url(request: Request) -> str:
    return str(request.url_for("scim_root")).rstrip("/")


def _shown(
    request: Request,
    model: type[ResourceT],
    resource: ResourceT,
    context: Context,
    attributes: str | None = None,
    excluded: str | None = None,
    *,
    status: int = 200,
) -> ScimResponse:
    endpoint = "Users" if model is scim_users.ScimUser else "Groups"
    location = f"{base_url(request)}/{endpoint}/{resource.id}"
    if resource.meta is not None:
        resource.meta.location = location
    parameters = ResponseParameters[model].model_validate(  # type: ignore[valid-type]
        {"attributes": attributes, "excluded_attributes": excluded}
    )
    body = resource.model_dump(scim_ctx=context, response_parameters=parameters)
    headers = {"Location": location} if status == 201 else None
    return ScimResponse(body, status_code=status, headers=headers)


def _listed(
    request: Request,
    model: type[ResourceT],
    page: Page[ResourceT],
    attributes: str | None,
    excluded: str | None,
) -> ScimResponse:
    endpoint = "Users" if model is scim_users.ScimUser else "Groups"
    for resource in page.items:
        if resource.meta is not None:
            resource.meta.location = f"{base_url(request)}/{endpoint}/{resource.id}"
    listed = ListResponse[model](  # type: ignore[valid-type]
        total_results=page.total,
        start_index=page.start_index,
        items_per_page=len(page.items),
        resources=page.items,
    )
    parameters = ResponseParameters[model].model_validate(  # type: ignore[valid-type]
        {"attributes": attributes, "excluded_attributes": excluded}
    )
    return ScimResponse(listed.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters))


def _write(runtime: Runtime, do: Callable[[Session, datetime], T]) -> T:
    try:
        with changing(runtime) as session:
            return do(session, runtime.clock())
    except ForeignOwner as conflict:
        with transaction(runtime.factory) as session:
            conflict.record(session)
        raise


# -- Users -----------------------------------------------------------------------------------------


@router.get("/Users", summary="List or filter users")
def list_users(
    request: Request,
    runtime: RuntimeDep,
    source: SourceDep,
    filter_text: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    with transaction(runtime.factory) as session:
        page = scim_users.list_users(
            session, source=source, filter_text=filter_text, start_index=start_index, count=count
        )
    return _listed(request, scim_users.ScimUser, page, attributes, excluded)


@router.get("/Users/{user_id}", summary="Show a user")
def get_user(
    user_id: str,
    request: Request,
    runtime: RuntimeDep,
    source: SourceDep,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    with transaction(runtime.factory) as session:
        user = scim_users.get_user(session, source=source, user_id=user_id)
    return _shown(request, scim_users.ScimUser, user, Context.RESOURCE_QUERY_RESPONSE, attributes, excluded)


@router.post("/Users", status_code=201, summary="Create a user")
def create_user(request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep) -> Response:
    user = _write(runtime, lambda s, now: scim_users.create_user(s, source=source, body=body, now=now))
    return _shown(request, scim_users.ScimUser, user, Context.RESOURCE_CREATION_RESPONSE, status=201)


@router.put("/Users/{user_id}", summary="Replace a user")
def replace_user(
    user_id: str, request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep
) -> Response:
    user = _write(
        runtime, lambda s, now: scim_users.replace_user(s, source=source, user_id=user_id, body=body, now=now)
    )
    return _shown(request, scim_users.ScimUser, user, Context.RESOURCE_REPLACEMENT_RESPONSE)


@router.patch("/Users/{user_id}", summary="Change a user (deactivate with active: false)")
def patch_user(
    user_id: str, request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep
) -> Response:
    user = _write(
        runtime, lambda s, now: scim_users.patch_user(s, source=source, user_id=user_id, body=body, now=now)
    )
    return _shown(request, scim_users.ScimUser, user, Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Users/{user_id}", status_code=204, summary="Delete a user (the identity is deactivated)")
def delete_user(user_id: str, runtime: RuntimeDep, source: SourceDep) -> Response:
    _write(runtime, lambda s, now: scim_users.delete_user(s, source=source, user_id=user_id, now=now))
    return Response(status_code=204)


# -- Groups ----------------------------------------------------------------------------------------


@router.get("/Groups", summary="List or filter groups")
def list_groups(
    request: Request,
    runtime: RuntimeDep,
    source: SourceDep,
    filter_text: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    with transaction(runtime.factory) as session:
        page = scim_groups.list_groups(
            session, source=source, filter_text=filter_text, start_index=start_index, count=count
        )
    return _listed(request, scim_groups.Group, page, attributes, excluded)


@router.get("/Groups/{group_id}", summary="Show a group")
def get_group(
    group_id: str,
    request: Request,
    runtime: RuntimeDep,
    source: SourceDep,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    with transaction(runtime.factory) as session:
        group = scim_groups.get_group(session, source=source, group_id=group_id)
    return _shown(request, scim_groups.Group, group, Context.RESOURCE_QUERY_RESPONSE, attributes, excluded)


@router.post("/Groups", status_code=201, summary="Create a group")
def create_group(request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep) -> Response:
    group = _write(runtime, lambda s, now: scim_groups.create_group(s, source=source, body=body, now=now))
    return _shown(request, scim_groups.Group, group, Context.RESOURCE_CREATION_RESPONSE, status=201)


@router.put("/Groups/{group_id}", summary="Replace a group and its members")
def replace_group(
    group_id: str, request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep
) -> Response:
    group = _write(
        runtime,
        lambda s, now: scim_groups.replace_group(s, source=source, group_id=group_id, body=body, now=now),
    )
    return _shown(request, scim_groups.Group, group, Context.RESOURCE_REPLACEMENT_RESPONSE)


@router.patch("/Groups/{group_id}", summary="Change a group: members, name")
def patch_group(
    group_id: str, request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep
) -> Response:
    group = _write(
        runtime,
        lambda s, now: scim_groups.patch_group(s, source=source, group_id=group_id, body=body, now=now),
    )
    return _shown(request, scim_groups.Group, group, Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Groups/{group_id}", status_code=204, summary="Delete a group")
def delete_group(group_id: str, runtime: RuntimeDep, source: SourceDep) -> Response:
    _write(runtime, lambda s, now: scim_groups.delete_group(s, source=source, group_id=group_id, now=now))
    return Response(status_code=204)
