"""/scim/v2/ServiceProviderConfig, /Schemas and /ResourceTypes, built from the scim2-models models:
what this server supports (PATCH and filters; no bulk, sort, ETags or password change)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    ListResponse,
    NotFoundException,
    Patch,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)

from sluice.api.scim.responses import ScimResponse, ScimRoute
from sluice.services.directory.scim_common import MAX_PAGE
from sluice.services.directory.scim_user_fields import ScimUser

router = APIRouter(route_class=ScimRoute, tags=["scim"])


def _base(request: Request) -> str:
    return str(request.url_for("scim_root")).rstrip("/")


def _schemas() -> list[Schema]:
    return [User.to_schema(), Group.to_schema(), EnterpriseUser.to_schema()]


def _resource_types() -> list[ResourceType]:
    return [ResourceType.from_resource(ScimUser), ResourceType.from_resource(Group)]


def _with_location(item: Any, location: str) -> Any:
    data = item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    data.setdefault("meta", {})["location"] = location
    data["meta"].setdefault("resourceType", type(item).__name__)
    return data


@router.get("/ServiceProviderConfig", summary="What this SCIM server supports")
def service_provider_config(request: Request) -> Response:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_PAGE),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="SCIM bearer token",
                description="A token from `sluice scim token create --source NAME`",
                primary=True,
            )
        ],
    )
    return ScimResponse(_with_location(config, f"{_base(request)}/ServiceProviderConfig"))


def _listing(request: Request, path: str, items: list[Any]) -> Response:
    resources = [_with_location(i, f"{_base(request)}/{path}/{i.id}") for i in items]
    body = {
        "schemas": [ListResponse.__schema__],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": resources,
    }
    return ScimResponse(body)


def _one(request: Request, path: str, items: list[Any], wanted: str) -> Response:
    for item in items:
        if item.id == wanted:
            return ScimResponse(_with_location(item, f"{_base(request)}/{path}/{item.id}"))
    raise NotFoundException(detail=f"no {path[:-1].lower()} {wanted!r}")


@router.get("/Schemas", summary="The schemas of users, groups and the enterprise extension")
def schemas(request: Request) -> Response:
    return _listing(request, "Schemas", _schemas())


@router.get("/Schemas/{schema_id}", summary="One schema")
def schema(schema_id: str, request: Request) -> Response:
    return _one(request, "Schemas", _schemas(), schema_id)


@router.get("/ResourceTypes", summary="User and Group")
def resource_types(request: Request) -> Response:
    return _listing(request, "ResourceTypes", _resource_types())


@router.get("/ResourceTypes/{type_id}", summary="One resource type")
def resource_type(type_id: str, request: Request) -> Response:
    return _one(request, "ResourceTypes", _resource_types(), type_id)
