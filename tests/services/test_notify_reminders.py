"""Reminders and escalation reach people: a request left pending reminds the approvers who can still
decide after `notify.remind_after` (and every `remind_every`), and an escalation tier that opens
notifies the people of that tier, not those asked before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from sluice.domain.flows import FlowSpec
from sluice.services.notify.delivery import NotificationDuty
from sluice.services.requests.escalation import Escalation
from sluice.services.requests.reminders import Reminders
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow, AuditEvent
from tests.recording_channel import RecordingChannel
from tests.services.conftest import Store
from tests.services.test_notifications import approve, ask


def change_flow(store: Store, **changes: Any) -> None:
    with transaction(store.factory) as session:
        row = session.scalars(select(AccessFlow).where(AccessFlow.name == "oncall-by-manager")).one()
        spec = {**row.spec, **changes}
        row.spec = FlowSpec.model_validate(spec).model_dump(mode="json")


def test_a_waiting_request_reminds_its_approvers_after_the_set_time_and_again(store: Store) -> None:
    change_flow(store, pending_timeout="24h", notify={"remind_after": "4h", "remind_every": "4h"})
    email = RecordingChannel("email")
    duty = NotificationDuty(store.factory, clock=store.clock, channels={"email": email})
    reminders = Reminders(store.factory, clock=store.clock)
    start = store.clock()
    request_id = ask(store)
    duty.run()
    store.clock.advance(hours=3)
    assert reminders.run() == []
    with transaction(store.factory) as session:
        assert reminders.next_due(session, store.clock()) == start + timedelta(hours=4)
    store.clock.advance(hours=1)
    assert reminders.run() == [request_id]
    assert reminders.run() == []  # once per span
    duty.run()
    assert email.heard("request.reminder") == [("request.reminder", "approver", "carol@example.com")]
    reminder = email.notices[-1]
    assert (
        reminder.subject.state == "pending"
        and reminder.reason
        and "waiting for a decision since" in reminder.reason
    )
    with transaction(store.factory) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "request.reminder")).one()
        assert event.details["approvers"] == ["carol@example.com"] and event.subject_id == request_id
        assert reminders.next_due(session, store.clock()) == start + timedelta(hours=8)
    store.clock.advance(hours=4)
    assert reminders.run() == [request_id]
    approve(store, request_id)
    store.clock.advance(hours=4)
    assert reminders.run() == []
    with transaction(store.factory) as session:
        assert reminders.next_due(session, store.clock()) is None


def test_without_remind_every_there_is_one_reminder_and_without_remind_after_none(store: Store) -> None:
    reminders = Reminders(store.factory, clock=store.clock)
    ask(store)
    store.clock.advance(minutes=50)
    assert reminders.run() == []
    with transaction(store.factory) as session:
        assert reminders.next_due(session, store.clock()) is None
    change_flow(store, notify={"remind_after": "30m"})
    assert len(reminders.run()) == 1
    store.clock.advance(minutes=5)
    assert reminders.run() == []
    with transaction(store.factory) as session:
        assert reminders.next_due(session, store.clock()) is None


def test_an_escalation_notifies_the_tier_that_opened_and_not_those_asked_before(store: Store) -> None:
    change_flow(
        store,
        approvers=[],
        pending_timeout="24h",
        approval={
            "groups": [{"approvers": [{"user": "carol@example.com"}]}],
            "escalation": [{"after": "1h", "groups": [{"approvers": [{"user": "bob@example.com"}]}]}],
        },
    )
    slack = RecordingChannel("slack")
    duty = NotificationDuty(store.factory, clock=store.clock, channels={"slack": slack})
    escalation = Escalation(store.factory, clock=store.clock)
    ask(store)
    duty.run()
    assert slack.heard() == [("request.created", "approver", "carol@example.com")]
    store.clock.advance(minutes=61)
    assert len(escalation.run()) == 1
    duty.run()
    assert slack.heard("request.escalated") == [("request.escalated", "approver", "bob@example.com")]
