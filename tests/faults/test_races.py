"""Quality: racing actions always end in a consistent state, on PostgreSQL, whatever the order.

Each race starts its contenders on a barrier and is repeated, so that both orders happen; the checks
hold for every interleaving (never "it passed because one side happened to win")."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from sluice.domain.errors import Conflict
from sluice.domain.states import Actual, Desired, RequestStatus
from sluice.events.audit import Action
from sluice.runtime.tuning import Tuning
from sluice.services.grants.endings import end_grants
from sluice.services.grants.revocation import expire_due_grants, revoke_grant
from sluice.services.requests.decisions import approve_request, cancel_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import transaction
from sluice.store.queries import group_names_of
from sluice.store.tables import AccessRequest, AuditEvent, Grant, Group, GroupMember, Identity, Integration
from sluice.store.types import new_id
from sluice.worker.loop import Worker
from tests.conftest import Clock
from tests.faults.harness import Setup, expires, login_roles
from tests.services.conftest import seed


def race(*contenders: Callable[[], Any]) -> list[Any]:
    """Run the contenders at the same moment; return what each returned or raised."""
    barrier = threading.Barrier(len(contenders))
    results: list[Any] = [None] * len(contenders)

    def run(index: int, contender: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = contender()
        except Exception as exc:  # the loser's error is part of the outcome
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _events(setup: Setup, action: Action) -> Counter[str]:
    with transaction(setup.factory) as session:
        return Counter(
            session.scalars(select(AuditEvent.subject_id).where(AuditEvent.action == action.value))
        )


def grant_row_claim(setup: Setup, grant_id: str) -> tuple[str | None, datetime | None]:
    with transaction(setup.factory) as session:
        row = session.get(Grant, grant_id)
        assert row is not None
        return row.claimed_by, row.claimed_until


def _rows(setup: Setup, ids: list[str]) -> list[tuple[Any, ...]]:
    """What a failed assertion should show: each row's states, claim and end time."""
    with transaction(setup.factory) as session:
        return [
            tuple(row)
            for row in session.execute(
                select(Grant.desired, Grant.actual, Grant.claimed_by, Grant.claimed_until, Grant.ends_at)
                .where(Grant.id.in_(ids))
                .order_by(Grant.id)
            )
        ]


