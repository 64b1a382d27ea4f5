"""Who a config change can touch, so the access diff computes `requestable` for them alone.

What a person may request depends on their directory entry (the `Person` the evaluator reads) and on
the flows whose requester conditions they match; resources, tags and integrations are the same for
everyone. So a change that only touches the directory and the flows (with the bundles and scopes they
resolve) reaches the people whose `Person` changes, and the people a changed flow names as requesters
before or after. Any other change (an integration, say) may reach anyone: then everyone is affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.flows import FlowSpec
from sluice.domain.people import Person
from sluice.domain.policy import is_requester
from sluice.services.config.plan import Plan
from sluice.services.requests.policy import load_flows
from sluice.store.grant_states import grant_is_open
from sluice.store.people_queries import people_snapshot
from sluice.store.tables import AccessRequest, Grant

# Kinds whose effect on access shows in the directory snapshot or in the resolved flows; a webhook
# has none. A change of any other kind makes everyone affected.
NARROW_KINDS = frozenset(
    {"identity", "group", "membership", "schedule", "flow", "bundle", "scope", "webhook"}
)


@dataclass(frozen=True)
class PolicyState:
    """The directory and the flows as they stand at one moment of the plan."""

    people: dict[str, Person]  # identity id -> person
    flows: dict[str, FlowSpec]  # flow name -> resolved flow

    @classmethod
    def read(cls, session: Session, now: datetime) -> PolicyState:
        return cls(people_snapshot(session, now), {f.name: f for f in load_flows(session)})


def changed_flows(before: PolicyState, after: PolicyState) -> list[str]:
    """Names of the flows created, removed or changed (compared resolved, so a bundle edit counts)."""
    names = set(before.flows) | set(after.flows)
    return sorted(
        n
        for n in names
        if n not in before.flows
        or n not in after.flows
        or before.flows[n].model_dump(mode="json") != after.flows[n].model_dump(mode="json")
    )


def affected_people(plan: Plan, before: PolicyState, after: PolicyState) -> set[str] | None:
    """Identity ids whose requestable set may differ after the change; None when it may be anyone's."""
    entries = plan.created + plan.changed + plan.removed
    if any(entry.kind not in NARROW_KINDS for entry in entries):
        return None
    affected = {
        identity_id
        for identity_id in set(before.people) | set(after.people)
        if before.people.get(identity_id) != after.people.get(identity_id)
    }
    for name in changed_flows(before, after):
        for state in (before, after):
            flow = state.flows.get(name)
            if flow is not None:
                affected |= {i for i, person in state.people.items() if is_requester(flow, person)}
    return affected


def holders_through(session: Session, requester_ids: set[str]) -> set[str]:
    """The grantees of open grants that these people requested (a request may be for someone else),
    so re-evaluation sees every grant whose requester's rights may have changed."""
    if not requester_ids:
        return set()
    rows = session.scalars(
        select(Grant.identity_id)
        .join(AccessRequest, AccessRequest.id == Grant.request_id)
        .where(grant_is_open(), AccessRequest.requester_id.in_(sorted(requester_ids)))
        .distinct()
    )
    return set(rows)
