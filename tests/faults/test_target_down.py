"""Quality: one target down never leaves access behind, and never delays another target.

The dead target is a throwaway PostgreSQL cluster that the test crashes (`pg_ctl stop -m immediate`)
while its grants expire. The worker retries with capped backoff; after the configured window the grant
shows as `revoke_failed` (API view, metrics, an audit event with its webhook row) and keeps being
retried; once the cluster is back, everything is revoked with no operator action. A clock moved by
hand stands in for the hours a real outage would take."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sluice.api.app import create_app
from sluice.domain.states import Actual, Desired
from sluice.events.metrics import registry_with_store
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Grant, OutboxMessage
from tests.conftest import Clock
from tests.faults.conftest import ThrowawayPostgres
from tests.faults.harness import Setup, expires, login_roles

WINDOW = timedelta(minutes=10)
TUNING: dict[str, Any] = {"revoke_failed_after": WINDOW, "backoff_cap": timedelta(seconds=30)}


def _by_integration(setup: Setup, name: str) -> list[Grant]:
    return [g for g in setup.grants() if g.integration.name == name]


def test_a_target_down_past_the_window_is_shown_then_revoked_when_it_returns(
    setup: Setup,
    throwaway_pg: ThrowawayPostgres,
    target_database: Callable[..., str],
    postgres_admin_url: str,
    clock: Clock,
) -> None:
    setup.add_postgres("dead-pg", throwaway_pg.url, target_database(throwaway_pg.url))
    setup.add_postgres("live-pg", postgres_admin_url, target_database())
    now = clock()
    setup.add_grants("dead-pg", expires(now, [60] * 6), now=now)
    setup.add_grants("live-pg", expires(now, [60] * 6), now=now)
    worker = setup.worker(clock, **TUNING)
    assert worker.run_once() == 12
    assert len(login_roles(throwaway_pg.url, setup.prefixes["dead-pg"])) == 6

    throwaway_pg.stop()
    clock.advance(seconds=61)
    worker.run_once()
    # The healthy target is revoked on time, whatever the other one does.
    assert login_roles(postgres_admin_url, setup.prefixes["live-pg"]) == set()
    assert {(g.desired, g.actual) for g in _by_integration(setup, "live-pg")} == {
        (Desired.REVOKED, Actual.REVOKED)
    }
    dead = _by_integration(setup, "dead-pg")
    assert all(g.actual == Actual.ACTIVE and g.attempts == 1 and g.last_error for g in dead)

    # Retries back off, capped: over the window they keep coming, at most every 30 s (+ jitter).
    attempts_before = 1
    for _ in range(int(WINDOW.total_seconds() // 30) + 2):
        clock.advance(seconds=35)
        worker.run_once()
    dead = _by_integration(setup, "dead-pg")
    assert all(g.attempts >= attempts_before + WINDOW.total_seconds() // 35 for g in dead)
    assert all(g.revoke_failed_at is not None for g in dead)

    # Visible: the API's state, the metrics, an audit event and its webhook row, once per grant.
    _assert_visible_as_revoke_failed(setup, clock, [g.id for g in dead])

    # Still retried, forever: another hour later it is still being tried.
    clock.advance(hours=1)
    worker.run_once()
    assert all(g.attempts > dead[0].attempts - 1 for g in _by_integration(setup, "dead-pg"))

    throwaway_pg.start()
    clock.advance(seconds=35)  # the capped backoff (30 s, jittered up to +12.5 %) has run out
    worker.run_once()
    assert login_roles(throwaway_pg.url, setup.prefixes["dead-pg"]) == set()
    for grant in _by_integration(setup, "dead-pg"):
        assert (grant.desired, grant.actual) == (Desired.REVOKED, Actual.REVOKED)
        assert grant.revoke_failed_at is None and grant.failing_since is None and grant.last_error is None


def _assert_visible_as_revoke_failed(setup: Setup, clock: Clock, grant_ids: list[str]) -> None:
    runtime = Runtime(
        settings=Settings(home=setup.home, database_url=setup.store_url, secret_key=setup.secret_key),
        engine=setup.engine,
        factory=setup.factory,
        hub=setup.hub(),
        box=setup.box,
        clock=clock,
    )
    with transaction(setup.factory) as session:
        token = create_token(session, email="ada@example.com", admin=False, actor="test", now=clock())
        admin = create_token(session, email="ada@example.com", admin=True, actor="test", now=clock())
    with TestClient(create_app(runtime)) as client:
        listed = client.get("/api/v1/access", headers={"Authorization": f"Bearer {token}"}).json()["items"]
        states = {item["id"]: item["state"] for item in listed}
        assert {states[g] for g in grant_ids} == {"revoke_failed"}
        assert all(item["last_error"] for item in listed if item["id"] in grant_ids)
        stuck = client.get(
            "/api/v1/grants", params={"state": "revoke_failed"}, headers={"Authorization": f"Bearer {admin}"}
        ).json()["items"]
        assert sorted(item["id"] for item in stuck) == sorted(grant_ids)  # what an operator looks at
        assert all(item["revoke_failed_at"] and item["failing_since"] for item in stuck)
        scraped = client.get("/metrics").text
    assert 'sluice_grants{integration="dead-pg",state="revoke_failed"} 6.0' in scraped
    assert 'sluice_oldest_overdue_revoke_seconds{integration="live-pg"} 0.0' in scraped
    assert 'sluice_target_failures_total{integration="dead-pg",operation="revoke"}' in scraped
    with transaction(setup.factory) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "grant.revoke_failed")).all()
        assert sorted(e.subject_id for e in events) == sorted(grant_ids)
        topics = session.scalars(
            select(OutboxMessage.topic).where(OutboxMessage.event_id.in_([e.id for e in events]))
        ).all()
        assert topics == ["grant.revoke_failed"] * len(grant_ids)
    assert registry_with_store(setup.factory, clock) is not None


@pytest.fixture
def black_hole_port() -> Iterator[int]:
    """Accepts TCP connections (the kernel completes them) and never answers: a hung target."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_a_hanging_target_does_not_delay_revokes_on_a_healthy_one(
    setup: Setup,
    target_database: Callable[..., str],
    postgres_admin_url: str,
    black_hole_port: int,
    clock: Clock,
) -> None:
    """The hung target's calls each take the connect timeout (2 s); it may use only its share of the
    worker's threads, so the healthy target's expiries go through at once."""
    setup.add_postgres("live-pg", postgres_admin_url, target_database())
    setup.add_postgres("hung-pg", postgres_admin_url, "nowhere", port=black_hole_port)
    now = clock()
    setup.add_grants("live-pg", expires(now, [30] * 8), now=now)
    worker = setup.worker(clock, threads=4, per_integration=2)
    assert worker.run_once() == 8
    hung = setup.add_grants("hung-pg", expires(now, [30] * 4), now=now)
    with transaction(setup.factory) as session:  # as if they had been granted before the target hung
        for grant in session.scalars(select(Grant).where(Grant.id.in_(hung))):
            grant.actual = Actual.ACTIVE
    clock.advance(seconds=31)

    started = time.monotonic()
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    try:
        while login_roles(postgres_admin_url, setup.prefixes["live-pg"]):
            assert time.monotonic() - started < 1.5, "the healthy target waited behind the hung one"
            time.sleep(0.02)
        assert runner.is_alive()  # the hung target's calls are still timing out meanwhile
    finally:
        runner.join(timeout=60)
    hung_rows = _by_integration(setup, "hung-pg")
    assert all(
        g.actual == Actual.ACTIVE and g.attempts == 1 and "timeout" in (g.last_error or "") for g in hung_rows
    )
