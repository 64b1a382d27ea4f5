"""The worker converges whatever happens between its steps: crashes, lapsed claims, failing targets."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from sluice.domain.states import Actual, Desired
from sluice.services.grants.memberships import StoreMemberships
from sluice.services.grants.work import CLAIM_LEASE
from sluice.services.requests.decisions import cancel_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.store.db import transaction
from sluice.store.queries import group_names_of
from sluice.store.tables import AuditEvent, Grant, Integration
from tests.services.conftest import Store, approved_oncall_request


def groups_of_alice(store: Store) -> frozenset[str]:
    with transaction(store.factory) as session:
        return group_names_of(session, store.identity(session, "alice@example.com").id, store.clock())


def grant_row(store: Store, grant_id: str) -> Grant:
    with transaction(store.factory) as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        return grant


def test_grant_then_expiry_revokes_on_time(store: Store) -> None:
    grant_id = approved_oncall_request(store, minutes=30)
    worker = store.worker()
    worker.run_once()
    assert "oncall" in groups_of_alice(store)
    assert grant_row(store, grant_id).actual == Actual.ACTIVE
    # The worker knows when to wake: at the end time, not at some polling interval.
    with transaction(store.factory) as session:
        assert worker.expiry.next_due(session, store.clock()) == grant_row(store, grant_id).ends_at
    store.clock.advance(minutes=30)
    worker.run_once()
    assert "oncall" not in groups_of_alice(store)
    row = grant_row(store, grant_id)
    assert (row.desired, row.actual) == (Desired.REVOKED, Actual.REVOKED)
    assert row.end_reason == "lease ended"


def test_a_worker_that_dies_after_claiming_is_replaced_when_its_lease_lapses(store: Store) -> None:
    grant_id = approved_oncall_request(store)
    dead = store.worker("dead")
    jobs = dead.reconciler.claim().jobs  # claims and marks the target as about to be touched, then "crashes"
    assert [j.grant_id for j in jobs] == [grant_id]
    assert grant_row(store, grant_id).actual == Actual.UNKNOWN
    survivor = store.worker("survivor")
    assert survivor.run_once() == 0  # the claim still holds
    store.clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    assert survivor.run_once() == 1
    assert grant_row(store, grant_id).actual == Actual.ACTIVE
    assert "oncall" in groups_of_alice(store)


def test_a_crash_mid_grant_followed_by_cancel_still_revokes(store: Store) -> None:
    """The target may have been touched (actual unknown): cancelling must clean it up, not forget it."""
    grant_id = approved_oncall_request(store)
    jobs = store.worker("dead").reconciler.claim().jobs
    # The dead worker did reach the target before it died:
    StoreMemberships(store.factory, "groups").add(
        group="oncall", email="alice@example.com", grant_id=grant_id, expires_at=None
    )
    assert jobs and "oncall" in groups_of_alice(store)
    with transaction(store.factory) as session:
        request_id = session.get(Grant, grant_id).request_id  # type: ignore[union-attr]
        cancel_request(
            session,
            request_id=request_id,
            actor=store.identity(session, "alice@example.com"),
            is_admin=False,
            reason="not needed",
            now=store.clock(),
        )
    store.clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    store.worker("survivor").run_once()
    assert "oncall" not in groups_of_alice(store)
    assert grant_row(store, grant_id).actual == Actual.REVOKED


def test_a_grant_the_target_can_never_make_is_ended_and_cleaned_up(store: Store) -> None:
    grant_id = approved_oncall_request(store)
    with transaction(store.factory) as session:  # the group left the integration before the worker ran
        integration = session.scalars(select(Integration)).one()
        integration.config = {"groups": [{"name": "dba"}]}
    worker = store.worker()
    worker.run_once()
    first = grant_row(store, grant_id)
    assert first.desired == Desired.REVOKED  # not retryable: given up, and whatever part exists removed
    assert "could not be granted" in (first.end_reason or "")
    with transaction(store.factory) as session:
        events = {
            e.action: e for e in session.scalars(select(AuditEvent).where(AuditEvent.subject_id == grant_id))
        }
    assert "not a group of groups" in events["grant.attempt_failed"].details["error"]
    assert "grant.revoked" in events


def test_pending_requests_expire_when_nobody_answers(store: Store) -> None:
    now = store.clock()
    with transaction(store.factory) as session:
        request = submit_request(
            session,
            hub=store.hub,
            requester=store.identity(session, "alice@example.com"),
            units=[UnitAsked("groups/dba", "member")],
            duration=timedelta(minutes=5),
            reason="x",
            now=now,
        )
        request_id = request.id
    store.clock.advance(hours=1, seconds=1)
    store.worker().run_once()
    with transaction(store.factory) as session:
        from sluice.store.tables import AccessRequest

        assert session.get(AccessRequest, request_id).status == "expired"  # type: ignore[union-attr]


def test_an_end_time_moved_during_the_target_call_is_applied_again(store: Store) -> None:
    """The target was told the end time read at claim; a renewal or extension landing before the
    outcome is recorded leaves the row to be applied again, never recorded as done with the old end."""
    grant_id = approved_oncall_request(store)
    worker = store.worker()
    jobs = worker.reconciler.claim().jobs
    outcome = worker.reconciler.run(jobs[0])
    later = grant_row(store, grant_id).ends_at + timedelta(minutes=20)  # type: ignore[operator]
    with transaction(store.factory) as session:
        session.get(Grant, grant_id).ends_at = later  # type: ignore[union-attr]
    worker.reconciler.record([outcome])
    assert grant_row(store, grant_id).actual == Actual.UNKNOWN
    again = worker.reconciler.claim().jobs
    assert [j.unit.ends_at for j in again] == [later]
    worker.reconciler.run_and_record(again[0])
    assert grant_row(store, grant_id).actual == Actual.ACTIVE


def test_a_worker_with_no_integrations_sleeps_instead_of_spinning(store: Store) -> None:
    """With inventory sync on and nothing to sync, nothing is due: the worker waits, it does not loop."""
    with transaction(store.factory) as session:
        for row in session.scalars(select(Integration)):
            session.delete(row)
    worker = store.worker()
    worker.run_once()
    assert worker.seconds_until_next() > 1
    with transaction(store.factory) as session:
        never_synced = Integration(
            id="int_never", name="fresh", kind="builtin_groups", config={}, created_at=store.clock(),
            updated_at=store.clock(),
        )  # fmt: skip
        session.add(never_synced)
    assert worker.seconds_until_next() == 0  # a new integration is synced at once


class BrokenDuty:
    """A duty that is always due and always fails."""

    def run(self) -> None:
        raise RuntimeError("the duty broke")

    def next_due(self, session: object, now: datetime) -> datetime:
        return now


def test_a_duty_failing_beside_target_work_fails_the_pass_but_not_the_calls_made(store: Store) -> None:
    grant_id = approved_oncall_request(store)
    worker = store.worker()
    worker.alongside_target_work.append(BrokenDuty())
    with pytest.raises(RuntimeError, match="the duty broke"):
        worker.run_once()
    # The call beside it was made and recorded, and the pass's failure left no claim to release.
    row = grant_row(store, grant_id)
    assert (row.actual, row.claimed_by) == (Actual.ACTIVE, None)
    assert "oncall" in groups_of_alice(store)
