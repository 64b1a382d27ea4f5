"""What people do in Slack, done through the same use cases and the same rules as the API: who they are
(their Slack profile's email matched to an active identity), approving and rejecting, reviewing a
break-glass request, extending, searching what they may request and asking for it.

A person acting from Slack acts with the rights of a plain user: Slack carries no token and so no role,
and deciding needs none (the approver engine says who may decide; nobody decides on their own
request)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sluice.domain.durations import parse_duration
from sluice.domain.errors import InvalidInput, NotAuthenticated
from sluice.domain.roles import Role
from sluice.domain.text import storable_text
from sluice.services.grants.acting import extend_grant_as
from sluice.services.notify import slack_views
from sluice.services.requests import reads
from sluice.services.requests.acting import RequestAction, act_on_request, review_request, reviewable_request
from sluice.services.requests.break_glass import OUTCOMES
from sluice.services.requests.policy import load_flow
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.queries import identity_by_email
from sluice.store.slack_tables import SlackSeenRequest
from sluice.store.tables import AccessRequest, Grant, Identity, Resource

# Slack refuses a timestamp more than five minutes from now; a signature is kept a little longer.
REPLAY_WINDOW = timedelta(minutes=5)
_KEEP = REPLAY_WINDOW * 2
MAX_OPTIONS = 100  # the most options Slack shows from one options load
MAX_TEXT = 2000  # what the modals' text inputs allow


class SlackRefusal(Exception):
    """Something to tell the person in Slack, politely; nothing was done."""


class _At(Clock):
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> float:
        return self.moment.timestamp()


def check_signature(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: datetime
) -> str:
    """The request's signature once it is shown to come from Slack (v0 HMAC-SHA256 of
    `v0:{timestamp}:{body}` with the signing secret) within five minutes of `now`."""
    verifier = SignatureVerifier(secret, clock=_At(now))
    try:
        valid = verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except ValueError:  # a timestamp that is not a number
        valid = False
    if not valid or signature is None:
        raise NotAuthenticated("the request is not signed by Slack, or its timestamp is not within 5 minutes")
    return signature


def first_sighting(session: Session, signature: str, now: datetime) -> bool:
    """Remember `signature`; False when it was seen before (a replay). One row per request, written
    with ON CONFLICT DO NOTHING, so two servers given the same request cannot both take it."""
    session.execute(delete(SlackSeenRequest).where(SlackSeenRequest.expires_at < now))
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    taken = session.scalar(
        insert(SlackSeenRequest)
        .values(signature=signature, expires_at=now + _KEEP)
        .on_conflict_do_nothing(index_elements=["signature"])
        .returning(SlackSeenRequest.signature)
    )
    return taken is not None


def email_of(user: dict[str, Any]) -> str | None:
    """The email of a Slack user as `users.info` returns them; None for a bot or a deactivated user."""
    if user.get("deleted") or user.get("is_bot"):
        return None
    email = (user.get("profile") or {}).get("email")
    return str(email) if email else None


def person(session: Session, email: str | None) -> Identity:
    identity = identity_by_email(session, email) if email else None
    if identity is None or not identity.active:
        raise SlackRefusal(
            "Sorry, Sluice does not know you: your Slack email does not belong to an active person in "
            "Sluice. Ask your Sluice administrator to add you."
        )
    return identity


def decide(
    session: Session, *, actor: Identity, request_id: str, approve: bool, reason: str, now: datetime
) -> AccessRequest:
    return act_on_request(
        session,
        request_id=request_id,
        action=RequestAction.APPROVE if approve else RequestAction.REJECT,
        actor=actor,
        role=Role.USER,
        reason=reason,
        now=now,
    )


def to_review(session: Session, *, actor: Identity, request_id: str, now: datetime) -> str:
    """What the review form says of the break-glass request `actor` may review now (else the error a
    review would meet: theirs, not theirs to review, reviewed already)."""
    request = reviewable_request(session, request_id=request_id, actor=actor, role=Role.USER, now=now)
    units = sorted({f"{g.permission} on {g.resource_path}" for g in request.grants})
    shown = ", ".join(units[:5]) + (f" and {len(units) - 5} more" if len(units) > 5 else "")
    who = request.requester.name or request.requester.email
    return f"{who} took {shown} in an emergency (incident {request.incident}): {request.reason}"


def review(
    session: Session, *, actor: Identity, request_id: str, values: dict[str, Any], now: datetime
) -> AccessRequest:
    """The review form's `view.state.values`, reviewed like `POST /api/v1/requests/{id}/review`."""
    chosen = _value(values, "outcome").get("selected_option")
    outcome = chosen.get("value") if isinstance(chosen, dict) else None
    if outcome not in OUTCOMES:
        raise ModalProblem("outcome", "choose whether the access stays (ok) or ends now (revoke)")
    reason = text_value(values, "reason")
    return review_request(
        session, request_id=request_id, actor=actor, role=Role.USER, reason=reason, outcome=outcome, now=now
    )


