"""A failing channel never delays grants: with Teams hanging past its timeout and email refusing every
message, requests are approved, granted and revoked as fast as with no channel at all (measured here
against a run without them, with a generous bound), while the notices are retried with backoff and
given up after the bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from sluice.services.grants.revocation import revoke_grant
from sluice.services.notify.channels import ChannelError
from sluice.services.notify.sending import NotifyPolicy
from sluice.services.notify.teams import TeamsChannel
from sluice.store.db import transaction
from sluice.store.tables import Grant, Notification
from sluice.worker.loop import Worker
from tests.recording_channel import RecordingChannel
from tests.services.conftest import Store
from tests.services.test_notifications import approve, ask
from tests.services.test_notify_reminders import change_flow
from tests.teams_standin import running_teams_standin

pytestmark = pytest.mark.timing  # compares with a run without channels: run alone, not beside other tests

ROUNDS = 3
RESOURCES = ("groups/oncall", "groups/dba")


def run_until(worker: Worker, done: Callable[[], bool]) -> None:
    for _ in range(100):
        worker.run_once()
        if done():
            return
    raise AssertionError("the worker did not get there in 100 passes")


def states(store: Store, request_ids: list[str]) -> set[str]:
    with transaction(store.factory) as session:
        rows = session.scalars(select(Grant).where(Grant.request_id.in_(request_ids))).all()
        return {g.actual for g in rows}


def grant_and_revoke(store: Store, worker: Worker) -> float:
    """Seconds for ROUNDS rounds of: ask and approve two requests, see them active, revoke them, see
    them revoked."""
    started = time.monotonic()
    for _ in range(ROUNDS):
        ids = []
        for resource in RESOURCES:
            request_id = ask(store, resource=resource)
            approve(store, request_id)
            ids.append(request_id)
        run_until(worker, lambda ids=ids: states(store, ids) == {"active"})  # type: ignore[misc]
        with transaction(store.factory) as session:
            alice = store.identity(session, "alice@example.com")
            for grant in session.scalars(select(Grant).where(Grant.request_id.in_(ids))).all():
                revoke_grant(
                    session, grant_id=grant.id, actor=alice, is_admin=False, reason="done", now=store.clock()
                )
        run_until(worker, lambda ids=ids: states(store, ids) == {"revoked"})  # type: ignore[misc]
    return time.monotonic() - started


def test_a_dead_channel_delays_no_grant_and_its_notices_are_retried_then_given_up(store: Store) -> None:
    change_flow(store, notify={"destinations": ["teams:db-team"]})
    baseline = grant_and_revoke(store, store.worker())

    email = RecordingChannel("email", always_fail=ChannelError("SMTP 421 service not available"))
    with running_teams_standin() as standin:
        standin.hang_seconds = 2.0  # past the channel's timeout: every post costs a full timeout
        teams = TeamsChannel({"db-team": standin.url()}, timeout_seconds=1.0)
        worker = Worker(
            store.factory,
            hub=store.hub,
            box=store.box,
            clock=store.clock,
            worker_id="w2",
            channels={"email": email, "teams": teams},
        )
        policy = NotifyPolicy(
            backoff_base=timedelta(seconds=10), backoff_cap=timedelta(minutes=1), max_attempts=4
        )
        worker.notifications.policy = policy
        with_dead_channels = grant_and_revoke(store, worker)
        print(
            f"grant and revoke, {ROUNDS} rounds: {baseline:.2f}s alone, "
            f"{with_dead_channels:.2f}s with dead channels"
        )
        assert with_dead_channels <= baseline * 3 + 1.0, (baseline, with_dead_channels)
        worker.notifications.wait(timeout=10)
        assert standin.posts >= 1 and email.calls >= 1 and not standin.cards

        with transaction(store.factory) as session:
            waiting = session.scalars(select(Notification).where(Notification.gave_up_at.is_(None))).all()
            assert {n.channel for n in waiting} == {"email", "teams"}
            assert all(n.next_attempt_at is not None and n.delivered_at is None for n in waiting)
            tried = [n for n in waiting if n.attempts]
            assert {n.channel for n in tried} == {"email", "teams"}  # one try each, then the channel rests
            assert all(n.attempts == 1 and n.next_attempt_at > store.clock() for n in tried)  # type: ignore[operator]
            assert any("ReadTimeout" in (n.last_error or "") for n in tried)

        standin.hang_seconds = 0.0
        standin.statuses[:] = [500] * 100
        for _ in range(policy.max_attempts * 2):
            store.clock.advance(minutes=2)
            worker.run_once()
            worker.notifications.wait(timeout=10)
    with transaction(store.factory) as session:
        rows = session.scalars(select(Notification)).all()
    assert rows and all(n.gave_up_at is not None and n.next_attempt_at is None for n in rows)
    for channel in ("email", "teams"):
        tries = sum(n.attempts for n in rows if n.channel == channel)
        assert tries == policy.max_attempts, (channel, tries)  # one try per rest, then everything given up
    assert email.calls == policy.max_attempts
