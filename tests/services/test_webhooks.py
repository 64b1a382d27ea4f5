"""Webhook delivery from the outbox to a real HTTP receiver: signed, filtered by topic, retried with
backoff, a dead receiver resting instead of slowing every pass, and given up after a bound."""

from __future__ import annotations

import base64
import logging
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from sluice.events.audit import Action, record
from sluice.services.audit.webhook_delivery import DeliveryPolicy, WebhookDuty
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Grant, OutboxMessage, Webhook, WebhookDelivery
from tests.event_payloads import REQUEST_CREATED_DETAILS
from tests.services.conftest import Store, approved_oncall_request
from tests.webhook_receiver import SIGNING_KEY, Receiver, add_webhook, running_receiver

POLICY = DeliveryPolicy(
    timeout_seconds=2,
    backoff_base=timedelta(seconds=10),
    backoff_cap=timedelta(minutes=1),
    max_attempts=3,
)


@pytest.fixture
def duty(store: Store) -> WebhookDuty:
    made = WebhookDuty(store.factory, clock=store.clock, policy=POLICY)
    made.fan_out(store.clock())  # what was written before any webhook existed is not sent
    return made


def emit(store: Store, subject: str = "req_1") -> None:
    with transaction(store.factory) as session:
        record(
            session,
            now=store.clock(),
            actor="sluice",
            action=Action.REQUEST_CREATED,
            subject_type="request",
            subject_id=subject,
            **REQUEST_CREATED_DETAILS,
        )


def deliveries(store: Store) -> list[WebhookDelivery]:
    with transaction(store.factory) as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def webhook(store: Store, name: str) -> Webhook:
    with transaction(store.factory) as session:
        return session.scalars(select(Webhook).where(Webhook.name == name)).one()


def request_of(store: Store, grant_id: str) -> str:
    with transaction(store.factory) as session:
        return session.get(Grant, grant_id).request_id  # type: ignore[union-attr,return-value]


def test_the_worker_delivers_events_signed_and_only_where_topics_match(
    store: Store, duty: WebhookDuty, receiver: Receiver
) -> None:
    add_webhook(store.factory, "everything", receiver.url("/all"))
    add_webhook(store.factory, "grants", receiver.url("/grants"), topics=["grant.*"])
    request_id = request_of(store, approved_oncall_request(store))
    worker = store.worker()
    worker.run_once()  # delivers what the request wrote, then makes the grant
    worker.run_once()  # delivers what granting wrote

    everything = receiver.at("/all")
    assert [r.event for r in everything][:3] == ["request.created", "request.approved", "grant.activated"]
    assert receiver.events("/grants") == ["grant.activated"]
    for received in everything + receiver.at("/grants"):
        assert received.rejected is None  # standardwebhooks accepted it as it arrived
        assert received.signed_with(SIGNING_KEY)
        assert not received.signed_with("whsec_" + base64.b64encode(b"another key of 24 bytes!").decode())
        assert received.headers["Content-Type"] == "application/json"
        assert received.delivery_id.startswith("whd_")
        assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60  # the real send time
        assert received.headers["webhook-signature"].startswith("v1,")
        assert set(received.json) == {"type", "timestamp", "data"}
        assert datetime.fromisoformat(received.json["timestamp"]).tzinfo is not None
    assert len({r.delivery_id for r in everything}) == len(everything)
    created = everything[0].data
    assert created["subject"] == {"type": "request", "id": request_id}
    with transaction(store.factory) as session:
        event = session.get(AuditEvent, created["event_id"])
        assert event is not None and event.action == "request.created"
        assert session.scalar(select(OutboxMessage.id).where(OutboxMessage.delivered_at.is_(None))) is None
    assert all(d.delivered_at is not None and d.next_attempt_at is None for d in deliveries(store))


def test_a_failed_delivery_is_retried_after_its_backoff_and_the_webhook_rests_meanwhile(
    store: Store, duty: WebhookDuty, receiver: Receiver
) -> None:
    add_webhook(store.factory, "flaky", receiver.url())
    receiver.statuses[:] = [500]
    emit(store, "req_1")
    assert duty.run() == 0
    (failed,) = deliveries(store)
    assert (failed.attempts, failed.last_error) == (1, f"HTTP 500 from {receiver.url()}")
    hook = webhook(store, "flaky")
    assert hook.failures == 1 and hook.retry_at is not None
    with transaction(store.factory) as session:
        assert duty.next_due(session, store.clock()) == hook.retry_at

    emit(store, "req_2")  # while it rests, nothing is sent to it: not the retry, not the new event
    assert duty.run() == 0
    assert len(receiver.received) == 1

    assert failed.next_attempt_at is not None and failed.next_attempt_at >= hook.retry_at
    store.clock.now = failed.next_attempt_at
    assert duty.run() == 2
    assert receiver.events() == ["request.created"] * 3
    first, retried = receiver.received[0], receiver.received[1:]
    assert first.delivery_id in {r.delivery_id for r in retried}
    assert all(d.delivered_at is not None and d.last_error is None for d in deliveries(store))
    assert (webhook(store, "flaky").failures, webhook(store, "flaky").retry_at) == (0, None)
    with transaction(store.factory) as session:
        assert duty.next_due(session, store.clock()) is None


