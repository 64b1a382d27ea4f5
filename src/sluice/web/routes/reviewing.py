"""Review and submit a request: who will approve and why (the `explain` service) for what was picked
or for a bundle's resources, then the form: how long (up to the flow's maximum), from when (now or a
later start), for whom (oneself, or someone a flow lets one ask for) and why; submitted through the
`submit_request` service, as the API's POST /requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from sluice.api.auth import RuntimeDep
from sluice.api.params import changing
from sluice.domain.durations import format_duration, parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.text import Email, Name, Text
from sluice.services.requests import break_glass
from sluice.services.requests.break_glass import BreakGlassAsk
from sluice.services.requests.bundle_requests import bundle_units
from sluice.services.requests.explain import Explanation, explain
from sluice.services.requests.rules import grantee_of
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.store.db import transaction
from sluice.web.guard import ViewerDep, form_fields
from sluice.web.rendering import go_to, render
from sluice.web.routes.asking import MAX_UNITS_PICKED, parse_units, unit_value
from sluice.web.routing import portal_router

router = portal_router()

# What the duration list offers, each shown only when the flow allows it; the flow's maximum is
# always offered too.
DURATION_STEPS = ("15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "7d")
_EMAIL = TypeAdapter(Email)
_START_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends, read as UTC


def duration_choices(longest: timedelta) -> list[str]:
    shorter = [step for step in DURATION_STEPS if parse_duration(step) < longest]
    return [*shorter, format_duration(longest)]


def start_of(text: str) -> datetime | None:
    """A later start from the form (UTC, minutes); empty: at once."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, _START_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput("the start is a date and time such as 2026-01-05T22:00 (UTC)") from None


def beneficiary_of(text: str) -> str | None:
    """The email of whom the access is for; empty: oneself."""
    text = text.strip()
    if not text:
        return None
    try:
        return _EMAIL.validate_python(text)
    except ValidationError:
        raise InvalidInput("'for' is the email of the person the access is for") from None


def _explanations(runtime: RuntimeDep, viewer: ViewerDep, units: list[UnitAsked]) -> list[Explanation]:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        return [
            explain(session, email=viewer.email, resource=u.resource, permission=u.permission, now=now)
            for u in units
        ]


def review_context(runtime: RuntimeDep, viewer: ViewerDep, units: list[UnitAsked]) -> dict[str, Any]:
    explanations = _explanations(runtime, viewer, units)
    limits = [
        parse_duration(v.max_duration)
        for e in explanations
        for v in e.flows
        if v.flow == e.chosen_flow and e.allowed
    ]
    longest = min(limits) if limits else None
    choices = duration_choices(longest) if longest else []
    with transaction(runtime.factory) as session:
        allowing = [{v.flow for v in e.flows if v.allowed} for e in explanations]
        emergency = break_glass.offered(session, viewer.identity_in(session), allowing, runtime.clock())
    return {
        "emergency": emergency,
        "viewer": viewer,
        "units": [unit_value(u.permission, u.resource) for u in units],
        "explanations": explanations,
        "allowed": all(e.allowed for e in explanations),
        "longest": format_duration(longest) if longest else "",
        "durations": choices,
        "chosen_duration": "1h" if "1h" in choices else (choices[0] if choices else ""),
        "earliest_start": runtime.clock().astimezone(UTC).strftime(_START_FORMAT),
    }


@router.get("/request/review")
def review(
    request: Request,
    runtime: RuntimeDep,
    viewer: ViewerDep,
    unit: Annotated[list[Annotated[str, Text(max_length=1100)]], Query()] = [],  # noqa: B006
    bundle: Annotated[Name | None, Query()] = None,
) -> Response:
    if bundle is not None:
        with transaction(runtime.factory) as session:
            units = bundle_units(session, bundle)
        if not units:
            raise InvalidInput(f"bundle {bundle!r} covers no resource now; nothing to request")
        if len(units) > MAX_UNITS_PICKED:
            raise InvalidInput(
                f"bundle {bundle!r} covers {len(units)} resources; pick at most {MAX_UNITS_PICKED}"
            )
    else:
        units = parse_units(unit)
    return render(request, "review.html", {**review_context(runtime, viewer, units), "bundle": bundle})


@router.post("/request")
async def submit(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    fields = await form_fields(request)
    units = parse_units([value for name, value in fields if name == "unit"])
    values = dict(fields)
    duration = parse_duration(values.get("duration", ""))
    starts_at = start_of(values.get("starts_at", ""))
    beneficiary = beneficiary_of(values.get("on_behalf_of", ""))
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
            starts_at=starts_at,
            grantee=grantee_of(session, beneficiary),
            break_glass=(
                BreakGlassAsk(reason=values.get("reason", ""), incident=values.get("incident", ""))
                if values.get("break_glass") == "on"
                else None
            ),
        )
        request_id = asked.id
    return go_to(request, f"/requests/{request_id}")
