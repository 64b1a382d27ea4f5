"""Approval policies end to end on the store: who may approve, how many must, and escalation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from sluice.domain.errors import InvalidInput, NotAllowed
from sluice.domain.states import Actual
from sluice.services.requests.decisions import approve_request, reject_request
from sluice.services.requests.reads import request_approvers
from sluice.store.db import transaction
from sluice.store.tables import AccessRequest, AuditEvent, Resource
from sluice.store.targeting_tables import ResourceTag
from tests.people.conftest import People, email

TARGET = [{"integration": "groups", "type": "group", "permissions": ["member"]}]


def flow(people: People, approval: dict[str, Any] | None = None, **extra: Any) -> None:
    spec: dict[str, Any] = {
        "name": "oncall",
        "requesters": [{"group": "engineering"}, {"group": "sre"}],
        "targets": TARGET,
        "max_duration": "8h",
        **extra,
    }
    if approval is not None:
        spec["approval"] = approval
    people.flow(spec)


def decide(people: People, request_id: str, stem: str, *, approve: bool = True, reason: str = "ok") -> str:
    with transaction(people.factory) as session:
        action = approve_request if approve else reject_request
        request = action(
            session,
            request_id=request_id,
            approver=people.identity(session, stem),
            reason=reason,
            now=people.clock(),
        )
        return request.status


def approvers(people: People, request_id: str) -> list[str]:
    with transaction(people.factory) as session:
        request = session.get(AccessRequest, request_id)
        assert request is not None
        return request_approvers(session, request, people.clock())


def test_the_requesters_manager_approves_and_access_is_granted(people: People) -> None:
    flow(people, {"groups": [{"approvers": [{"manager": True}]}]})
    request_id = people.submit("alice")
    assert approvers(people, request_id) == [email("carol")]
    with pytest.raises(NotAllowed, match="not an approver"):
        decide(people, request_id, "dave")
    assert decide(people, request_id, "carol") == "approved"
    people.worker().run_once()
    assert "oncall" in people.groups_of("alice")


def _tag_owner(people: People, value: str) -> None:
    with transaction(people.factory) as session:
        resource = session.scalar(select(Resource).where(Resource.path == "groups/oncall"))
        assert resource is not None
        session.add(
            ResourceTag(
                resource_id=resource.id, key="owner", value=value, source="api:x", updated_at=people.clock()
            )
        )


def test_the_resource_owner_from_its_owner_tag_approves(people: People) -> None:
    flow(people, {"groups": [{"approvers": [{"resource_owner": True}]}]})
    _tag_owner(people, "owners")  # a group
    request_id = people.submit("alice")
    assert approvers(people, request_id) == [email("olga")]
    with pytest.raises(NotAllowed):
        decide(people, request_id, "gina")  # the integration owner, but the tag names someone else
    assert decide(people, request_id, "olga") == "approved"


def test_without_an_owner_tag_the_integration_owner_approves(people: People) -> None:
    flow(people, {"groups": [{"approvers": [{"resource_owner": True}]}]})
    request_id = people.submit("alice")
    assert approvers(people, request_id) == [email("gina")]
    assert decide(people, request_id, "gina") == "approved"


def test_two_of_three_from_a_group(people: People) -> None:
    flow(people, {"groups": [{"approvers": [{"group": "dba"}], "count": 2}]})
    request_id = people.submit("alice")
    assert approvers(people, request_id) == [email("dave"), email("erin"), email("frank")]
    assert decide(people, request_id, "dave") == "pending"
    assert approvers(people, request_id) == [email("erin"), email("frank")]
    with pytest.raises(Exception, match="already decided"):
        decide(people, request_id, "dave")
    assert decide(people, request_id, "erin") == "approved"


def test_all_of_two_groups(people: People) -> None:
    flow(
        people,
        {
            "mode": "all_of",
            "groups": [{"approvers": [{"group": "dba"}]}, {"approvers": [{"group": "security"}]}],
        },
    )
    request_id = people.submit("alice")
    assert decide(people, request_id, "erin") == "pending"  # dba only
    assert decide(people, request_id, "gina") == "approved"  # and security


def test_a_requester_never_approves_their_own_request(people: People) -> None:
    flow(people, {"groups": [{"approvers": [{"group": "sre"}]}]})
    request_id = people.submit("bob")  # bob is in sre himself
    assert email("bob") not in approvers(people, request_id)
    with pytest.raises(NotAllowed, match="your own request"):
        decide(people, request_id, "bob")
    assert decide(people, request_id, "dave") == "approved"


def test_the_flow_may_require_a_reason_and_any_rejection_rejects(people: People) -> None:
    flow(people, {"groups": [{"approvers": [{"group": "dba"}], "count": 2}], "reason_required": True})
    request_id = people.submit("alice")
    with pytest.raises(InvalidInput, match="needs a reason"):
        decide(people, request_id, "dave", reason=" ")
    assert decide(people, request_id, "dave") == "pending"
    assert decide(people, request_id, "erin", approve=False, reason="not during the freeze") == "rejected"
    assert all(g.actual == Actual.NONE for g in people.grants_of("alice"))


def test_escalation_opens_the_next_tier_after_the_interval(people: People) -> None:
    flow(
        people,
        {
            "groups": [{"approvers": [{"manager": True}]}],
            "escalation": [{"after": "30m", "groups": [{"approvers": [{"group": "security"}]}]}],
        },
        pending_timeout="4h",
    )
    request_id = people.submit("alice")
    with pytest.raises(NotAllowed):
        decide(people, request_id, "gina")
    worker = people.worker()
    worker.run_once()
    # The worker wakes when the next tier opens.
    assert worker.seconds_until_next() <= 30 * 60
    people.clock.advance(minutes=31)
    worker.run_once()
    with transaction(people.factory) as session:
        escalated = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "request.escalated", AuditEvent.subject_id == request_id
            )
        ).all()
        assert len(escalated) == 1 and "security" in (escalated[0].reason or "")
    assert approvers(people, request_id) == [email("carol"), email("frank"), email("gina")]
    assert decide(people, request_id, "gina") == "approved"


def test_without_an_approval_policy_a_flow_approves_automatically_and_the_choice_is_explained(
    people: People,
) -> None:
    flow(people, {"groups": [{"approvers": [{"manager": True}]}]})
    people.flow(
        {
            "name": "oncall-short",
            "requesters": [{"group": "engineering"}],
            "targets": TARGET,
            "max_duration": "1h",
        }
    )
    request_id = people.submit("alice")
    assert people.status(request_id) == "approved"
    with transaction(people.factory) as session:
        event = session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "request.created", AuditEvent.subject_id == request_id
            )
        )
        assert event is not None
        assert event.details["flow"] == "oncall-short"
        assert "needs no approval" in event.details["choice"]
    # Naming the flow picks it, whatever it needs.
    other = people.submit("alice", group="audit", flow_name="oncall")
    assert people.status(other) == "pending"
