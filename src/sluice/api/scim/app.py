"""The SCIM router mounted at /scim/v2."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sluice.api.scim import discovery, routes
from sluice.api.scim.responses import ScimRoute, scim_error

SCIM_PREFIX = "/scim/v2"


def scim_router() -> APIRouter:
    scim = APIRouter(prefix=SCIM_PREFIX, route_class=ScimRoute)

    @scim.get("", name="scim_root", include_in_schema=False)
    def scim_root(request: Request) -> Response:
        return scim_error(
            404, "the SCIM endpoints are /Users, /Groups, /ServiceProviderConfig, /Schemas and /ResourceTypes"
        )

    scim.include_router(discovery.router)
    scim.include_router(routes.router)
    return scim
