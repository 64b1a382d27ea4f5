"""The portal's router: one CSRF rule for every state-changing request, and domain errors shown as a
page with the error's status (the API's problem handler answers JSON; a browser gets a page)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from sluice.domain.errors import SluiceError
from sluice.web.guard import SignInNeeded, check_csrf
from sluice.web.rendering import go_to, render


class PortalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                return go_to(request, "/signin")
            except SluiceError as exc:
                return render(
                    request, "error.html", {"title": exc.title, "detail": exc.detail}, status=exc.status
                )
            except RequestValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in error['loc'][1:])}: {error['msg']}" for error in exc.errors()
                )
                return render(request, "error.html", {"title": "Bad input", "detail": detail}, status=422)

        return answer


def portal_router() -> APIRouter:
    return APIRouter(route_class=PortalRoute, dependencies=[Depends(check_csrf)], include_in_schema=False)
