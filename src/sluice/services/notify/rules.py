"""Who hears what: the recipients of one event, by the rules below and the flow's `notify:` block
(`domain/notify.NotifySpec`, defaults when a flow names none).

- request.created: while it is pending, the approvers who may decide now (the approver engine) and
  the owners when the flow asks for them; always the flow's destinations;
- request.escalated: the people the tier that opened asks (named in the event by the approver engine);
- request.reminder: the approvers who can still decide;
- request.break_glass: every approver of the flow, on every configured channel, and the destinations;
- request.approved / rejected / cancelled / expired, request.break_glass_reviewed: the requester, and
  everyone who heard of the request before on the same channel (so a channel can update what it sent);
- grant.activated / ending_soon / expired / revoked / no_longer_eligible: the grantee, once per request
  and event kind (a request of many resources gives one message, not one per resource);
- grant.revoke_failed: the owners of the resource and of its integration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.flows import FlowSpec
from sluice.domain.notify import PERSON_CHANNELS, NotifySpec
from sluice.domain.states import RequestStatus
from sluice.services.notify.channels import SETTLED_TOPICS
from sluice.services.notify.subjects import About
from sluice.services.requests.approvals import (
    RequestApproval,
    approvers_of_request,
    emails_of_tiers,
    request_context,
)
from sluice.store.people_queries import owners_of_resources
from sluice.store.queries import identity_by_email
from sluice.store.tables import Group, GroupMember, Identity, Notification, OutboxMessage

TO_GRANTEE = frozenset(
    {"grant.activated", "grant.ending_soon", "grant.expired", "grant.revoked", "grant.no_longer_eligible"}
)
TOPICS = frozenset(
    {"request.created", "request.escalated", "request.reminder", "request.break_glass", "grant.revoke_failed"}
    | SETTLED_TOPICS
    | TO_GRANTEE
)


@dataclass(frozen=True)
class Recipient:
    channel: str
    recipient: str  # an identity id, or a destination such as "slack:#db-access"
    role: str  # approver, requester, owner, channel


def recipients(
    session: Session,
    message: OutboxMessage,
    found: About,
    *,
    flows: dict[str, FlowSpec],
    configured: set[str],
    now: datetime,
) -> list[Recipient]:
    """Everyone who hears of `message` on the `configured` channels, without repeats."""
    topic, request, grant = message.topic, found.request, found.grant
    if topic not in TOPICS or (request is None and grant is None):
        return []
    flow_name = request.flow_name if request is not None else (grant.flow_name if grant is not None else None)
    flow = flows.get(flow_name or "")
    spec = flow.notify_spec if flow is not None else NotifySpec()
    found_list: list[Recipient] = []
    if topic == "request.created" and request is not None:
        if request.status == RequestStatus.PENDING:  # decided already: nobody needs asking any more
            emails = approvers_of_request(session, request, flow, now) if flow is not None else []
            found_list += _people(session, emails, spec.person_channels("approvers", configured), "approver")
            owners = _owner_ids(session, [g.resource_id for g in request.grants if g.resource_id])
            found_list += _ids(owners, spec.person_channels("owners", configured), "owner")
        found_list += _destinations(spec, configured)  # a shared place hears of every request
    elif topic in ("request.escalated", "request.reminder") and request is not None:
        if topic == "request.escalated":
            emails = [str(e) for e in (message.payload.get("details") or {}).get("approvers") or []]
        else:
            emails = approvers_of_request(session, request, flow, now) if flow is not None else []
        found_list += _people(session, emails, spec.person_channels("approvers", configured), "approver")
    elif topic == "request.break_glass" and request is not None:
        found_list += _people(
            session, _every_approver(session, request, flow, now), _all(configured), "approver"
        )
        found_list += _destinations(spec, configured)
    elif topic in SETTLED_TOPICS and request is not None:
        found_list += _ids([request.requester_id], spec.person_channels("requester", configured), "requester")
        found_list += _heard_before(session, request.id, configured)
    elif topic in TO_GRANTEE and grant is not None:
        heard = _heard_of_topic(session, grant.request_id, topic) if grant.request_id else set()
        found_list += [
            r
            for r in _ids([grant.identity_id], spec.person_channels("requester", configured), "requester")
            if (r.recipient, r.channel) not in heard
        ]
    elif topic == "grant.revoke_failed" and grant is not None and grant.resource_id:
        channels = spec.person_channels("owners", configured) if spec.owners else _all(configured)
        found_list += _ids(_owner_ids(session, [grant.resource_id]), channels, "owner")
    return list({(r.recipient, r.channel): r for r in found_list}.values())


def _all(configured: set[str]) -> list[str]:
    return [name for name in PERSON_CHANNELS if name in configured]


def _ids(identity_ids: Iterable[str], channels: list[str], role: str) -> list[Recipient]:
    return [Recipient(c, i, role) for i in identity_ids for c in channels]


def _people(session: Session, emails: Iterable[str], channels: list[str], role: str) -> list[Recipient]:
    if not channels:
        return []
    ids = [
        person.id for e in emails if (person := identity_by_email(session, e)) is not None and person.active
    ]
    return _ids(ids, channels, role)


def _destinations(spec: NotifySpec, configured: set[str]) -> list[Recipient]:
    return [
        Recipient(d.split(":", 1)[0], d, "channel")
        for d in spec.destinations
        if d.split(":", 1)[0] in configured
    ]


def _every_approver(session: Session, request: object, flow: FlowSpec | None, now: datetime) -> list[str]:
    policy = flow.approval_policy if flow is not None else None
    if policy is None:
        return []
    state = RequestApproval(flow.name, policy, request_context(session, request, now), len(policy.tiers()))  # type: ignore[arg-type,union-attr]
    return emails_of_tiers(session, state, policy.tiers(), now)


def _owner_ids(session: Session, resource_ids: list[str]) -> list[str]:
    """The identities that own these resources: owners named by email, and members of owner groups."""
    names = {name for owners in owners_of_resources(session, resource_ids).values() for name in owners}
    emails = [n for n in names if "@" in n]
    groups = [n for n in names if "@" not in n]
    ids = [p.id for e in sorted(emails) if (p := identity_by_email(session, e)) is not None and p.active]
    if groups:
        ids += session.scalars(
            select(Identity.id)
            .join(GroupMember, GroupMember.identity_id == Identity.id)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.name.in_(sorted(groups)), Identity.active.is_(True))
            .order_by(Identity.id)
        ).all()
    return list(dict.fromkeys(ids))


def _heard_before(session: Session, request_id: str, configured: set[str]) -> list[Recipient]:
    """Everyone (person or destination) who got a notification about the request before."""
    rows = session.execute(
        select(Notification.channel, Notification.recipient, Notification.role)
        .where(Notification.request_id == request_id, Notification.channel.in_(sorted(configured)))
        .order_by(Notification.created_at, Notification.id)
    ).all()
    return [Recipient(channel, recipient, role) for channel, recipient, role in rows]


def _heard_of_topic(session: Session, request_id: str, topic: str) -> set[tuple[str, str]]:
    session.flush()  # notifications added earlier in this fan-out count too
    rows = session.execute(
        select(Notification.recipient, Notification.channel).where(
            Notification.request_id == request_id, Notification.topic == topic
        )
    ).all()
    return {(recipient, channel) for recipient, channel in rows}
