"""For operators: Prometheus metrics and readiness (liveness is `/healthz`)."""

from __future__ import annotations

import hmac
import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from sluice.domain.errors import NotAuthenticated
from sluice.events.metrics import registry_with_store
from sluice.runtime.wiring import Runtime

router = APIRouter(tags=["meta"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _scraper_allowed(request: Request) -> bool:
    """With `SLUICE_METRICS_TOKEN` set, `/metrics` answers only `Authorization: Bearer <that token>`."""
    expected = os.environ.get("SLUICE_METRICS_TOKEN", "")
    if not expected:
        return True
    sent = request.headers.get("authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode())


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    if not _scraper_allowed(request):
        raise NotAuthenticated("send the metrics token as `Authorization: Bearer <SLUICE_METRICS_TOKEN>`")
    runtime = _runtime(request)
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = registry_with_store(runtime.factory, runtime.clock)
        request.app.state.metrics_registry = registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", summary="Readiness: the store answers")
def readyz(request: Request) -> JSONResponse:
    try:
        with _runtime(request).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any store failure means not ready
        return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})
