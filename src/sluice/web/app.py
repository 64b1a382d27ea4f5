"""The portal: server-rendered pages at `/` over the same services as the API (`web/routing.py` holds
the rules every page follows)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from sluice.web.rendering import STATIC_DIR
from sluice.web.routes import (
    access,
    admin,
    approvals,
    asking,
    favourites,
    history,
    request_page,
    reviewing,
    signin,
)

STATIC_PREFIX = "/static"
PORTAL_MODULES = (signin, access, asking, reviewing, favourites, approvals, request_page, history, admin)


def install_portal(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="portal-static")
    for module in PORTAL_MODULES:
        app.include_router(module.router)
