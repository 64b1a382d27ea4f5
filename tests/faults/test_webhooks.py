"""Webhooks on a PostgreSQL store: a revoke that keeps failing because its target is down reaches a
real receiver as `grant.revoke_failed`, signed, with no credential anywhere in any payload; and two
workers delivering at once never send one delivery twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from sluice.events.audit import Action, record
from sluice.services.audit.webhook_delivery import DeliveryPolicy, WebhookDuty
from sluice.store.db import transaction
from sluice.store.tables import WebhookDelivery
from tests.conftest import Clock
from tests.event_payloads import REQUEST_CREATED_DETAILS
from tests.faults.conftest import ThrowawayPostgres
from tests.faults.harness import Setup, expires
from tests.webhook_receiver import SIGNING_KEY, Receiver, add_webhook

WINDOW = timedelta(minutes=2)


def test_a_revoke_that_keeps_failing_reaches_the_pager_signed_and_without_secrets(
    setup: Setup,
    throwaway_pg: ThrowawayPostgres,
    target_database: Callable[..., str],
    clock: Clock,
    receiver: Receiver,
) -> None:
    add_webhook(setup.factory, "pager", receiver.url("/pager"), topics=["grant.revoke_failed"])
    add_webhook(setup.factory, "everything", receiver.url("/all"))
    setup.add_postgres("dead-pg", throwaway_pg.url, target_database(throwaway_pg.url))
    grant_ids = setup.add_grants("dead-pg", expires(clock(), [60, 60]), now=clock())
    worker = setup.worker(clock, revoke_failed_after=WINDOW, backoff_cap=timedelta(seconds=30))
    assert worker.run_once() == 2
    passwords = [setup.box.open(g.credentials) for g in setup.grants() if g.credentials]
    assert len(passwords) == 2

    throwaway_pg.stop()
    clock.advance(seconds=61)
    for _ in range(int(WINDOW.total_seconds() // 30) + 3):
        worker.run_once()
        clock.advance(seconds=35)
    worker.run_once()  # delivers what the last pass wrote

    paged = receiver.at("/pager")
    assert sorted(r.data["subject"]["id"] for r in paged) == sorted(grant_ids)
    for received in paged:
        assert received.event == "grant.revoke_failed" and received.signed_with(SIGNING_KEY)
        details = received.data["details"]
        assert details["state"] == "revoke_failed" and details["integration"] == "dead-pg"
        assert details["error"] and details["principal"].startswith(setup.prefixes["dead-pg"])
    everything = receiver.events("/all")
    assert {"grant.activated", "grant.revoke_attempt_failed", "grant.revoke_failed"} <= set(everything)
    bodies = [r.body.decode() for r in receiver.received]
    sealed = [g.credentials for g in setup.grants() if g.credentials]
    assert len(sealed) == 2  # still held: the revokes have not happened
    for secret in passwords + sealed:
        assert not any(secret in body for body in bodies)


def _emit(setup: Setup, clock: Clock, count: int) -> None:
    with transaction(setup.factory) as session:
        for number in range(count):
            record(
                session,
                now=clock(),
                actor="sluice",
                action=Action.REQUEST_CREATED,
                subject_type="request",
                subject_id=f"req_{number}",
                **REQUEST_CREATED_DETAILS,
            )


def test_two_workers_delivering_at_once_never_send_a_delivery_twice(
    setup: Setup, clock: Clock, receiver: Receiver
) -> None:
    WebhookDuty(setup.factory, clock=clock).fan_out(clock())  # what came before any webhook
    add_webhook(setup.factory, "audit-log", receiver.url())
    receiver.hang_seconds = 0.05  # so the two workers' batches overlap in time
    _emit(setup, clock, 60)
    policy = DeliveryPolicy(batch=10)
    duties = [WebhookDuty(setup.factory, clock=clock, policy=policy) for _ in range(2)]
    start = threading.Barrier(len(duties))
    errors: list[BaseException] = []
    delivered = [0] * len(duties)

    def work(index: int, duty: WebhookDuty) -> None:
        try:
            start.wait()
            for _ in range(10):
                delivered[index] += duty.run()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, d)) for i, d in enumerate(duties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(delivered) == 60 and min(delivered) > 0  # both took part
    ids = [r.delivery_id for r in receiver.received]
    assert len(ids) == 60 and len(set(ids)) == 60
    with transaction(setup.factory) as session:
        rows = session.scalars(select(WebhookDelivery)).all()
        assert len(rows) == 60 and all(r.delivered_at is not None and r.attempts == 1 for r in rows)
