"""Every error leaves the API as an RFC 9457 problem (`application/problem+json`), built here and
nowhere else: domain errors by their status, validation errors as a list a person can act on, routing
errors as 404/405, and anything unexpected as a generic 500 (logged, never shown)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.domain.errors import NotAuthenticated, SluiceError
from sluice.domain.text import INVALID_UNICODE, too_many_entries

log = logging.getLogger("sluice.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:sluice:problem:"
MAX_LISTED_ERRORS = 5
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class FieldError(BaseModel):
    location: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem; some carry more members (`errors`, `reasons`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str


def problem_response(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    for key, value in extra.items():
        body.setdefault(key, value)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def _unwrapped(message: str) -> str:
    """Pydantic prefixes the messages of our own validators (`Value error, …`); the prefix helps nobody,
    wherever the message travelled since (a service may wrap a ValidationError in a domain error)."""
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _message(error: dict[str, Any]) -> str:
    too_many = too_many_entries(error)
    if too_many:
        return too_many
    if error.get("type") == "string_unicode":
        return INVALID_UNICODE
    return _unwrapped(str(error.get("msg", "is not valid")))


def _field_errors(errors: Any) -> Any:
    if not isinstance(errors, list):
        return errors
    return [
        {**e, "message": _unwrapped(e["message"])}
        if isinstance(e, dict) and isinstance(e.get("message"), str)
        else e
        for e in errors
    ]


async def _sluice_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SluiceError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
    extra = dict(exc.extra)
    if "errors" in extra:
        extra["errors"] = _field_errors(extra["errors"])
    return problem_response(
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=_unwrapped(exc.detail),
        instance=request.url.path,
        headers=headers,
        **extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(
            status=400,
            slug="malformed-json",
            title="Malformed JSON",
            detail="the request body is not valid JSON; send a JSON object",
            instance=request.url.path,
        )
    listed = [FieldError(location=_location(e.get("loc", ())), message=_message(e)) for e in errors]
    shown = "; ".join(f"{f.location}: {f.message}" for f in listed[:MAX_LISTED_ERRORS])
    if len(listed) > MAX_LISTED_ERRORS:
        shown += f"; and {len(listed) - MAX_LISTED_ERRORS} more"
    return problem_response(
        status=422,
        slug="invalid-input",
        title="Invalid input",
        detail=f"the request is not valid: {shown}",
        instance=request.url.path,
        errors=[f.model_dump() for f in listed],
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 404:
        detail = f"there is nothing at {request.url.path}; the API lives under /api/v1 (see /docs)"
    elif status == 405:
        allowed = _allowed_methods(request)
        headers = {**headers, "Allow": allowed} if allowed else headers
        detail = f"{request.method} is not allowed on {request.url.path}" + (
            f"; use {allowed}" if allowed else ""
        )
    else:
        detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    return problem_response(
        status=status,
        slug=_slug(status),
        title=HTTPStatus(status).phrase,
        detail=detail,
        instance=request.url.path,
        headers=headers or None,
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at this path. (Starlette names only the first matching
    route's, so GET would be missing from `DELETE /requests`.) Asked through the public `matches`."""
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


async def send_problem(
    send: Send,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
) -> None:
    """An RFC 9457 problem written straight to ASGI, for middleware that answers before (or instead
    of) any route."""
    body = json.dumps(
        {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail, "instance": instance}
    ).encode()
    raw = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class UnexpectedErrorMiddleware:
    """Turns an exception nobody handled into a 500 problem with a generic detail. The traceback goes
    to the log, never to the caller. (Starlette's own 500 handler re-raises, which would print it twice
    and break test clients; this answers and stops.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await send_problem(
                send,
                status=500,
                slug="internal-error",
                title="Internal server error",
                detail="something went wrong on the server; it has been logged. Try again, "
                "and tell the operator if it keeps happening",
                instance=scope.get("path", ""),
            )


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The store cannot be reached or is busy: the caller should come back, not report a bug."""
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return problem_response(
        status=503,
        slug="store-unavailable",
        title="Service unavailable",
        detail="the store cannot be reached or is busy right now; nothing was changed. Try again shortly",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(OperationalError, _store_unavailable)
    app.add_exception_handler(SluiceError, _sluice_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(UnexpectedErrorMiddleware)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}
    for status, description in (
        (400, "Malformed request"),
        (401, "Missing or invalid bearer token"),
        (403, "Not allowed"),
        (404, "Not found"),
        (409, "Stale action: the object moved on"),
        (413, "Request body too large"),
        (422, "Invalid input"),
        (429, "Too many requests: wait for Retry-After seconds"),
    )
}
