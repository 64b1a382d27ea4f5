"""What a request's approvers are measured against (`ApprovalContext`): its requester as they are now,
the emails of its grantees, the owners of its resources and of their integrations. Read for many
requests at once in a few queries, so that listing what waits for an approver does not cost a few
queries per request; one request is a list of one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.approval import ApprovalContext
from sluice.domain.people import Person
from sluice.services.requests.approver_people import chunks
from sluice.store.people_queries import integration_owners_of, owners_of_resources, people_snapshot
from sluice.store.queries import person_of
from sluice.store.tables import AccessRequest, Grant, Identity


@dataclass(frozen=True)
class _Owners:
    emails: dict[str, str]  # identity id -> email
    resources: dict[str, frozenset[str]]
    integrations: dict[str, frozenset[str]]

    @classmethod
    def read(cls, session: Session, identity_ids: Sequence[str], resource_ids: Sequence[str]) -> _Owners:
        emails: dict[str, str] = {}
        for part in chunks(identity_ids):
            rows = session.execute(select(Identity.id, Identity.email).where(Identity.id.in_(part)))
            emails.update({i: e for i, e in rows})
        resources: dict[str, frozenset[str]] = {}
        integrations: dict[str, frozenset[str]] = {}
        for part in chunks(resource_ids):
            resources.update(owners_of_resources(session, part))
            integrations.update(integration_owners_of(session, part))
        return cls(emails, resources, integrations)

    def context(
        self, requester: Person, requester_id: str, grantee_ids: Sequence[str], resource_ids: Sequence[str]
    ) -> ApprovalContext:
        grantees = {requester.email.lower()} if requester_id in grantee_ids else set()
        grantees |= {self.emails[i].lower() for i in grantee_ids if i != requester_id and i in self.emails}
        return ApprovalContext(
            requester=requester,
            grantees=frozenset(grantees),
            resource_owners=tuple(self.resources.get(r, frozenset()) for r in resource_ids),
            integration_owners=tuple(self.integrations.get(r, frozenset()) for r in resource_ids),
        )


def approval_context(
    session: Session,
    *,
    requester: Identity,
    grantee_ids: Sequence[str],
    resource_ids: Sequence[str],
    now: datetime,
) -> ApprovalContext:
    """What approvers are measured against for a request (made, or about to be made) by `requester`
    for the identities `grantee_ids` on `resource_ids`."""
    owners = _Owners.read(session, sorted(set(grantee_ids) - {requester.id}), resource_ids)
    return owners.context(person_of(session, requester, now), requester.id, grantee_ids, resource_ids)


def request_contexts(
    session: Session, requests: Sequence[AccessRequest], now: datetime
) -> dict[str, ApprovalContext]:
    """Request id -> its approval context, for all of `requests` in a few queries."""
    grantees: dict[str, set[str]] = defaultdict(set)
    resources: dict[str, list[str]] = defaultdict(list)
    for part in chunks(r.id for r in requests):
        rows = session.execute(
            select(Grant.request_id, Grant.identity_id, Grant.resource_id)
            .where(Grant.request_id.in_(part))
            .order_by(Grant.id)
        )
        for request_id, identity_id, resource_id in rows:
            grantees[str(request_id)].add(identity_id)
            if resource_id:
                resources[str(request_id)].append(resource_id)
    requesters: dict[str, Person] = {}
    for part in chunks(r.requester_id for r in requests):
        requesters.update(people_snapshot(session, now, part))
    owners = _Owners.read(
        session,
        [i for ids in grantees.values() for i in ids],
        [r for ids in resources.values() for r in ids],
    )
    return {
        r.id: owners.context(
            requesters.get(r.requester_id) or person_of(session, r.requester, now),
            r.requester_id,
            sorted(grantees[r.id]),
            resources[r.id],
        )
        for r in requests
    }


def request_context(session: Session, request: AccessRequest, now: datetime) -> ApprovalContext:
    return request_contexts(session, [request], now)[request.id]
