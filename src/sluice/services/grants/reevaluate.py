"""Continuous re-evaluation: when the directory, a flow, a tag or a shift changes, what people hold and
what they asked for follow.

* An inactive identity loses every grant it holds and its pending requests are cancelled.
* A self-serve grant that no flow would allow any more is revoked, saying why
  (`no longer eligible: not in group sre`).
* A pending request no flow would allow any more is cancelled; the others stay, and their approvers
  are recomputed whenever someone looks (approver rights are always evaluated now).

Every change path (config apply, the directory API, an IdP sync) queues a `PeopleChange`; the worker
drains the queue through `reevaluate`. Nothing here commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from sluice.domain.flows import FlowSpec
from sluice.domain.people import Person, holds, miss
from sluice.domain.policy import RequesterIndex, ResourceRef, covers, evaluate, is_self_serve
from sluice.domain.states import RequestStatus
from sluice.events.audit import Action
from sluice.services.grants.endings import end_grants
from sluice.services.requests.decisions import close_pending
from sluice.services.requests.policy import load_flows
from sluice.services.targeting.tags import resource_refs
from sluice.store.grant_states import grant_is_open
from sluice.store.locks import lock_grants
from sluice.store.people_queries import people_snapshot
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import AccessRequest, Grant, Resource


@dataclass
class Outcome:
    revoked: list[str] = field(default_factory=list)  # grant ids
    cancelled: list[str] = field(default_factory=list)  # request ids
    kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"revoked": len(self.revoked), "cancelled": len(self.cancelled), "kept": self.kept}


def drain_people_changes(session: Session, *, limit: int = 10_000) -> tuple[bool, set[str]] | None:
    """Take queued changes: (everyone?, identity ids), or None when nothing is queued."""
    rows = session.execute(
        select(PeopleChange.id, PeopleChange.identity_id).order_by(PeopleChange.id).limit(limit)
    ).all()
    if not rows:
        return None
    session.execute(delete(PeopleChange).where(PeopleChange.id.in_([r.id for r in rows])))
    everyone = any(r.identity_id is None for r in rows)
    return everyone, {r.identity_id for r in rows if r.identity_id is not None}


def _why_not(flow: FlowSpec | None, person: Person, ref: ResourceRef, permission: str) -> str:
    """The reason a grant's own flow no longer allows it, in a person's words."""
    if flow is None:
        return "its access flow was removed"
    if not flow.active:
        return f"flow {flow.name} is switched off"
    if person.active and not any(holds(s, person) for s in flow.requesters):
        misses = [miss(s, person) for s in flow.requesters]
        return misses[0] if len(misses) == 1 else "none of: " + "; ".join(misses)
    return evaluate(flow, person, ref, permission).reason


class _Requestable:
    """The self-serve flows each requester may request under now, worked out once per person."""

    def __init__(self, flows: list[FlowSpec]) -> None:
        self._index = RequesterIndex([f for f in flows if is_self_serve(f)])
        self._of: dict[str, tuple[set[str], list[FlowSpec]]] = {}

    def of(self, identity_id: str, person: Person) -> tuple[set[str], list[FlowSpec]]:
        """(their names, the flows)."""
        if identity_id not in self._of:
            flows = self._index.naming(person)
            self._of[identity_id] = ({f.name for f in flows}, flows)
        return self._of[identity_id]


def _covers(flow: FlowSpec, ref: ResourceRef, permission: str) -> bool:
    return any(covers(t, ref, permission) for t in flow.targets)


def reevaluate(
    session: Session,
    *,
    now: datetime,
    identity_ids: Iterable[str] | None,
    flows: list[FlowSpec] | None = None,
) -> Outcome:
    """Re-check live self-serve grants and pending requests of these identities (None: everyone)."""
    outcome = Outcome()
    flows = load_flows(session) if flows is None else flows
    by_name = {f.name: f for f in flows}
    people = people_snapshot(session, now, identity_ids)
    query = (
        select(Grant)
        .where(Grant.request_id.is_not(None), grant_is_open())
        .options(selectinload(Grant.request), selectinload(Grant.identity))
        .order_by(Grant.id)
    )
    pending_query = (
        select(AccessRequest)
        .where(AccessRequest.status == RequestStatus.PENDING)
        .with_for_update(skip_locked=True)  # one being decided right now is re-checked next pass
    )
    if identity_ids is not None:
        ids = sorted(people)
        query = query.where(Grant.identity_id.in_(ids))
        pending_query = pending_query.where(AccessRequest.requester_id.in_(ids))
    grants = list(session.scalars(query))
    resources = {
        r.id: r
        for r in session.scalars(
            select(Resource).where(Resource.id.in_({g.resource_id for g in grants if g.resource_id}))
        )
    }
    refs = dict(zip(resources, resource_refs(session, list(resources.values())), strict=True))

    cancelled_requests = _cancel_pending(session, pending_query, people, by_name, flows, refs, now, outcome)
    to_end: dict[str, list[Grant]] = defaultdict(list)
    requestable = _Requestable(flows)
    for grant in grants:
        request = grant.request
        if request is None or request.id in cancelled_requests or request.status == RequestStatus.PENDING:
            continue
        grantee = people.get(grant.identity_id)
        requester = people.get(request.requester_id) or people_snapshot(
            session, now, [request.requester_id]
        ).get(request.requester_id)
        if grantee is None or requester is None:
            continue
        if not grantee.active:
            to_end[f"{grantee.email} is no longer active"].append(grant)
            continue
        ref = refs.get(grant.resource_id or "")
        if ref is None:
            continue  # the resource is gone; the grant ends at its end time
        own = by_name.get(request.flow_name)
        names, usable = requestable.of(request.requester_id, requester)
        if own is not None and own.name in names and _covers(own, ref, grant.permission):
            outcome.kept += 1
            continue
        if any(_covers(f, ref, grant.permission) for f in usable):
            outcome.kept += 1
            continue
        to_end["no longer eligible: " + _why_not(own, requester, ref, grant.permission)].append(grant)
    # Read without locks (most grants stay); the ones to end are locked and re-read first, so one that
    # a worker, an admin or another pass ended meanwhile is not ended (and audited) a second time.
    lock_grants(session, (g for ending in to_end.values() for g in ending))
    for reason, ending in to_end.items():
        ended = end_grants(
            session, ending, now=now, actor="sluice", action=Action.GRANT_NO_LONGER_ELIGIBLE, reason=reason
        )
        outcome.revoked += [g.id for g in ended]
    return outcome


def _cancel_pending(
    session: Session,
    query: object,
    people: dict[str, Person],
    by_name: dict[str, FlowSpec],
    flows: list[FlowSpec],
    refs: dict[str, ResourceRef],
    now: datetime,
    outcome: Outcome,
) -> set[str]:
    cancelled: set[str] = set()
    for request in session.scalars(query).all():  # type: ignore[call-overload]
        person = people.get(request.requester_id)
        if person is None:
            continue
        reason = None
        if not person.active:
            reason = f"{person.email} is no longer active"
        else:
            flow = by_name.get(request.flow_name)
            for grant in request.grants:
                ref = refs.get(grant.resource_id or "")
                if ref is None:
                    continue
                if flow is None or not evaluate(flow, person, ref, grant.permission).allowed:
                    reason = "no longer eligible: " + _why_not(flow, person, ref, grant.permission)
                    break
        if reason is None:
            continue
        if not close_pending(
            session,
            request,
            status=RequestStatus.CANCELLED,
            now=now,
            reason=reason,
            action=Action.REQUEST_CANCELLED,
            grants_reason=reason,
        ):
            continue
        cancelled.add(request.id)
        outcome.cancelled.append(request.id)
    return cancelled


def deactivate_grants_of(session: Session, *, identity_id: str, now: datetime) -> Outcome:
    """Everything an identity holds ends: self-serve and automatic grants, pending requests."""
    outcome = reevaluate(session, now=now, identity_ids=[identity_id])
    automatic = session.scalars(
        select(Grant)
        .where(
            Grant.identity_id == identity_id,
            Grant.request_id.is_(None),
            grant_is_open(),
        )
        .order_by(Grant.id)
        .with_for_update()
    ).all()
    ended = end_grants(
        session,
        automatic,
        now=now,
        actor="sluice",
        action=Action.GRANT_NO_LONGER_ELIGIBLE,
        reason="the identity is no longer active",
    )
    outcome.revoked += [g.id for g in ended]
    return outcome
