"""Claims die with their worker: a live worker keeps its claims however long a call takes (its
heartbeat renews them), a dead one's are taken over within one short lease, and operators see it all
(a log line, an audit event, a count; overdue and queue gauges that count held rows and early revokes;
a revocation lag for every revoke)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from sluice.domain.states import Actual, Desired
from sluice.events.metrics import StoreCollector
from sluice.runtime.tuning import Tuning
from sluice.services.grants.revocation import revoke_grant
from sluice.services.grants.work_outcomes import Job, Outcome
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent
from tests.services.conftest import Store, approved_oncall_request
from tests.services.test_worker import grant_row

LEASE = Tuning().claim_lease


def gauges(store: Store) -> dict[str, float]:
    """The store gauges for the `groups` integration, as a scrape would read them now."""
    found = {}
    for family in StoreCollector(store.factory, store.clock).collect():
        for sample in family.samples:
            if sample.labels.get("integration") == "groups" and "state" not in sample.labels:
                found[sample.name] = sample.value
    return found


def lag_observations() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("sluice_revocation_lag_seconds_count", {"integration": "groups"})
    total = REGISTRY.get_sample_value("sluice_revocation_lag_seconds_sum", {"integration": "groups"})
    return count or 0.0, total or 0.0


def revoke_early(store: Store, grant_id: str) -> None:
    with transaction(store.factory) as session:
        revoke_grant(
            session,
            grant_id=grant_id,
            actor=store.identity(session, "alice@example.com"),
            is_admin=False,
            reason="done early",
            now=store.clock(),
        )


def test_the_default_lease_is_seconds_not_minutes() -> None:
    assert Tuning().claim_lease <= timedelta(seconds=10)
    assert Tuning.from_env().claim_lease == Tuning().claim_lease


def test_a_live_worker_keeps_its_claim_through_a_call_longer_than_the_lease(store: Store) -> None:
    grant_id = approved_oncall_request(store)
    slow = store.worker("slow")
    assert [job.grant_id for job in slow.reconciler.claim().jobs] == [grant_id]
    for _ in range(4):  # the call takes twice the lease; the heartbeat beats every third of it
        store.clock.advance(seconds=LEASE.total_seconds() / 2)
        assert slow.heartbeat.beat() == 1
    assert store.worker("other").run_once() == 0
    assert grant_row(store, grant_id).claimed_by == "slow"


def test_a_dead_workers_claim_is_taken_over_after_one_lease_with_a_log_line_an_event_and_a_count(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    grant_id = approved_oncall_request(store)
    assert store.worker("dead").reconciler.claim().jobs
    before = REGISTRY.get_sample_value("sluice_claim_takeovers_total", {"integration": "groups"}) or 0.0
    survivor = store.worker("survivor")
    store.clock.advance(seconds=LEASE.total_seconds() - 1)
    assert survivor.run_once() == 0
    store.clock.advance(seconds=2)
    with caplog.at_level(logging.WARNING, logger="sluice.worker"):
        assert survivor.run_once() == 1
    assert grant_row(store, grant_id).actual == Actual.ACTIVE
    assert any(
        "survivor took over grant" in r.getMessage() and "from dead" in r.getMessage() for r in caplog.records
    )
    with transaction(store.factory) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "grant.claim_taken_over")
        ).all()
        assert [(e.subject_id, e.details["previous_worker"], e.details["worker"]) for e in events] == [
            (grant_id, "dead", "survivor")
        ]
    after = REGISTRY.get_sample_value("sluice_claim_takeovers_total", {"integration": "groups"})
    assert after == before + 1


def test_a_worker_finishing_its_own_claim_is_no_takeover(store: Store) -> None:
    approved_oncall_request(store)
    assert store.worker().run_once() == 1
    with transaction(store.factory) as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "grant.claim_taken_over")) is None


def test_an_early_revoke_held_by_a_dead_worker_shows_in_the_gauges_and_its_lag_is_recorded(
    store: Store,
) -> None:
    grant_id = approved_oncall_request(store, minutes=60)
    store.worker().run_once()
    store.clock.advance(minutes=5)
    revoke_early(store, grant_id)
    row = grant_row(store, grant_id)
    assert row.revoke_requested_at == store.clock()
    assert row.ends_at is not None and row.ends_at > store.clock()
    assert store.worker("dead").reconciler.claim().jobs  # then it dies holding the revoke
    store.clock.advance(seconds=3)
    # Held by a worker, not yet done: in the queue, and overdue since the moment it was asked.
    assert gauges(store) == {"sluice_queue_depth": 1.0, "sluice_oldest_overdue_revoke_seconds": 3.0}
    count, total = lag_observations()
    store.clock.advance(seconds=LEASE.total_seconds())
    assert store.worker("survivor").run_once() == 1
    row = grant_row(store, grant_id)
    assert (row.desired, row.actual) == (Desired.REVOKED, Actual.REVOKED)
    assert gauges(store) == {"sluice_queue_depth": 0.0, "sluice_oldest_overdue_revoke_seconds": 0.0}
    new_count, new_total = lag_observations()
    assert new_count == count + 1
    assert new_total - total == pytest.approx(3 + LEASE.total_seconds())


def test_an_expiry_is_decided_at_the_end_time_even_when_noticed_later(store: Store) -> None:
    grant_id = approved_oncall_request(store, minutes=30)
    worker = store.worker()
    worker.run_once()
    ends_at = grant_row(store, grant_id).ends_at
    store.clock.advance(minutes=30, seconds=20)  # the worker was away when it came due
    assert gauges(store)["sluice_oldest_overdue_revoke_seconds"] == 20.0
    worker.expire_due()
    assert grant_row(store, grant_id).revoke_requested_at == ends_at
    assert gauges(store)["sluice_oldest_overdue_revoke_seconds"] == 20.0
    count, total = lag_observations()
    worker.run_once()
    new_count, new_total = lag_observations()
    assert (new_count - count, new_total - total) == (1, pytest.approx(20.0))


def test_a_job_that_fails_before_its_call_releases_its_claim(store: Store) -> None:
    """Otherwise the heartbeat would renew a claim nobody works on for as long as the worker lives."""
    grant_id = approved_oncall_request(store)
    worker = store.worker()

    def store_gone(job: Job) -> Outcome:
        raise RuntimeError("the store went away before the call")

    worker.dispatcher._run = store_gone
    worker.run_once()
    row = grant_row(store, grant_id)
    assert row.claimed_by is None and row.attempts == 1 and row.next_attempt_at is not None
