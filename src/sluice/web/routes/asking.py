"""Request access: search what I may request (the `requestable` service, type-ahead through htmx or a
plain GET form), and the bundles I may request; picking resources and permissions, or a bundle, leads
to the review (`reviewing.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Query, Request, Response

from sluice.api.auth import RuntimeDep
from sluice.domain.durations import format_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.text import Text
from sluice.services.requests.favourites import favourites_of
from sluice.services.requests.submit import UnitAsked
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.db import transaction
from sluice.web.guard import ViewerDep
from sluice.web.rendering import render
from sluice.web.routing import portal_router

router = portal_router()

RESULTS_SHOWN = 25
MAX_UNITS_PICKED = 50
SearchText = Annotated[str, Text(max_length=200), Query()]


def unit_value(permission: str, path: str) -> str:
    """One picked access unit in a form field: the permission (no spaces), a space, the path."""
    return f"{permission} {path}"


def parse_units(values: list[str]) -> list[UnitAsked]:
    if not values:
        raise InvalidInput("pick at least one resource and permission")
    if len(values) > MAX_UNITS_PICKED:
        raise InvalidInput(f"pick at most {MAX_UNITS_PICKED} resources at once")
    units = []
    for value in values:
        permission, _, path = value.partition(" ")
        if not permission or not path:
            raise InvalidInput(f"{value!r} is not a permission and a resource")
        units.append(UnitAsked(resource=path, permission=permission))
    return units


def _search(runtime: RuntimeDep, viewer: ViewerDep, q: str) -> dict[str, Any]:
    with transaction(runtime.factory) as session:
        page = requestable(
            session,
            identity=viewer.identity_in(session),
            where=RequestableFilter(q=q.strip() or None),
            limit=RESULTS_SHOWN,
            offset=0,
            now=runtime.clock(),
        )
    return {
        "q": q,
        "items": page.items,
        "bundles": page.bundles,
        "more": page.next_offset is not None,
        "unit_value": unit_value,
    }


@router.get("/request")
def request_page(request: Request, runtime: RuntimeDep, viewer: ViewerDep, q: SearchText = "") -> Response:
    with transaction(runtime.factory) as session:
        saved = [
            {
                "id": f.id,
                "name": f.name,
                "what": f"bundle {f.bundle}" if f.bundle else ", ".join(f"{p} on {r}" for p, r in f.units),
                "duration": format_duration(timedelta(seconds=f.duration_seconds)),
                "reason": f.reason,
            }
            for f in favourites_of(session, viewer.identity_in(session))
        ]
    context = {**_search(runtime, viewer, q), "viewer": viewer, "favourites": saved}
    return render(request, "request.html", context)


@router.get("/request/search")
def search_results(request: Request, runtime: RuntimeDep, viewer: ViewerDep, q: SearchText = "") -> Response:
    """The results alone, for the type-ahead box."""
    return render(request, "_results.html", _search(runtime, viewer, q))
