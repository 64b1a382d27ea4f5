"""The notification core: events become notices to the right people on the configured channels,
once per (event, recipient, channel), retried with backoff, given up after a bound, and a failing or
hanging channel delays neither grants nor the other channels."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from sluice.domain.flows import FlowSpec
from sluice.services.config.file import ConfigError, parse_config
from sluice.services.notify.channels import ChannelError
from sluice.services.notify.delivery import NotificationDuty
from sluice.services.notify.sending import NotifyPolicy
from sluice.services.requests.decisions import approve_request, reject_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow, Grant, Notification, OutboxMessage
from tests.recording_channel import RecordingChannel
from tests.services.config_samples import GOOD, edit, line_of
from tests.services.conftest import Store

POLICY = NotifyPolicy(backoff_base=timedelta(seconds=10), backoff_cap=timedelta(minutes=1), max_attempts=3)
PORTAL = "https://sluice.example.com"


def make_duty(store: Store, *channels: RecordingChannel) -> NotificationDuty:
    duty = NotificationDuty(
        store.factory,
        clock=store.clock,
        channels={c.name: c for c in channels},
        public_url=PORTAL,
        policy=POLICY,
    )
    duty.fan_out(store.clock())  # the seed's own events are not what these tests are about
    with transaction(store.factory) as session:
        session.execute(update(Notification).values(next_attempt_at=None))
    return duty


def ask(store: Store, reason: str = "incident 7", resource: str = "groups/oncall") -> str:
    with transaction(store.factory) as session:
        request = submit_request(
            session,
            hub=store.hub,
            requester=store.identity(session, "alice@example.com"),
            units=[UnitAsked(resource, "member")],
            duration=timedelta(minutes=30),
            reason=reason,
            now=store.clock(),
        )
        return request.id


def approve(store: Store, request_id: str) -> None:
    with transaction(store.factory) as session:
        approve_request(
            session,
            request_id=request_id,
            approver=store.identity(session, "carol@example.com"),
            reason="ok",
            now=store.clock(),
        )


def set_notify(store: Store, notify: dict[str, Any]) -> None:
    with transaction(store.factory) as session:
        row = session.scalars(select(AccessFlow).where(AccessFlow.name == "oncall-by-manager")).one()
        spec = FlowSpec.model_validate({**row.spec, "notify": notify})
        row.spec = spec.model_dump(mode="json")


def notifications(store: Store) -> list[Notification]:
    with transaction(store.factory) as session:
        return list(session.scalars(select(Notification).order_by(Notification.created_at, Notification.id)))


def test_a_new_request_tells_its_approvers_and_its_decision_tells_the_requester_and_updates_them(
    store: Store,
) -> None:
    email, slack = RecordingChannel("email"), RecordingChannel("slack")
    duty = make_duty(store, email, slack)
    request_id = ask(store, reason="incident <7>")
    assert duty.run() == 2
    for channel in (email, slack):
        assert channel.heard() == [("request.created", "approver", "carol@example.com")]
    (created,) = email.notices
    subject = created.subject
    assert (subject.request_id, subject.requester_email, subject.requester_name) == (
        request_id,
        "alice@example.com",
        "Alice",
    )
    assert (subject.resources, subject.resource_count, subject.permission) == (["groups/oncall"], 1, "member")
    assert (subject.duration, subject.reason, subject.flow, subject.state) == (
        "30m",
        "incident <7>",
        "oncall-by-manager",
        "pending",
    )
    assert subject.portal_url == f"{PORTAL}/requests/{request_id}"
    assert created.earlier == [] and created.channel == "email" and created.recipient_identity_id

    approve(store, request_id)
    duty.run()
    approved = [n for n in email.notices if n.topic == "request.approved"]
    assert sorted((n.role, n.recipient_email) for n in approved) == [
        ("approver", "carol@example.com"),
        ("requester", "alice@example.com"),
    ]
    to_carol = next(n for n in approved if n.role == "approver")
    assert to_carol.earlier == ["email-ref-0"]  # what carol was sent first, so a channel can update it
    assert to_carol.subject.decided_by == "Carol" and to_carol.subject.decision_reason == "ok"
    assert len({n.notification_id for n in email.notices}) == len(email.notices)

    with transaction(store.factory) as session:
        grant_id = session.scalars(select(Grant.id).where(Grant.request_id == request_id)).one()
    store.worker().run_once()  # the grant becomes active
    duty.run()
    assert email.heard("grant.activated") == [("grant.activated", "requester", "alice@example.com")]
    assert email.notices[-1].subject.grant_id == grant_id
    assert email.notices[-1].subject.state == "active"


def test_fan_out_is_idempotent_per_event_recipient_and_channel(store: Store) -> None:
    email = RecordingChannel("email")
    duty = make_duty(store, email)
    ask(store)
    duty.fan_out(store.clock())
    first = [
        (n.outbox_id, n.recipient, n.channel) for n in notifications(store) if n.topic == "request.created"
    ]
    with transaction(store.factory) as session:  # as if a worker died after fanning out, before its commit
        session.execute(update(OutboxMessage).values(notified_at=None))
    duty.fan_out(store.clock())
    again = [
        (n.outbox_id, n.recipient, n.channel) for n in notifications(store) if n.topic == "request.created"
    ]
    assert again == first and len(first) == 1
    duty.run()
    assert len(email.notices) == 1


def test_a_flow_chooses_who_hears_on_which_channel_and_its_destinations(store: Store) -> None:
    email, slack, teams = RecordingChannel("email"), RecordingChannel("slack"), RecordingChannel("teams")
    duty = make_duty(store, email, slack, teams)
    set_notify(
        store, {"approvers": ["slack"], "requester": [], "destinations": ["teams:db-team", "slack:#db"]}
    )
    request_id = ask(store)
    duty.run()
    assert email.heard() == []
    assert sorted(slack.heard()) == [
        ("request.created", "approver", "carol@example.com"),
        ("request.created", "channel", "#db"),
    ]
    assert teams.heard() == [("request.created", "channel", "db-team")]
    with transaction(store.factory) as session:
        reject_request(
            session,
            request_id=request_id,
            approver=store.identity(session, "carol@example.com"),
            reason="not now",
            now=store.clock(),
        )
    duty.run()
    assert email.heard() == []  # the requester asked for no messages in this flow
    assert teams.heard("request.rejected") == [("request.rejected", "channel", "db-team")]
    (rejected,) = teams.notices[1:]
    assert rejected.earlier == ["teams-ref-0"] and rejected.subject.state == "rejected"
    assert sorted(slack.heard("request.rejected")) == [
        ("request.rejected", "approver", "carol@example.com"),
        ("request.rejected", "channel", "#db"),
    ]


def test_a_channel_that_is_not_configured_gets_nothing(store: Store) -> None:
    email = RecordingChannel("email")
    duty = make_duty(store, email)
    set_notify(store, {"destinations": ["teams:db-team"]})
    ask(store)
    duty.run()
    assert {n.channel for n in notifications(store)} == {"email"}


def test_a_failing_channel_is_retried_with_backoff_rests_and_gives_up_after_the_bound(store: Store) -> None:
    email, slack = RecordingChannel("email"), RecordingChannel("slack")
    email.always_fail = ChannelError("SMTP 451 try later")
    duty = make_duty(store, email, slack)
    sent_before = _metric("sluice_notifications_total", channel="slack", outcome="sent")
    ask(store)
    ask(store, reason="second", resource="groups/dba")
    duty.run()
    assert email.calls == 1  # after one failure the channel rests: the second notice waits
    assert len(slack.notices) == 2  # and the other channel is not held up
    assert _metric("sluice_notifications_total", channel="slack", outcome="sent") == sent_before + 2
    rows = [n for n in notifications(store) if n.channel == "email" and n.topic == "request.created"]
    failed = next(n for n in rows if n.attempts == 1)
    assert failed.last_error == "SMTP 451 try later"
    assert failed.next_attempt_at is not None and failed.next_attempt_at > store.clock()
    with transaction(store.factory) as session:
        assert duty.next_due(session, store.clock()) == min(n.next_attempt_at for n in rows)  # type: ignore[type-var]
    duty.run()
    assert email.calls == 1  # resting: nothing tried before the backoff
    for _ in range(POLICY.max_attempts * 2):
        store.clock.advance(minutes=2)
        duty.run()
    rows = [n for n in notifications(store) if n.channel == "email" and n.topic == "request.created"]
    assert all(n.gave_up_at is not None and n.next_attempt_at is None for n in rows)
    assert sum(n.attempts for n in rows) == POLICY.max_attempts  # one try per rest, not one per notice
    assert email.calls == POLICY.max_attempts
    assert any("failed 3 times in a row" in (n.last_error or "") for n in rows)
    assert _metric("sluice_notifications_total", channel="email", outcome="gave_up") >= 2
    with transaction(store.factory) as session:
        assert duty.next_due(session, store.clock()) is None


def test_a_notice_the_channel_can_never_send_is_given_up_at_once_and_the_channel_goes_on(
    store: Store,
) -> None:
    email = RecordingChannel("email", failures=[ChannelError("no such mailbox", retryable=False)])
    duty = make_duty(store, email)
    ask(store)
    ask(store, reason="second", resource="groups/dba")
    assert duty.run() == 1
    rows = [n for n in notifications(store) if n.topic == "request.created"]
    assert sorted((n.attempts, n.gave_up_at is not None, n.delivered_at is not None) for n in rows) == [
        (1, False, True),
        (1, True, False),
    ]


def test_a_hanging_channel_holds_up_neither_the_worker_nor_other_channels(store: Store) -> None:
    hanging, email = RecordingChannel("slack", release=threading.Event()), RecordingChannel("email")
    worker = store.worker(channels={"slack": hanging, "email": email})
    request_id = ask(store)
    approve(store, request_id)
    started = time.monotonic()
    worker.run_once()
    worker.run_once()
    assert time.monotonic() - started < 5  # the slack thread is still blocked in its first send
    with transaction(store.factory) as session:
        grant = session.scalars(select(Grant).where(Grant.request_id == request_id)).one()
        assert grant.actual == "active"
    worker.notifications.wait(timeout=5, channels=["email"])
    assert any(t == "request.approved" for t, _, _ in email.heard())
    assert hanging.release is not None
    hanging.release.set()
    worker.notifications.wait(timeout=10)
    assert hanging.notices


def test_a_bad_notify_block_in_the_config_file_is_reported_at_its_line() -> None:
    text = edit(GOOD, "    max_duration: 8h\n", "    max_duration: 8h\n    notify: {destinations: ['#db']}\n")
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    (problem,) = raised.value.problems
    assert problem.path.startswith("flows[0].notify.destinations")
    assert problem.line == line_of(text, "notify: {")
    assert f"sluice.yaml:{problem.line}:{problem.col}: " in str(raised.value)
    assert "slack:#channel or teams:NAME" in problem.message


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ({"approvers": ["pager"]}, "'pager' is not a channel that reaches a person"),
        ({"destinations": ["#db"]}, "is not a destination: write slack:#channel or teams:NAME"),
        ({"remind_after": "soon"}, "duration"),
        ({"everyone": True}, "everyone"),
    ],
)
def test_a_bad_notify_block_is_refused(notify: dict[str, Any], message: str) -> None:
    spec = {
        "name": "f",
        "requesters": [{"group": "a"}],
        "targets": [{"integration": "i", "type": "t", "permissions": ["p"]}],
        "notify": notify,
    }
    with pytest.raises(ValueError, match=None) as raised:
        FlowSpec.model_validate(spec)
    assert message in str(raised.value)
