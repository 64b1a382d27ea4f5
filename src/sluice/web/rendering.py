"""Templates (Jinja2, autoescaped everywhere) and the answers the portal sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from sluice.web.guard import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, csrf_token

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
HTMX_FILE = "htmx-2.0.11.min.js"

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def time_left(ends_at: datetime | None, now: datetime) -> str:
    """`2h 05m left`, `45s left`, `ended`: how long an access still lasts."""
    if ends_at is None:
        return "no end time"
    left = _aware(ends_at) - _aware(now)
    if left <= timedelta(0):
        return "ended"
    seconds = int(left.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m left"
    if minutes:
        return f"{minutes}m {secs:02d}s left"
    return f"{secs}s left"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(moment: datetime | None) -> str:
    return "" if moment is None else f"{_aware(moment).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


_env.filters["when"] = when
_env.globals["time_left"] = time_left
_env.globals["CSRF_FIELD"] = CSRF_FIELD
_env.globals["CSRF_HEADER"] = CSRF_HEADER
_env.globals["HTMX_FILE"] = HTMX_FILE


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """A page (or, for htmx, a fragment) for the person looking. Never cached: pages are personal."""
    token = csrf_token(request)
    html = _env.get_template(template).render(
        request=request, csrf=token, viewer=context.pop("viewer", None), **context
    )
    response = HTMLResponse(html, status_code=status)
    remember_csrf(request, response)
    response.headers["cache-control"] = "no-store"
    # `no-referrer` (the API's) makes a browser send `Origin: null` with the page's forms, which the
    # CSRF check refuses; same-origin keeps the origin for the portal's own forms and tells no one else.
    response.headers["referrer-policy"] = "same-origin"
    return response


def remember_csrf(request: Request, response: Response) -> None:
    fresh = request.state.__dict__.get("new_csrf")
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            fresh,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def go_to(request: Request, url: str) -> Response:
    """After a form: a 303 to the next page, or for htmx an `HX-Redirect` (htmx follows it itself)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url, "cache-control": "no-store"})
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})
