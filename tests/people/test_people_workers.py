"""Several workers on one PostgreSQL store: their people passes (re-evaluation and automatic flows) run
at the same moment, each holding its transaction open until the other has read what is held, and
still every automatic unit is granted once, ended once, and has one login role in the target."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.flows import FlowSpec
from sluice.domain.states import Desired
from sluice.events.audit import Action
from sluice.services.directory.changes import set_group
from sluice.services.grants import people_pass as people_module
from sluice.services.grants.people_pass import RETRY_WHEN_BUSY, PeopleDuty
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store import locks
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import AccessFlow, AuditEvent, Base, Grant, Group, GroupMember, Identity, Integration
from sluice.worker.loop import Worker
from tests.conftest import Clock

PREFIX = f"pw{secrets.token_hex(3)}_"
DATABASES = 3  # N
IDENTITIES = 6  # M
LEAVING = ["dba0@example.com", "dba1@example.com"]
NOT_IN_DBA = "no longer eligible: not in group dba"


@pytest.fixture(scope="module")
def databases(postgres_admin_url: str) -> Iterator[list[str]]:
    names = [f"sluice_pw_{secrets.token_hex(4)}" for _ in range(DATABASES)]
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield names
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for (role,) in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [PREFIX]):
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@dataclass
class Store:
    factory: sessionmaker[Session]
    clock: Clock
    admin_url: str

    def duty(self) -> PeopleDuty:
        """One worker's people duty, with its own connector hub as in its own process."""
        return PeopleDuty(self.factory, hub=ConnectorHub(self.factory), clock=self.clock)

    def grants(self) -> list[Grant]:
        with transaction(self.factory) as session:
            rows = list(session.scalars(select(Grant).join(Identity)))
            for grant in rows:
                grant.identity.email  # noqa: B018 - loaded before the session closes
            session.expunge_all()
            return rows

    def live_units(self) -> Counter[tuple[str, str, str]]:
        return Counter(
            (g.identity.email, g.resource_path, g.permission)
            for g in self.grants()
            if g.desired == Desired.ACTIVE
        )

    def events(self, action: Action) -> Counter[str]:
        """How many events of this kind each grant has."""
        with transaction(self.factory) as session:
            return Counter(session.scalars(select(AuditEvent.subject_id).where(AuditEvent.action == action)))

    def queued(self) -> int:
        with transaction(self.factory) as session:
            return session.scalar(select(func.count()).select_from(PeopleChange)) or 0

    def leave_dba(self, emails: list[str]) -> None:
        with transaction(self.factory) as session:
            set_group(
                session,
                name="dba",
                description=None,
                members=None,
                add=[],
                remove=emails,
                actor="admin@example.com",
                now=self.clock(),
            )

    def waiting_on_a_lock(self) -> bool:
        with transaction(self.factory) as session:
            waiting = session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            return bool(waiting)

    def login_roles(self) -> set[str]:
        with psycopg.connect(self.admin_url) as conn:
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) AND rolcanlogin", [PREFIX]
            )
            return {r[0] for r in rows}


