"""SCIM answers: `application/scim+json` bodies, and every error as RFC 7644 §3.12 has it
(`urn:ietf:params:scim:api:messages:2.0:Error`, `scimType`, the status as a string), caught on the
SCIM routes only, so the rest of the API keeps its RFC 9457 problems."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from scim2_models import Context, Error, InvalidSyntaxException, SCIMException

from sluice.domain.errors import NotAuthenticated, SluiceError

log = logging.getLogger("sluice.scim")

SCIM_MEDIA_TYPE = "application/scim+json"
# A domain error's status -> the scimType RFC 7644 pairs with it
_SCIM_TYPES = {409: "uniqueness", 422: "invalidValue", 400: "invalidValue"}


class ScimResponse(Response):
    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), default=str).encode()


def scim_error(status: int, detail: str, scim_type: str | None = None) -> ScimResponse:
    return error_response(Error(status=status, scim_type=scim_type, detail=detail))


def error_response(error: Error) -> ScimResponse:
    status = int(error.status or 400)
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return ScimResponse(error.model_dump(scim_ctx=Context.DEFAULT), status_code=status, headers=headers)


def _as_error(exc: Exception) -> Error:
    if isinstance(exc, SCIMException):
        return exc.to_error()
    if isinstance(exc, ValidationError):
        return Error.from_validation_errors(exc)[0]
    if isinstance(exc, RequestValidationError):
        shown = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5]
        )
        return Error(status=400, scim_type="invalidValue", detail=f"the request is not valid: {shown}")
    assert isinstance(exc, SluiceError)
    status = 400 if exc.status == 422 else exc.status
    scim_type = None if isinstance(exc, NotAuthenticated) else _SCIM_TYPES.get(exc.status)
    return Error(status=status, scim_type=scim_type, detail=exc.detail)


class ScimRoute(APIRoute):
    """A route whose errors leave as SCIM errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (SCIMException, SluiceError, ValidationError, RequestValidationError) as exc:
                error = _as_error(exc)
                if int(error.status or 400) >= 500:
                    log.warning("SCIM %s %s: %s", request.method, request.url.path, error.detail)
                return error_response(error)

        return scim_handler


async def scim_body(request: Request) -> Any:
    """The JSON body, sent as `application/scim+json` or `application/json`."""
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSyntaxException(detail="the body is not valid JSON") from exc
