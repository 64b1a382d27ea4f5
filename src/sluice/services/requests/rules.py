"""The people and time rules a request meets before a flow is picked: for whom it may be (oneself,
others the flow names, one's direct reports), when it may start, and the flows' time windows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy.orm import Session

from sluice.domain.approval import approvals_needed
from sluice.domain.durations import format_duration
from sluice.domain.errors import InvalidInput, NotAllowed, NotFound
from sluice.domain.flows import FlowSpec
from sluice.domain.people import Person, any_holds
from sluice.domain.policy import ResourceRef, evaluate
from sluice.store.queries import identity_by_email
from sluice.store.tables import Identity

MAX_START_AHEAD = timedelta(days=90)
START_SLACK = timedelta(minutes=1)  # a start a moment in the past (clock skew) means "now"


def checked_start(starts_at: datetime | None, now: datetime) -> datetime | None:
    """The start asked for, or None for "at once"; refuses a start in the past or too far ahead."""
    if starts_at is None:
        return None
    if starts_at.tzinfo is None:
        raise InvalidInput("the start time needs a time zone, e.g. 2026-01-05T22:00:00Z")
    if starts_at < now - START_SLACK:
        raise InvalidInput(f"the start {starts_at.isoformat()} is in the past; leave it out to start now")
    if starts_at - now > MAX_START_AHEAD:
        raise InvalidInput(f"a request may start at most {MAX_START_AHEAD.days} days ahead")
    return starts_at if starts_at > now else None


def may_request_for(flow: FlowSpec, requester: Person, grantee: Person) -> str | None:
    """None when `requester` may ask under `flow` for `grantee`; otherwise why not."""
    if grantee.email.lower() == requester.email.lower():
        return None
    if not grantee.active:
        return f"{grantee.email} is not active"
    if flow.on_behalf is not None and not any_holds(flow.on_behalf, requester):
        who = "; ".join(s.describe() for s in flow.on_behalf)
        return f"only people who are {who} may ask for someone else under this flow"
    if flow.for_direct_reports and (grantee.manager or "").lower() == requester.email.lower():
        return None
    if flow.grantees is not None and any_holds(flow.grantees, grantee):
        return None
    if flow.grantees is None and not flow.for_direct_reports:
        return "the flow lets people request only for themselves"
    return f"{grantee.email} is not someone this flow lets {requester.email} request for"


def usable_flows(
    flows: list[FlowSpec], *, requester: Person, grantee: Person, start: datetime
) -> tuple[list[FlowSpec], list[str]]:
    """The flows that allow a request by `requester` for `grantee` starting at `start`, and why each
    other flow does not."""
    usable, reasons = [], []
    for flow in flows:
        why = may_request_for(flow, requester, grantee)
        if why is None and flow.window is not None and not flow.window.contains(start):
            why = f"grants only during {flow.window.describe()}, and {start.isoformat()} is outside it"
        if why is None:
            usable.append(flow)
        else:
            reasons.append(f"{flow.name}: {why}")
    return usable, reasons


def refuse_unusable(flows: list[FlowSpec], reasons: list[str], grantee: Person, requester: Person) -> None:
    if flows:
        return
    whom = "" if grantee.email == requester.email else f" for {grantee.email}"
    raise NotAllowed(
        f"no access flow lets {requester.email} make this request{whom} now: " + "; ".join(reasons),
        reasons="; ".join(reasons),
    )


def refuse_no_flow(flows: list[FlowSpec], person: Person, refs: list[tuple[ResourceRef, str]]) -> NoReturn:
    """No one of `flows` allows every unit: refused, naming a unit no flow allows and why, if any."""
    for ref, permission in refs:
        if not any(evaluate(f, person, ref, permission).allowed for f in flows):
            reasons = [f"{v.flow}: {v.reason}" for v in (evaluate(f, person, ref, permission) for f in flows)]
            raise NotAllowed(
                f"no access flow lets {person.email} request {permission} on {ref.path}",
                reasons="; ".join(reasons) if flows else "no access flow exists yet",
            )
    raise NotAllowed("no single access flow allows every unit of this request; request them separately")


def refuse_too_long(flow: FlowSpec, duration: timedelta, *, break_glass: bool) -> None:
    """A request longer than its flow allows is refused (break-glass has its own cap, checked with it)."""
    if not break_glass and duration > flow.max_duration_delta:
        raise InvalidInput(
            f"duration {format_duration(duration)} is longer than flow {flow.name!r} allows "
            f"({flow.max_duration}); ask for {flow.max_duration} or less"
        )


def capped_duration(flow: FlowSpec, start: datetime, duration: timedelta) -> timedelta:
    """Access granted inside a flow's window ends when the window closes."""
    if flow.window is None:
        return duration
    return min(duration, flow.window.closes_after(start) - start)


def explain_choice(chosen: FlowSpec, usable: list[FlowSpec], named: bool) -> str:
    """Why this flow carries the request, in words."""
    if named:
        return f"flow {chosen.name} was named by the requester"
    needed = approvals_needed(chosen.approval_policy)
    need = "needs no approval" if needed == 0 else f"needs {needed} approval(s)"
    others = [f.name for f in usable if f.name != chosen.name]
    rest = f"; of the other flows that may allow it ({', '.join(others)}) none needs less" if others else ""
    return f"flow {chosen.name} {need} and allows up to {chosen.max_duration}{rest}"


def grantee_of(session: Session, email: str | None) -> Identity | None:
    """The identity a request is for, by email; None for the requester themself."""
    if email is None:
        return None
    identity = identity_by_email(session, email)
    if identity is None:
        raise NotFound(f"no identity {email!r}")
    return identity
