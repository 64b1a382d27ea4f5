"""Escalation notifications: when a tier opens because nobody acted, the worker delivers a
`request.escalated` webhook naming the people now asked, resolved as they are now (group members,
users, whoever is on call), so that a chat bot or pager can reach them."""

from __future__ import annotations

from sluice.services.requests.decisions import approve_request
from sluice.store.db import transaction
from tests.people.conftest import People, email
from tests.webhook_receiver import SIGNING_KEY, Receiver, add_webhook


def escalating_flow(people: People) -> None:
    people.schedule(
        {
            "name": "dba-oncall",
            "members": [email("erin"), email("dave")],
            "rotation": "1d",
            "handoff": "09:00",
            "timezone": "UTC",
            "start": "2026-01-05",
        }
    )
    people.flow(
        {
            "name": "oncall",
            "requesters": [{"group": "engineering"}],
            "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
            "max_duration": "8h",
            "pending_timeout": "4h",
            "approval": {
                "groups": [{"approvers": [{"manager": True}]}],
                "escalation": [
                    {
                        "after": "30m",
                        "groups": [
                            {"approvers": [{"group": "security"}, {"user": email("dave")}], "count": 2}
                        ],
                    },
                    # gina owns the integration but was asked already; erin is on call now
                    {
                        "after": "30m",
                        "groups": [{"approvers": [{"shift": "dba-oncall"}, {"resource_owner": True}]}],
                    },
                ],
            },
        }
    )


def test_each_escalation_is_delivered_with_the_people_now_asked(people: People, receiver: Receiver) -> None:
    add_webhook(people.factory, "chat", receiver.url(), topics=["request.escalated"])
    escalating_flow(people)
    request_id = people.submit("alice")
    worker = people.worker()
    worker.run_once()
    assert receiver.received == []  # nobody is late yet; the first tier is asked by request.created

    people.clock.advance(minutes=31)
    worker.run_once()
    with transaction(people.factory) as session:  # one of the two the tier needs has decided
        approve_request(
            session,
            request_id=request_id,
            approver=people.identity(session, "dave"),
            reason="ok",
            now=people.clock(),
        )
    people.clock.advance(minutes=30)
    worker.run_once()

    first, second = receiver.at("/hook")
    for received in (first, second):
        assert received.event == "request.escalated" and received.signed_with(SIGNING_KEY)
        assert received.data["subject"] == {"type": "request", "id": request_id}
        assert received.data["details"]["requester"] == email("alice")
    assert first.data["details"]["approvers"] == [email("dave"), email("frank"), email("gina")]
    assert "group security" in first.data["reason"]
    # Only who is new: erin (on call); gina, the owner, was asked before; dave has decided.
    assert second.data["details"]["approvers"] == [email("erin")]
    assert "on call for dba-oncall" in second.data["reason"]
    assert people.status(request_id) == "pending"


def test_tiers_that_open_together_are_one_notification(people: People, receiver: Receiver) -> None:
    add_webhook(people.factory, "chat", receiver.url(), topics=["request.escalated"])
    escalating_flow(people)
    people.submit("alice")
    worker = people.worker()
    people.clock.advance(minutes=61)  # the worker was down while both tiers opened
    worker.run_once()
    (received,) = receiver.at("/hook")
    assert received.data["details"]["approvers"] == [email(s) for s in ("dave", "erin", "frank", "gina")]