@pytest.fixture
def store(
    make_pg_database: Callable[[str], str], postgres_admin_url: str, databases: list[str], clock: Clock
) -> Iterator[Store]:
    engine = make_engine(make_pg_database("sluice_workers"))
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    now = clock()
    with transaction(factory) as session:
        session.add(Group(id="grp_dba", name="dba", source="config"))
        for i in range(IDENTITIES):
            session.add(
                Identity(
                    id=f"id_{i}",
                    email=f"dba{i}@example.com",
                    name=f"DBA {i}",
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
            )
            session.flush()
            session.add(GroupMember(group_id="grp_dba", identity_id=f"id_{i}", source="config"))
        session.add(_integration(postgres_admin_url, databases, now))
        flow = FlowSpec.model_validate(
            {
                "name": "dba-connect",
                "trigger": "automatic",
                "requesters": [{"group": "dba"}],
                "targets": [{"integration": "pg", "type": "database", "permissions": ["connect"]}],
                "max_duration": "4h",
            }
        )
        session.add(
            AccessFlow(
                id="flow_dba",
                name=flow.name,
                spec=flow.model_dump(mode="json"),
                created_at=now,
                updated_at=now,
            )
        )
    sync_integration(factory, ConnectorHub(factory), "pg", clock=clock)
    yield Store(factory, clock, postgres_admin_url)
    engine.dispose()


def _integration(admin_url: str, databases: list[str], now: datetime) -> Integration:
    params = conninfo_to_dict(admin_url)
    return Integration(
        id="int_pg",
        name="pg",
        kind="postgresql",
        owner="admin@example.com",
        created_at=now,
        updated_at=now,
        config={
            "host": params.get("host", "127.0.0.1"),
            "port": int(params.get("port") or 5432),
            "user": params.get("user", "postgres"),
            "dbname": params.get("dbname", "postgres"),
            "role_prefix": PREFIX,
            "databases": databases,
        },
    )


def expected_units(databases: list[str]) -> set[tuple[str, str, str]]:
    """(grantee, resource, permission) of every unit the dba flow makes due."""
    return {(f"dba{i}@example.com", f"pg/{db}", "connect") for i in range(IDENTITIES) for db in databases}


def run_side_by_side(duties: list[PeopleDuty], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each duty's pass in its own thread. Each holds its people-pass transaction open until every
    one has reached the end of its own, so no pass commits before the others have read what is held:
    without a lock between them, each would miss the others' new grants."""
    barrier = threading.Barrier(len(duties))
    take_lock = people_module.try_duty_lock

    def meet_before_commit(session: Session, duty: locks.Duty) -> bool:
        event.listen(session, "before_commit", lambda _s: barrier.wait(timeout=60), once=True)
        return take_lock(session, duty)

    with monkeypatch.context() as patch:
        patch.setattr(people_module, "try_duty_lock", meet_before_commit)
        with ThreadPoolExecutor(len(duties)) as pool:
            for future in [pool.submit(d.run) for d in duties]:
                future.result()


@pytest.mark.postgres
def test_two_workers_grant_each_automatic_unit_once_and_end_it_once(
    store: Store, databases: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    duties = [store.duty(), store.duty()]
    run_side_by_side(duties, monkeypatch)
    expected = expected_units(databases)
    assert store.live_units() == Counter(expected)
    granted = store.grants()
    assert len(granted) == DATABASES * IDENTITIES
    assert store.events(Action.AUTOMATIC_GRANTED) == Counter({g.id: 1 for g in granted})

    worker = Worker(
        store.factory,
        hub=ConnectorHub(store.factory),
        box=SecretBox.load(tmp_path, None),
        clock=store.clock,
        worker_id="w3",
        sync_inventory=False,
    )
    worker.run_once()
    assert store.login_roles() == {g.principal for g in granted}

    store.leave_dba(LEAVING)
    run_side_by_side(duties, monkeypatch)
    leaving = {g.id for g in granted if g.identity.email in LEAVING}
    assert len(leaving) == DATABASES * len(LEAVING)
    assert store.events(Action.GRANT_NO_LONGER_ELIGIBLE) == Counter({gid: 1 for gid in leaving})
    after = {g.id: g for g in store.grants()}
    assert {gid for gid, g in after.items() if g.desired == Desired.REVOKED} == leaving
    assert {after[gid].end_reason for gid in leaving} == {NOT_IN_DBA}
    assert store.live_units() == Counter(u for u in expected if u[0] not in LEAVING)

    worker.run_once()
    assert store.login_roles() == {g.principal for g in granted if g.id not in leaving}


@pytest.mark.postgres
def test_an_automatic_grant_another_transaction_holds_is_waited_for_not_granted_again(
    store: Store, databases: list[str]
) -> None:
    duty = store.duty()
    duty.run()
    held = store.grants()[0]
    store.clock.advance(hours=3)  # past half the lease: the pass renews every grant
    with ThreadPoolExecutor(1) as pool:
        with transaction(store.factory) as other_worker:  # say, recording a target call on that grant
            other_worker.scalars(select(Grant).where(Grant.id == held.id).with_for_update()).all()
            future = pool.submit(duty.run)
            deadline = time.monotonic() + 30
            while not (future.done() or store.waiting_on_a_lock() or time.monotonic() > deadline):
                time.sleep(0.02)
        future.result(timeout=60)
    assert store.live_units() == Counter(expected_units(databases))
    renewed = {g.id: g for g in store.grants()}[held.id]
    assert renewed.ends_at == store.clock() + timedelta(hours=4)


@pytest.mark.postgres
def test_a_change_queued_while_another_worker_holds_the_pass_is_acted_on_later(store: Store) -> None:
    duty = store.duty()
    duty.run()
    assert len(store.live_units()) == DATABASES * IDENTITIES
    store.leave_dba(LEAVING[:1])
    with transaction(store.factory) as other_worker:
        assert locks.try_duty_lock(other_worker, locks.Duty.PEOPLE)
        duty.run()  # skipped: nothing drained, nothing ended, a retry a moment later
        assert store.queued() == 1
        assert store.events(Action.GRANT_NO_LONGER_ELIGIBLE) == Counter()
        with transaction(store.factory) as session:
            assert duty.next_due(session, store.clock()) == store.clock() + RETRY_WHEN_BUSY
    duty.run()
    assert store.queued() == 0
    assert sum(store.events(Action.GRANT_NO_LONGER_ELIGIBLE).values()) == DATABASES
    assert LEAVING[0] not in {email for email, _, _ in store.live_units()}


@pytest.mark.postgres
def test_the_duty_lock_is_exclusive_between_transactions_and_reentrant_within_one(store: Store) -> None:
    with transaction(store.factory) as first, transaction(store.factory) as second:
        assert locks.try_duty_lock(first, locks.Duty.PEOPLE)
        assert locks.try_duty_lock(first, locks.Duty.PEOPLE)
        assert not locks.try_duty_lock(second, locks.Duty.PEOPLE)
    with transaction(store.factory) as third:  # released at commit
        assert locks.try_duty_lock(third, locks.Duty.PEOPLE)


def test_on_sqlite_the_duty_lock_is_always_granted(tmp_path: Path) -> None:
    factory = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'one.db'}"))
    with transaction(factory) as first, transaction(factory) as second:
        assert locks.try_duty_lock(first, locks.Duty.PEOPLE)
        assert locks.try_duty_lock(second, locks.Duty.PEOPLE)
