"""The FastAPI application. `create_app` wires one runtime into it; nothing is global."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from sluice import __version__
from sluice.api import problems
from sluice.api.params import refuse_nul
from sluice.api.routes import access, audit, directory, flows, inventory, meta, ops, requests, targeting
from sluice.api.routes import grants as grant_routes
from sluice.api.routes import integration_status as status_routes
from sluice.api.routes import people as people_routes
from sluice.runtime import Runtime

API_PREFIX = "/api/v1"


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Sluice",
        version=__version__,
        summary="Just-in-time access: ask, approve, use, and have it taken away on time.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    problems.install(app)

    api = APIRouter(
        prefix=API_PREFIX, responses=problems.PROBLEM_RESPONSES, dependencies=[Depends(refuse_nul)]
    )
    for module in (meta, requests, access, targeting, status_routes, inventory, flows, directory, audit):
        api.include_router(module.router)
    api.include_router(grant_routes.router)
    api.include_router(people_routes.router)
    app.include_router(meta.health_router)
    app.include_router(ops.router)
    app.include_router(api)
    return app
