"""Request access: search what I may request (the `requestable` service, type-ahead through htmx or a
plain GET form), pick resources and permissions, then review who will approve and why (the `explain`
service) before submitting (the `submit_request` service, as the API's POST /requests)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.params import changing
from sluice.domain.durations import format_duration, parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.text import Text
from sluice.services.requests import break_glass
from sluice.services.requests.break_glass import BreakGlassAsk
from sluice.services.requests.explain import Explanation, explain
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.db import transaction
from sluice.web.guard import ViewerDep, form_fields
from sluice.web.rendering import go_to, render
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
    return {"q": q, "items": page.items, "more": page.next_offset is not None, "unit_value": unit_value}


@router.get("/request")
def request_page(request: Request, runtime: RuntimeDep, viewer: ViewerDep, q: SearchText = "") -> Response:
    return render(request, "request.html", {**_search(runtime, viewer, q), "viewer": viewer})


@router.get("/request/search")
def search_results(request: Request, runtime: RuntimeDep, viewer: ViewerDep, q: SearchText = "") -> Response:
    """The results alone, for the type-ahead box."""
    return render(request, "_results.html", _search(runtime, viewer, q))


def _explanations(runtime: RuntimeDep, viewer: ViewerDep, units: list[UnitAsked]) -> list[Explanation]:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        return [
            explain(session, email=viewer.email, resource=u.resource, permission=u.permission, now=now)
            for u in units
        ]


@router.get("/request/review")
def review(
    request: Request,
    runtime: RuntimeDep,
    viewer: ViewerDep,
    unit: Annotated[list[Annotated[str, Text(max_length=1100)]], Query()] = [],  # noqa: B006
) -> Response:
    units = parse_units(unit)
    explanations = _explanations(runtime, viewer, units)
    limits = [
        parse_duration(v.max_duration)
        for e in explanations
        for v in e.flows
        if v.flow == e.chosen_flow and e.allowed
    ]
    longest = format_duration(min(limits)) if limits else ""
    with transaction(runtime.factory) as session:
        allowing = [{v.flow for v in e.flows if v.allowed} for e in explanations]
        emergency = break_glass.offered(session, viewer.identity_in(session), allowing, runtime.clock())
    context = {
        "emergency": emergency,
        "viewer": viewer,
        "units": [unit_value(u.permission, u.resource) for u in units],
        "explanations": explanations,
        "allowed": all(e.allowed for e in explanations),
        "longest": longest,
    }
    return render(request, "review.html", context)


@router.post("/request")
async def submit(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    fields = await form_fields(request)
    units = parse_units([value for name, value in fields if name == "unit"])
    values = dict(fields)
    duration = parse_duration(values.get("duration", ""))
    now = runtime.clock()
    with changing(runtime) as session:
        asked = submit_request(
            session,
            hub=runtime.hub,
            requester=viewer.identity_in(session),
            units=units,
            duration=duration,
            reason=values.get("reason", ""),
            now=now,
            break_glass=(
                BreakGlassAsk(reason=values.get("reason", ""), incident=values.get("incident", ""))
                if values.get("break_glass") == "on"
                else None
            ),
        )
        request_id = asked.id
    return go_to(request, f"/requests/{request_id}")
