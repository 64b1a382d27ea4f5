"""Separation of duties: nobody approves access for themselves, whoever asked. The grantee of a request
made for someone else is barred like its requester when deciding, in the inbox, in the approvers
shown and in escalation lists; a flow may bar the direct reports of both too; and a request nobody
else may approve is refused when it is made, with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from sluice.domain.errors import NotAllowed
from sluice.domain.flows import FlowSpec
from sluice.services.requests.explain import explain
from sluice.services.requests.reads import RequestScope, list_requests
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent
from tests.people.conftest import People, email
from tests.people.test_approvals import approvers, decide

TARGET = [{"integration": "groups", "type": "group", "permissions": ["member"]}]


def for_others_flow(people: People, approval: dict[str, Any], **extra: Any) -> None:
    """sre members (bob, dave) may ask for dba members (dave, erin, frank)."""
    people.flow(
        {
            "name": "for-dba",
            "requesters": [{"group": "sre"}],
            "grantees": [{"group": "dba"}],
            "targets": TARGET,
            "max_duration": "8h",
            "approval": approval,
            **extra,
        }
    )


def submit_for(people: People, requester: str, grantee: str) -> str:
    with transaction(people.factory) as session:
        target = people.identity(session, grantee)
    return people.submit(requester, grantee=target)


def inbox(people: People, stem: str) -> list[str]:
    with transaction(people.factory) as session:
        page = list_requests(
            session,
            viewer=people.identity(session, stem),
            is_admin=False,
            scope=RequestScope.TO_APPROVE,
            status=None,
            limit=50,
            offset=0,
            now=people.clock(),
        )
        return [r.id for r in page.items]


DBA_APPROVE = {"groups": [{"approvers": [{"group": "dba"}]}]}


def test_the_grantee_of_a_request_for_them_neither_sees_it_to_approve_nor_approves_it(people: People) -> None:
    for_others_flow(people, DBA_APPROVE)
    request_id = submit_for(people, "bob", "erin")
    assert approvers(people, request_id) == [email("dave"), email("frank")]
    assert inbox(people, "erin") == []
    assert inbox(people, "frank") == [request_id]
    with pytest.raises(NotAllowed, match="access for yourself"):
        decide(people, request_id, "erin")
    with pytest.raises(NotAllowed, match="access for yourself"):
        decide(people, request_id, "erin", approve=False, reason="no")
    assert people.status(request_id) == "pending"
    assert decide(people, request_id, "frank") == "approved"


def test_an_approval_the_grantee_gave_earlier_does_not_count(people: People) -> None:
    """Approvals are counted as the flow and the approvers are now: one the grantee gave while the flow
    allowed self-approval stops counting once it no longer does."""
    two_dba: dict[str, Any] = {"groups": [{"approvers": [{"group": "dba"}], "count": 2}]}
    for_others_flow(people, two_dba | {"self_approval": True})
    request_id = submit_for(people, "bob", "erin")
    assert decide(people, request_id, "erin") == "pending"
    for_others_flow(people, two_dba)
    assert decide(people, request_id, "dave") == "pending"
    assert decide(people, request_id, "frank") == "approved"


def test_the_requester_and_the_grantee_are_both_barred_when_both_could_approve(people: People) -> None:
    for_others_flow(people, DBA_APPROVE)
    request_id = submit_for(people, "dave", "erin")  # dave is in sre and in dba
    assert approvers(people, request_id) == [email("frank")]
    with pytest.raises(NotAllowed, match="your own request"):
        decide(people, request_id, "dave")
    with pytest.raises(NotAllowed, match="access for yourself"):
        decide(people, request_id, "erin")


def test_escalation_never_asks_the_grantee(people: People) -> None:
    for_others_flow(
        people,
        {
            "groups": [{"approvers": [{"user": email("olga")}]}],
            "escalation": [{"after": "30m", "groups": [{"approvers": [{"group": "dba"}]}]}],
        },
        pending_timeout="4h",
    )
    request_id = submit_for(people, "bob", "erin")
    people.clock.advance(minutes=31)
    people.worker().run_once()
    with transaction(people.factory) as session:
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "request.escalated")).all()
        assert event.details["approvers"] == [email("dave"), email("frank")]
    assert approvers(people, request_id) == [email("dave"), email("frank"), email("olga")]


def test_a_flow_may_bar_the_direct_reports_of_the_requester_and_the_grantee(people: People) -> None:
    """carol manages alice and bob; with `direct_reports` neither may approve what carol asks."""
    spec: dict[str, Any] = {
        "name": "managers",
        "requesters": [{"group": "managers"}],
        "targets": TARGET,
        "max_duration": "8h",
        "for_direct_reports": True,
        "approval": {"groups": [{"approvers": [{"group": "sre"}, {"group": "engineering"}]}]},
    }
    people.flow(spec)
    lenient = people.submit("carol")
    assert approvers(people, lenient) == [email("alice"), email("bob"), email("dave")]
    spec["approval"]["distinct_from"] = ["requester", "grantee", "direct_reports"]
    people.flow(spec)
    assert approvers(people, lenient) == [email("dave")]
    with pytest.raises(NotAllowed, match=r"reports to carol@example\.com"):
        decide(people, lenient, "bob")
    with transaction(people.factory) as session:
        result = explain(
            session, email=email("carol"), resource="groups/audit", permission="member", now=people.clock()
        )
        assert {f.flow: f.approvers for f in result.flows if f.allowed} == {"managers": [email("dave")]}
    # For a report: the report (alice, the grantee) and carol's other report (bob) are barred.
    with transaction(people.factory) as session:
        alice = people.identity(session, "alice")
    for_alice = people.submit("carol", group="audit", grantee=alice)
    assert approvers(people, for_alice) == [email("dave")]
    assert decide(people, lenient, "dave") == "approved"


def test_a_request_nobody_else_may_approve_is_refused_when_made(people: People) -> None:
    for_others_flow(people, {"groups": [{"approvers": [{"user": email("erin")}, {"user": email("bob")}]}]})
    with pytest.raises(NotAllowed) as refused:
        submit_for(people, "bob", "erin")
    message = str(refused.value)
    assert "nobody may approve this request" in message
    assert "erin@example.com is the grantee" in message
    assert "bob@example.com is the requester" in message
    assert people.grants_of("erin") == []


def test_a_request_nobody_at_all_may_approve_is_refused_the_same_way(people: People) -> None:
    people.flow(
        {
            "name": "nobody",
            "requesters": [{"group": "engineering"}],
            "targets": TARGET,
            "max_duration": "8h",
            "approval": {"groups": [{"approvers": [{"group": "audit"}]}]},  # a group with no member
        }
    )
    with pytest.raises(NotAllowed, match="nobody may approve this request under flow 'nobody'"):
        people.submit("alice")


def test_a_later_tier_with_someone_in_it_is_enough_to_accept_the_request(people: People) -> None:
    for_others_flow(
        people,
        {
            "groups": [{"approvers": [{"user": email("erin")}]}],
            "escalation": [{"after": "30m", "groups": [{"approvers": [{"user": email("gina")}]}]}],
        },
        pending_timeout="4h",
    )
    request_id = submit_for(people, "bob", "erin")
    assert approvers(people, request_id) == []  # nobody until the next tier opens
    people.clock.advance(minutes=31)
    assert approvers(people, request_id) == [email("gina")]
    assert decide(people, request_id, "gina") == "approved"


def _flow(approval: dict[str, Any]) -> FlowSpec:
    return FlowSpec.model_validate(
        {"name": "f", "requesters": [{"group": "g"}], "targets": TARGET, "approval": approval}
    )


def test_distinct_from_is_checked_when_the_flow_is_read() -> None:
    groups = [{"approvers": [{"group": "dba"}]}]
    assert _flow({"groups": groups, "distinct_from": ["direct_reports"]}).approval is not None
    with pytest.raises(ValidationError, match="'requestor' is not one of: requester, grantee, direct_"):
        _flow({"groups": groups, "distinct_from": ["requestor"]})
    with pytest.raises(ValidationError, match="self_approval: true lets the requester and the grantee"):
        _flow({"groups": groups, "self_approval": True, "distinct_from": ["grantee"]})
    with pytest.raises(ValidationError, match="'direct_reports' is named twice"):
        _flow({"groups": groups, "distinct_from": ["direct_reports", "direct_reports"]})


def test_a_misspelt_distinct_from_is_refused_at_its_line_when_the_config_is_loaded() -> None:
    from sluice.services.config.file import ConfigError, parse_config
    from tests.services.config_samples import GOOD, edit, line_of

    text = edit(
        GOOD,
        "    approvers: [{manager: true}]\n",
        "    approval:\n      groups: [{approvers: [{manager: true}]}]\n"
        "      distinct_from: [requester, grantees]\n",
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    (problem,) = raised.value.problems
    assert problem.line == line_of(text, "      distinct_from:")
    assert "'grantees' is not one of: requester, grantee, direct_reports" in problem.message