def extend(session: Session, *, actor: Identity, grant_id: str, now: datetime) -> Grant:
    """Extend by what the grant's flow allows one extension to add."""
    grant = reads.visible_grant(session, grant_id=grant_id, viewer=actor, is_admin=False, now=now)
    rules = load_flow(session, grant.request.flow_name).extensions if grant.request else None
    by = parse_duration(rules.length) if rules else timedelta(hours=1)
    return extend_grant_as(
        session,
        grant_id=grant_id,
        actor=actor,
        role=Role.USER,
        by=by,
        reason="extended from Slack",
        now=now,
    )


def resource_options(session: Session, *, actor: Identity, query: str, now: datetime) -> list[dict[str, Any]]:
    """What `actor` may request whose name or path holds `query`, one option per (resource,
    permission), from the same `requestable` reading the API answers with."""
    page = requestable(
        session,
        identity=actor,
        where=RequestableFilter(q=query.strip() or None),
        limit=MAX_OPTIONS,
        offset=0,
        now=now,
    )
    options = [
        slack_views.option(
            f"{item.resource.path} · {choice.permission}", f"{item.resource.id}|{choice.permission}"
        )
        for item in page.items
        for choice in item.options
    ]
    return options[:MAX_OPTIONS]


class ModalProblem(InvalidInput):
    """A value of the request modal that cannot be used, with the block to show it under."""

    def __init__(self, block: str, detail: str) -> None:
        super().__init__(detail)
        self.block = block


def _value(values: dict[str, Any], block: str) -> Any:
    found = (values.get(block) or {}).get(block) if isinstance(values.get(block), dict) else None
    return found if isinstance(found, dict) else {}


def text_value(values: dict[str, Any], block: str, *, limit: int = MAX_TEXT) -> str:
    """What was typed into the input `block` of a modal, checked like any text from outside."""
    value = _value(values, block).get("value") or ""
    if not isinstance(value, str):
        raise ModalProblem(block, "must be text")
    if len(value) > limit:
        raise ModalProblem(block, f"holds {len(value)} characters; at most {limit} are allowed")
    try:
        return storable_text(value)
    except ValueError as exc:
        raise ModalProblem(block, str(exc)) from exc


def submit_from_modal(
    session: Session, *, hub: ConnectorHub, actor: Identity, values: dict[str, Any], now: datetime
) -> AccessRequest:
    """The request modal's `view.state.values`, submitted like `POST /api/v1/requests`."""
    chosen = _value(values, "resource").get("selected_option")
    picked = chosen.get("value") if isinstance(chosen, dict) else None
    resource_id, _, permission = (picked if isinstance(picked, str) else "").partition("|")
    resource = session.get(Resource, resource_id) if resource_id else None
    if resource is None or not permission:
        raise ModalProblem("resource", "pick a resource from the list")
    try:
        duration = parse_duration(text_value(values, "duration", limit=40).strip())
    except ModalProblem:
        raise
    except InvalidInput as exc:
        raise ModalProblem("duration", exc.detail) from exc
    reason = text_value(values, "reason")
    return submit_request(
        session,
        hub=hub,
        requester=actor,
        units=[UnitAsked(resource=resource.path, permission=permission)],
        duration=duration,
        reason=reason,
        now=now.astimezone(UTC),
    )