def test_two_workers_on_the_same_rows_do_each_grant_and_revoke_once(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    prefix = setup.add_postgres("pg", postgres_admin_url, target_database())
    now = clock()
    ids = setup.add_grants("pg", expires(now, [60] * 24), now=now)
    workers = [setup.worker(clock, worker_id=f"w{i}", claim_per_integration=3) for i in (1, 2)]
    done = race(*(w.run_once for w in workers))
    # both took part, neither repeated work
    assert sum(done) == 24 and all(d > 0 for d in done), (done, _rows(setup, ids))
    assert _events(setup, Action.GRANT_ACTIVATED) == Counter({i: 1 for i in ids})
    assert len(login_roles(postgres_admin_url, prefix)) == 24

    clock.advance(seconds=61)
    done = race(*(w.run_once for w in workers))
    assert sum(done) == 24, (done, _rows(setup, ids))
    assert _events(setup, Action.GRANT_EXPIRED) == Counter({i: 1 for i in ids})
    assert _events(setup, Action.GRANT_REVOKED) == Counter({i: 1 for i in ids})
    assert login_roles(postgres_admin_url, prefix) == set()


def test_revoke_racing_expiry_ends_the_grant_once(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    prefix = setup.add_postgres("pg", postgres_admin_url, target_database())
    now = clock()
    ids = setup.add_grants("pg", expires(now, [30] * 8), now=now)
    worker = setup.worker(clock)
    worker.run_once()
    clock.advance(seconds=30)  # every grant is due this very moment
    outcomes = []
    for grant_id in ids:

        def revoke(grant_id: str = grant_id) -> str:
            with transaction(setup.factory) as session:
                ada = session.get(Identity, "id_ada")
                assert ada is not None
                revoke_grant(
                    session, grant_id=grant_id, actor=ada, is_admin=False, reason="done", now=clock()
                )
            return "revoked"

        def expire() -> int:
            with transaction(setup.factory) as session:
                return len(expire_due_grants(session, now=clock()))

        revoked, _ = race(revoke, expire)
        outcomes.append("revoked" if revoked == "revoked" else type(revoked).__name__)
        assert revoked == "revoked" or isinstance(revoked, Conflict)
    ended = _events(setup, Action.GRANT_EXPIRED) + _events(setup, Action.GRANT_REVOKE_REQUESTED)
    assert ended == Counter({i: 1 for i in ids})  # each ended once, by whichever came first
    worker.run_once()
    assert _events(setup, Action.GRANT_REVOKED) == Counter({i: 1 for i in ids})
    assert login_roles(postgres_admin_url, prefix) == set()
    assert {g.actual for g in setup.grants()} == {Actual.REVOKED}


def test_approve_racing_cancel_and_the_worker_never_leaves_access_behind(setup: Setup, clock: Clock) -> None:
    seed(setup.factory, clock)
    hub = ConnectorHub(setup.factory)
    sync_integration(setup.factory, hub, "groups", clock=clock)
    worker = Worker(
        setup.factory,
        hub=hub,
        box=setup.box,
        clock=clock,
        worker_id="w",
        sync_inventory=False,
        tuning=Tuning(),
    )

    def identity(session: Any, email: str) -> Identity:
        return session.scalars(select(Identity).where(Identity.email == email)).one()

    statuses: Counter[str] = Counter()
    for _ in range(12):
        with transaction(setup.factory) as session:
            request_id = submit_request(
                session,
                hub=hub,
                requester=identity(session, "alice@example.com"),
                units=[UnitAsked("groups/oncall", "member")],
                duration=timedelta(minutes=5),
                reason="race",
                now=clock(),
            ).id

        def approve(request_id: str = request_id) -> None:
            with transaction(setup.factory) as session:
                approve_request(
                    session,
                    request_id=request_id,
                    approver=identity(session, "carol@example.com"),
                    reason="",
                    now=clock(),
                )
            worker.run_once()

        def cancel(request_id: str = request_id) -> None:
            with transaction(setup.factory) as session:
                cancel_request(
                    session,
                    request_id=request_id,
                    actor=identity(session, "alice@example.com"),
                    is_admin=False,
                    reason="",
                    now=clock(),
                )

        race(approve, cancel)
        worker.run_once()
        with transaction(setup.factory) as session:
            request = session.get(AccessRequest, request_id)
            assert request is not None
            grant = request.grants[0]
            in_group = "oncall" in group_names_of(session, identity(session, "alice@example.com").id, clock())
            statuses[request.status] += 1
            if request.status == RequestStatus.CANCELLED:
                assert (grant.desired, grant.actual, in_group) in {
                    (Desired.REVOKED, Actual.NONE, False),
                    (Desired.REVOKED, Actual.REVOKED, False),
                }
            else:
                assert request.status == RequestStatus.APPROVED
                assert (grant.desired, grant.actual, in_group) == (Desired.ACTIVE, Actual.ACTIVE, True)
                end_grants(  # make room for the next round's request
                    session,
                    [grant],
                    now=clock(),
                    actor="test",
                    action=Action.GRANT_REVOKE_REQUESTED,
                    reason="",
                )
        worker.run_once()
        with transaction(setup.factory) as session:
            alice = identity(session, "alice@example.com")
            assert "oncall" not in group_names_of(session, alice.id, clock())
    assert sum(statuses.values()) == 12


@contextmanager
def _meeting_before(setup: Setup, statement: re.Pattern[str], parties: int) -> Iterator[list[str]]:
    """Every store statement matching `statement` waits on one barrier until `parties` of them are
    there; yields the list of the statements seen."""
    barrier = threading.Barrier(parties, timeout=10)
    seen: list[str] = []

    def meet(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if statement.match(sql):
            seen.append(sql)
            barrier.wait()

    event.listen(setup.engine, "before_cursor_execute", meet)
    try:
        yield seen
    finally:
        event.remove(setup.engine, "before_cursor_execute", meet)


def test_two_grants_creating_one_builtin_group_at_once_make_one_group(setup: Setup, clock: Clock) -> None:
    """Both grants look for the group, find none and insert it at the same moment (a barrier holds
    each INSERT until both are there): the loser's insert fails on the unique name, its savepoint is
    rolled back and it joins the group the winner made."""
    now = clock()
    with transaction(setup.factory) as session:
        session.add(
            Identity(id="id_bea", email="bea@example.com", name="Bea", created_at=now, updated_at=now)
        )
        rooms = Integration(
            id=new_id("int"),
            name="rooms",
            kind="builtin_groups",
            config={"groups": [{"name": "war-room"}]},
            created_at=now,
            updated_at=now,
        )
        session.add(rooms)
        grant_ids = [new_id("gr") for _ in range(2)]
        for grant_id, (identity_id, grantee) in zip(
            grant_ids, [("id_ada", "ada@example.com"), ("id_bea", "bea@example.com")], strict=True
        ):
            session.add(
                Grant(
                    id=grant_id,
                    identity_id=identity_id,
                    integration=rooms,
                    resource_path="rooms/war-room",
                    resource_type="group",
                    permission="member",
                    desired=Desired.ACTIVE,
                    actual=Actual.NONE,
                    duration_seconds=600,
                    starts_at=now,
                    ends_at=now + timedelta(minutes=10),
                    principal=grantee,
                    created_at=now,
                    updated_at=now,
                )
            )
    worker = setup.worker(clock, per_integration=2)  # both target calls run at once
    with _meeting_before(setup, re.compile(r"\s*INSERT INTO groups\b"), parties=2) as inserts:
        assert worker.run_once() == 2
    assert len(inserts) == 2  # each created the group
    with transaction(setup.factory) as session:
        (group,) = session.scalars(select(Group).where(Group.name == "war-room")).all()
        sources = session.scalars(select(GroupMember.source).where(GroupMember.group_id == group.id)).all()
        assert sorted(sources) == sorted(f"grant:{g}" for g in grant_ids)
        actual = session.scalars(select(Grant.actual).where(Grant.id.in_(grant_ids))).all()
        assert actual == [Actual.ACTIVE] * 2


def test_a_worker_that_loses_a_claim_race_wakes_for_the_winners_lease_not_after_it(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    """The loser of a claim race skips the row while the winner's claim is not yet committed; its
    next wake-up must still come before the winner's lease lapses (should the winner die holding it),
    not after a long idle sleep, and once the claim is visible it sleeps until that lapse, no sooner."""
    setup.add_postgres("pg", postgres_admin_url, target_database())
    now = clock()
    [grant_id] = setup.add_grants("pg", expires(now, [3600]), now=now)
    lease = Tuning().claim_lease
    loser = setup.worker(clock, worker_id="loser")
    with transaction(setup.factory) as winner:  # another worker's claim, between its lock and commit
        row = winner.scalars(select(Grant).where(Grant.id == grant_id).with_for_update()).one()
        row.claimed_by, row.claimed_until = "winner", now + lease
        winner.flush()
        assert loser.run_once() == 0  # the row is locked: skipped
        assert grant_row_claim(setup, grant_id) == (None, None)  # what the loser can see
        assert loser.seconds_until_next() < 1, _rows(setup, [grant_id])
    assert loser.seconds_until_next() == pytest.approx(lease.total_seconds())
    clock.advance(seconds=lease.total_seconds())  # the winner died holding it
    assert loser.run_once() == 1
    assert grant_row_claim(setup, grant_id) == (None, None)  # done and recorded


def test_a_worker_does_not_spin_while_another_retries_a_row(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    """A row held by another worker for a retry keeps its past retry time until recorded; the time to
    wake for is the holder's lease, not that past moment (which would mean a pass after pass)."""
    setup.add_postgres("pg", postgres_admin_url, target_database())
    now = clock()
    [grant_id] = setup.add_grants("pg", expires(now, [3600]), now=now)
    lease = Tuning().claim_lease
    with transaction(setup.factory) as session:
        row = session.get(Grant, grant_id)
        assert row is not None
        row.attempts, row.next_attempt_at = 1, now - timedelta(seconds=5)
        row.claimed_by, row.claimed_until = "holder", now + lease
    watcher = setup.worker(clock, worker_id="watcher")
    assert watcher.run_once() == 0
    assert watcher.seconds_until_next() == pytest.approx(lease.total_seconds())
