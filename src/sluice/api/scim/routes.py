"""/scim/v2/Users and /scim/v2/Groups: list (filter, startIndex, count), get, create, replace, patch,
delete, each in one transaction that also wakes the worker, so a deactivation or a group change is
re-evaluated at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

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


@dataclass(frozen=True)
class ScimKind(Generic[ResourceT]):
    """One SCIM resource type: its endpoint, model and the directory service's six verbs, each taking
    the session, the source and (where one is named) the resource's id."""

    endpoint: str
    model: type[ResourceT]
    noun: str
    get: Callable[[Session, str, str], ResourceT]
    listed: Callable[[Session, str, str | None, int | None, int | None], Page[ResourceT]]
    create: Callable[[Session, str, Any, datetime], ResourceT]
    replace: Callable[[Session, str, str, Any, datetime], ResourceT]
    patch: Callable[[Session, str, str, Any, datetime], ResourceT]
    delete: Callable[[Session, str, str, datetime], None]
    patch_summary: str
    delete_summary: str


def _add_routes(kind: ScimKind[Any]) -> None:
    """List, show, create, replace, patch and delete one resource type, each write in one transaction."""
    collection, item = f"/{kind.endpoint}", f"/{kind.endpoint}/{{resource_id}}"

    def list_all(
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
            page = kind.listed(session, source, filter_text, start_index, count)
        return _listed(request, kind.model, page, attributes, excluded)

    def show(
        resource_id: str,
        request: Request,
        runtime: RuntimeDep,
        source: SourceDep,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> Response:
        with transaction(runtime.factory) as session:
            found = kind.get(session, source, resource_id)
        return _shown(request, kind.model, found, Context.RESOURCE_QUERY_RESPONSE, attributes, excluded)

    def create(request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep) -> Response:
        made = _write(runtime, lambda s, now: kind.create(s, source, body, now))
        return _shown(request, kind.model, made, Context.RESOURCE_CREATION_RESPONSE, status=201)

    def replace(
        resource_id: str, request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep
    ) -> Response:
        replaced = _write(runtime, lambda s, now: kind.replace(s, source, resource_id, body, now))
        return _shown(request, kind.model, replaced, Context.RESOURCE_REPLACEMENT_RESPONSE)

    def patch(
        resource_id: str, request: Request, runtime: RuntimeDep, source: SourceDep, body: BodyDep
    ) -> Response:
        patched = _write(runtime, lambda s, now: kind.patch(s, source, resource_id, body, now))
        return _shown(request, kind.model, patched, Context.RESOURCE_PATCH_RESPONSE)

    def delete(resource_id: str, runtime: RuntimeDep, source: SourceDep) -> Response:
        _write(runtime, lambda s, now: kind.delete(s, source, resource_id, now))
        return Response(status_code=204)

    noun = kind.noun
    router.get(collection, summary=f"List or filter {noun}s", name=f"list_{noun}s")(list_all)
    router.get(item, summary=f"Show a {noun}", name=f"get_{noun}")(show)
    router.post(collection, status_code=201, summary=f"Create a {noun}", name=f"create_{noun}")(create)
    router.put(item, summary=f"Replace a {noun}", name=f"replace_{noun}")(replace)
    router.patch(item, summary=kind.patch_summary, name=f"patch_{noun}")(patch)
    router.delete(item, status_code=204, summary=kind.delete_summary, name=f"delete_{noun}")(delete)


USERS: ScimKind[scim_users.ScimUser] = ScimKind(
    endpoint="Users",
    model=scim_users.ScimUser,
    noun="user",
    get=lambda s, source, rid: scim_users.get_user(s, source=source, user_id=rid),
    listed=lambda s, source, f, start, count: scim_users.list_users(
        s, source=source, filter_text=f, start_index=start, count=count
    ),
    create=lambda s, source, body, now: scim_users.create_user(s, source=source, body=body, now=now),
    replace=lambda s, source, rid, body, now: scim_users.replace_user(
        s, source=source, user_id=rid, body=body, now=now
    ),
    patch=lambda s, source, rid, body, now: scim_users.patch_user(
        s, source=source, user_id=rid, body=body, now=now
    ),
    delete=lambda s, source, rid, now: scim_users.delete_user(s, source=source, user_id=rid, now=now),
    patch_summary="Change a user (deactivate with active: false)",
    delete_summary="Delete a user (the identity is deactivated)",
)
GROUPS: ScimKind[scim_groups.Group] = ScimKind(
    endpoint="Groups",
    model=scim_groups.Group,
    noun="group",
    get=lambda s, source, rid: scim_groups.get_group(s, source=source, group_id=rid),
    listed=lambda s, source, f, start, count: scim_groups.list_groups(
        s, source=source, filter_text=f, start_index=start, count=count
    ),
    create=lambda s, source, body, now: scim_groups.create_group(s, source=source, body=body, now=now),
    replace=lambda s, source, rid, body, now: scim_groups.replace_group(
        s, source=source, group_id=rid, body=body, now=now
    ),
    patch=lambda s, source, rid, body, now: scim_groups.patch_group(
        s, source=source, group_id=rid, body=body, now=now
    ),
    delete=lambda s, source, rid, now: scim_groups.delete_group(s, source=source, group_id=rid, now=now),
    patch_summary="Change a group: members, name",
    delete_summary="Delete a group",
)
for _kind in (USERS, GROUPS):
    _add_routes(_kind)
