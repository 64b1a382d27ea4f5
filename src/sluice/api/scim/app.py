"""The SCIM router mounted at /scim/v2."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sluice.api.scim import discovery, routes
from sluice.api.scim.responses import ScimRoute, scim_error

SCIM_PREFIX = "/scim/v2"
_READ_ONLY = frozenset({"ServiceProviderConfig", "Schemas", "ResourceTypes"})


def scim_router() -> APIRouter:
    scim = APIRouter(prefix=SCIM_PREFIX, route_class=ScimRoute)

    @scim.get("", name="scim_root", include_in_schema=False)
    def scim_root(request: Request) -> Response:
        return scim_error(
            404, "the SCIM endpoints are /Users, /Groups, /ServiceProviderConfig, /Schemas and /ResourceTypes"
        )

    scim.include_router(discovery.router)
    scim.include_router(routes.router)

    @scim.api_route(
        "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    def nothing_here(rest: str) -> Response:
        if rest.split("/")[0] in _READ_ONLY:
            answer = scim_error(405, f"{rest} is read-only; use GET")
            answer.headers["Allow"] = "GET"
            return answer
        return scim_error(404, f"there is no SCIM endpoint {rest!r}")

    return scim
