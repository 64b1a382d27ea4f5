"""Quality: a worker killed at any point never leaves access behind, nor does anything twice.

Real worker processes on a PostgreSQL store grant and revoke on a real PostgreSQL target while the test
SIGKILLs one of them at a random moment, at least 50 times over a few hundred grants that keep arriving
and expiring, and starts a replacement each time. Afterwards: every grant whose time is up is gone from
the target, every other one is usable with its password, no role is left without a live grant, and no
grant was activated again after it was revoked.

The first workers are `sluice worker` commands; the replacements are forked from a process that has
imported Sluice once (`Fleet.fork_worker`) and run what `sluice worker` runs. Each would otherwise
spend a couple of CPU seconds on interpreter start and imports, on two cores the bulk of this test."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from sluice.domain.states import Actual, Desired
from sluice.store.db import transaction
from sluice.store.grant_states import grant_needs_work
from sluice.store.tables import AuditEvent, Grant
from tests.faults.harness import Setup, can_read, login_roles
from tests.faults.processes import Fleet, Worker, sluice_env

pytestmark = pytest.mark.e2e

KILLS = int(os.environ.get("SLUICE_FAULT_KILLS", "50"))
GRANTS_PER_ROUND = 6  # 300 grants over the 50 rounds: half end within seconds, half in an hour
SLOTS = 3  # workers running at once; a killed one is replaced at once (it starts while others work)
BUSY_WAIT = 0.3  # how long a round may wait for a worker in the middle of its work to kill


@pytest.fixture
def fleet(setup: Setup, tmp_path: Path) -> Iterator[Fleet]:
    env = sluice_env(
        setup.store_url,
        setup.home,
        setup.secret_key,
        SLUICE_CLAIM_LEASE_SECONDS="2",
        SLUICE_BACKOFF_CAP_SECONDS="1",
        SLUICE_ORPHAN_SWEEP_SECONDS="2",
    )
    made = Fleet(env, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


def _notify(setup: Setup) -> None:
    with transaction(setup.factory) as session:
        session.execute(text("NOTIFY sluice_work"))


def _busy(setup: Setup, workers: list[Worker], running: list[int], wait: float = BUSY_WAIT) -> list[int]:
    """Which of the running workers hold a live claim (are in the middle of a target call or of
    recording it), waiting up to `wait` seconds for one to."""
    deadline = time.monotonic() + wait
    while True:
        with transaction(setup.factory) as session:
            holders = set(
                session.scalars(select(Grant.claimed_by).where(Grant.claimed_until > datetime.now(UTC)))
            )
        pids = {int(holder.rpartition(":")[2]) for holder in holders if holder}
        busy = [i for i in running if workers[i].pid in pids]
        if busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.01)


def test_workers_killed_at_random_points_leave_every_grant_where_it_should_be(
    setup: Setup,
    fleet: Fleet,
    target_database: Callable[..., str],
    postgres_admin_url: str,
) -> None:
    database = target_database()
    prefix = setup.add_postgres("pg", postgres_admin_url, database)
    rng = secrets.SystemRandom()
    workers: list[Worker] = [fleet.start(f"worker-{i}", "worker") for i in range(SLOTS)]
    fleet.wait_for(workers[0], "worker started")

    kills = mid_work = 0
    started = time.monotonic()
    last_short_end = datetime.now(UTC)
    for round_no in range(KILLS):
        now = datetime.now(UTC)
        ends = [now + timedelta(seconds=rng.uniform(0.5, 4)) for _ in range(GRANTS_PER_ROUND // 2)]
        last_short_end = max(last_short_end, *ends)
        ends += [now + timedelta(hours=1)] * (GRANTS_PER_ROUND - len(ends))
        setup.add_grants("pg", ends, now=now)
        _notify(setup)
        time.sleep(rng.uniform(0.05, 0.5))  # somewhere in the middle of granting, expiring or revoking
        running = [i for i, w in enumerate(workers) if "worker started" in w.log_text()]
        while not running:
            time.sleep(0.05)
            running = [i for i, w in enumerate(workers) if "worker started" in w.log_text()]
        # Rather a worker in the middle of its work (waiting a moment for one): a crash hurts there.
        busy = _busy(setup, workers, running)
        victim = rng.choice(busy or running)
        workers[victim].kill()
        kills += 1
        mid_work += bool(busy)
        workers[victim] = fleet.fork_worker(f"worker-{round_no}-{victim}")
    assert kills >= KILLS
    print(f"kills done after {time.monotonic() - started:.1f}s; {mid_work} of them holding claims")
    assert mid_work >= KILLS // 5, "the kills should land on workers at work, not only on idle ones"

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with transaction(setup.factory) as session:
            now = datetime.now(UTC)
            due = session.scalar(
                select(Grant.id).where(Grant.desired == Desired.ACTIVE, Grant.ends_at <= now)
            )
            differs = session.scalar(select(Grant.id).where(grant_needs_work(now + timedelta(hours=2))))
        if now > last_short_end and due is None and differs is None:  # every short grant ended
            break
        time.sleep(0.2)
    else:
        pytest.fail("the workers did not converge within 60 s of the last kill")

    print(f"converged after {time.monotonic() - started:.1f}s")
    grants = setup.grants()
    assert len(grants) == KILLS * GRANTS_PER_ROUND
    live = [g for g in grants if g.desired == Desired.ACTIVE]
    ended = [g for g in grants if g.desired == Desired.REVOKED]
    assert len(live) == len(ended) == len(grants) // 2
    assert all(g.actual == Actual.ACTIVE for g in live)
    # Gone from the target (or never made, when it expired before a worker got to it), never early.
    assert all(g.actual in (Actual.REVOKED, Actual.NONE) for g in ended)
    assert all(g.revoked_at and g.ends_at and g.revoked_at >= g.ends_at for g in ended)
    # The target holds exactly the live grants' roles: expired ones are gone, no orphan is left.
    assert login_roles(postgres_admin_url, prefix) == {g.principal for g in live}
    for grant in rng.sample(live, 15):
        assert can_read(
            postgres_admin_url, database, grant.principal, setup.box.open(grant.credentials or "")
        )
    # Nothing done twice with harm: no grant became active again after it was revoked.
    with transaction(setup.factory) as session:
        events = session.execute(
            select(AuditEvent.subject_id, AuditEvent.action)
            .where(AuditEvent.action.in_(["grant.activated", "grant.revoked"]))
            .order_by(AuditEvent.id)
        ).all()
    revoked: set[str] = set()
    for subject, action in events:
        if action == "grant.revoked":
            revoked.add(subject)
        else:
            assert subject not in revoked, f"grant {subject} was activated after it was revoked"
    assert revoked == {g.id for g in ended if g.actual == Actual.REVOKED}