def test_after_max_attempts_everything_waiting_is_given_up_with_a_log_line(
    store: Store, duty: WebhookDuty, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    add_webhook(store.factory, "dead", receiver.url())
    receiver.statuses[:] = [503] * 10
    with caplog.at_level(logging.WARNING, logger="sluice.webhooks"):
        for number in range(POLICY.max_attempts):
            emit(store, f"req_{number}")  # events keep coming while the receiver is down
            duty.run()
            store.clock.advance(minutes=2)
    assert len(receiver.received) == POLICY.max_attempts  # one try per rest, never one per event
    rows = deliveries(store)
    assert rows and all(d.gave_up_at is not None and d.next_attempt_at is None for d in rows)
    assert sum(d.attempts for d in rows) == POLICY.max_attempts  # each try counted once
    assert any(
        "gave up" in r.message and "dead" in r.message for r in caplog.records if r.levelname == "ERROR"
    )
    with transaction(store.factory) as session:
        assert duty.next_due(session, store.clock()) is None


def test_an_unset_signing_key_sends_nothing_and_says_which_variable(
    store: Store, duty: WebhookDuty, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_webhook(store.factory, "unsigned", receiver.url(), secret_env="NOT_SET_HOOK_SECRET")
    monkeypatch.delenv("NOT_SET_HOOK_SECRET", raising=False)
    emit(store)
    assert duty.run() == 0
    assert receiver.received == []
    (row,) = deliveries(store)
    assert row.last_error is not None and "NOT_SET_HOOK_SECRET" in row.last_error


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("a-plain-password", "must hold a Standard Webhooks secret"),
        ("whsec_not*base64", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes"),
    ],
)
def test_a_variable_that_holds_no_whsec_secret_sends_nothing_and_says_how_to_make_one(
    store: Store,
    duty: WebhookDuty,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    words: str,
) -> None:
    add_webhook(store.factory, "plain", receiver.url(), secret_env="PLAIN_HOOK_SECRET")
    monkeypatch.setenv("PLAIN_HOOK_SECRET", value)
    emit(store)
    assert duty.run() == 0
    assert receiver.received == []
    (row,) = deliveries(store)
    assert row.last_error is not None and "PLAIN_HOOK_SECRET" in row.last_error
    assert words in row.last_error and "sluice webhooks secret" in row.last_error
    assert value not in row.last_error


def test_events_nobody_listens_to_are_marked_handled_without_deliveries(
    store: Store, duty: WebhookDuty, receiver: Receiver
) -> None:
    emit(store, "req_1")
    duty.run()  # no webhook at all
    add_webhook(store.factory, "grants", receiver.url(), topics=["grant.*"])
    emit(store, "req_2")  # a topic no webhook wants
    duty.run()
    with transaction(store.factory) as session:
        assert session.scalar(select(OutboxMessage.id).where(OutboxMessage.delivered_at.is_(None))) is None
        assert duty.next_due(session, store.clock()) is None
    assert deliveries(store) == [] and receiver.received == []


def test_a_hung_receiver_costs_a_pass_one_timeout_and_the_others_are_still_delivered(
    store: Store, duty: WebhookDuty, receiver: Receiver
) -> None:
    fast_policy = DeliveryPolicy(timeout_seconds=0.5, max_attempts=3)
    hung_duty = WebhookDuty(store.factory, clock=store.clock, policy=fast_policy)
    with running_receiver() as hung:
        hung.hang_seconds = 10
        add_webhook(store.factory, "hung", hung.url())
        add_webhook(store.factory, "healthy", receiver.url())
        for number in range(3):
            emit(store, f"req_{number}")
        started = time.monotonic()
        assert hung_duty.run() == 3
        assert time.monotonic() - started < 3 * fast_policy.timeout_seconds
        assert len(hung.received) == 1  # the first timed out; the rest waits for its rest to end
    assert len(receiver.received) == 3
    hung_rows = [d for d in deliveries(store) if d.webhook_id == "wh_hung"]
    assert sorted(d.attempts for d in hung_rows) == [0, 0, 1]
    assert "Timeout" in (webhook(store, "hung").last_error or "")


def test_the_worker_sleeps_until_a_retry_is_due(store: Store, receiver: Receiver) -> None:
    worker = store.worker()
    worker.run_once()
    add_webhook(store.factory, "flaky", receiver.url())
    receiver.statuses[:] = [500]
    emit(store)
    worker.run_once()
    assert receiver.events() == ["request.created"]
    retry_at = webhook(store, "flaky").retry_at
    assert retry_at is not None
    assert worker.seconds_until_next() <= (retry_at - store.clock()).total_seconds()
    (row,) = deliveries(store)
    assert row.next_attempt_at is not None and row.next_attempt_at >= retry_at
    store.clock.now = row.next_attempt_at
    worker.run_once()
    assert receiver.events() == ["request.created"] * 2
    assert all(d.delivered_at is not None for d in deliveries(store))
