"""The FastAPI application. `create_app` wires one runtime into it; nothing is global."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from sluice import __version__
from sluice.api import problems
from sluice.api.edge import EdgeLimits, EdgeMiddleware
from sluice.api.params import refuse_nul, refuse_unknown_query
from sluice.api.routes import (
    access,
    audit,
    bundles,
    directory,
    explain,
    favourites,
    flows,
    inventory,
    meta,
    ops,
    requests,
    scopes,
    tags,
)
from sluice.api.routes import directory_sources as source_routes
from sluice.api.routes import grants as grant_routes
from sluice.api.routes import integration_status as status_routes
from sluice.api.routes import people as people_routes
from sluice.api.routes import reports as report_routes
from sluice.api.routes import requestable as requestable_routes
from sluice.api.routes import service_accounts as service_account_routes
from sluice.api.routes import signin as signin_routes
from sluice.api.routes import slack as slack_routes
from sluice.api.routes import tokens as token_routes
from sluice.api.routes import webhooks as webhook_routes
from sluice.api.scim.app import scim_router
from sluice.runtime.interpreter import share_fairly
from sluice.runtime.wiring import Runtime
from sluice.web.app import install_portal

API_PREFIX = "/api/v1"


def create_app(runtime: Runtime, *, limits: EdgeLimits | None = None) -> FastAPI:
    app = FastAPI(
        title="Sluice",
        version=__version__,
        summary="Just-in-time access: ask, approve, use, and have it taken away on time.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=_serving,
    )
    app.state.runtime = runtime
    problems.install(app)
    app.add_middleware(EdgeMiddleware, limits=limits or EdgeLimits.from_env())
    _serve_docs(app)

    api = APIRouter(
        prefix=API_PREFIX,
        responses=problems.PROBLEM_RESPONSES,
        dependencies=[Depends(refuse_nul), Depends(refuse_unknown_query)],
    )
    for module in (
        meta,
        requests,
        access,
        tags,
        bundles,
        scopes,
        requestable_routes,
        explain,
        favourites,
        status_routes,
        inventory,
        flows,
        directory,
        audit,
    ):
        api.include_router(module.router)
    api.include_router(grant_routes.router)
    api.include_router(people_routes.router)
    api.include_router(source_routes.router)
    api.include_router(report_routes.router)
    api.include_router(signin_routes.sessions_router)
    api.include_router(token_routes.router)
    api.include_router(service_account_routes.router)
    api.include_router(webhook_routes.router)
    app.include_router(meta.health_router)
    app.include_router(ops.router)
    app.include_router(signin_routes.router, responses=problems.PROBLEM_RESPONSES)
    app.include_router(api)
    app.include_router(scim_router())
    app.include_router(slack_routes.router, responses=problems.PROBLEM_RESPONSES)
    install_portal(app)
    return app


@asynccontextmanager
async def _serving(_app: FastAPI) -> AsyncIterator[None]:
    share_fairly()  # requests run in threads side by side; none may hold the others for 5 ms a turn
    yield


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI from files shipped with the package: no CDN, works offline."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Sluice API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
