"""Quality: an extension racing the expiry of its grant ends consistent in every order, on PostgreSQL.

The orders are forced, not left to luck: one side holds the grant's row (an open transaction, or a
worker held at its target call by a hook) while the other runs, and the test checks in the store's
own view of its locks that the waiting side really waits. Whatever the order, exactly one of two ends:

* the extension wins: the grant is active with the new end time, and its role is in the target, usable
  with its password, with `VALID UNTIL` = the new end + the connector's margin;
* the expiry wins: the extension is refused with a conflict, the grant is revoked and its role gone.

Never extended in the store but revoked (or expiring early) in the target, nor the reverse."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import AccessUnit, Connector
from sluice.domain.errors import Conflict
from sluice.domain.flows import FlowSpec
from sluice.domain.states import Actual, Desired, RequestStatus
from sluice.events.audit import Action
from sluice.services.grants.extensions import extend_grant
from sluice.services.grants.revocation import expire_due_grants
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow, AccessRequest, AuditEvent, Grant, Identity, Integration
from sluice.store.types import new_id
from sluice.worker.loop import Worker
from tests.conftest import Clock
from tests.faults.harness import Setup, admin_params, can_read, login_roles

MARGIN = timedelta(seconds=60)  # the PostgreSQL connector's default `expiry_margin_seconds`
LEASE = timedelta(seconds=30)
ENDS_IN = timedelta(minutes=5)
EXTENSION = timedelta(minutes=30)
FLOW = FlowSpec.model_validate(
    {
        "name": "pg-read",
        "requesters": [{"user": "ada@example.com"}],
        "targets": [{"integration": "pg", "type": "table", "permissions": ["read"]}],
        "max_duration": "1h",
        "extensions": {"max_count": 3, "length": "1h", "ceiling": "4h"},
    }
)


class _HeldConnector:
    """A real connector whose `grant` / `revoke` the hub can hold just before or just after the target
    call."""

    def __init__(self, inner: Connector, hub: HoldingHub) -> None:
        self._inner = inner
        self._hub = hub

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        self._hub.checkpoint("grant", "before")
        connection = self._inner.grant(unit)
        self._hub.checkpoint("grant", "after")
        return connection

    def revoke(self, unit: AccessUnit) -> None:
        self._hub.checkpoint("revoke", "before")
        self._inner.revoke(unit)
        self._hub.checkpoint("revoke", "after")


class HoldingHub(ConnectorHub):
    """`hold(op, when)`: the next worker call of `op` stops before or after the target call (`reached`
    is set) until `go` is set."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        super().__init__(factory, timeout_seconds=5)
        self._held: tuple[str, str] | None = None
        self.reached = threading.Event()
        self.go = threading.Event()

    def hold(self, operation: str, when: str = "before") -> None:
        self._held = (operation, when)
        self.reached.clear()
        self.go.clear()

    def checkpoint(self, operation: str, when: str) -> None:
        if self._held != (operation, when):
            return
        self._held = None
        self.reached.set()
        assert self.go.wait(30), "the test never let the held call go on"

    def for_integration(self, integration: Integration) -> Connector:
        return _HeldConnector(super().for_integration(integration), self)  # type: ignore[return-value]


@pytest.fixture
def clock() -> Clock:
    """Real time to start with: `VALID UNTIL` is enforced by the target's own clock at login."""
    return Clock(datetime.now(UTC).replace(microsecond=0))


@dataclass
class Scene:
    """One approved grant of ada's on a PostgreSQL table, made in the target, ending `ENDS_IN` from now
    under a flow that allows extensions."""

    setup: Setup
    clock: Clock
    hub: HoldingHub
    worker: Worker
    admin_url: str
    database: str
    prefix: str
    grant_id: str
    password: str = ""

    @property
    def ends_at(self) -> datetime:
        ends_at = self.row().ends_at
        assert ends_at is not None
        return ends_at

    def row(self) -> Grant:
        with transaction(self.setup.factory) as session:
            grant = session.get(Grant, self.grant_id)
            assert grant is not None
            return grant

    def extend(self, session: Session, now: datetime) -> datetime:
        ada = session.get(Identity, "id_ada")
        assert ada is not None
        grant = extend_grant(
            session, grant_id=self.grant_id, actor=ada, is_admin=False, by=EXTENSION, reason="", now=now
        )
        assert grant.ends_at is not None
        return grant.ends_at

    def extend_now(self, now: datetime | None = None) -> datetime:
        with transaction(self.setup.factory) as session:
            return self.extend(session, now or self.clock())

    def valid_until(self) -> datetime | None:
        with psycopg.connect(**admin_params(self.admin_url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", [self.row().principal]
            ).fetchone()
        assert row is not None, "the grant's role is not in the target"
        value: datetime | None = row[0]
        return value

    def usable(self) -> bool:
        return can_read(self.admin_url, self.database, self.row().principal, self.password)

    def extensions_recorded(self) -> int:
        with transaction(self.setup.factory) as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.subject_id == self.grant_id, AuditEvent.action == Action.GRANT_EXTENDED)
                )
                or 0
            )

    def assert_extension_won(self, ends_at: datetime, extensions: int = 1) -> None:
        grant = self.row()
        assert (grant.desired, grant.actual, grant.ends_at) == (Desired.ACTIVE, Actual.ACTIVE, ends_at)
        assert grant.extensions == self.extensions_recorded() == extensions
        assert self.valid_until() == ends_at + MARGIN  # the target expires it when the store does
        assert self.usable()

    def assert_expiry_won(self, ends_at: datetime) -> None:
        grant = self.row()
        assert (grant.desired, grant.actual, grant.ends_at) == (Desired.REVOKED, Actual.REVOKED, ends_at)
        assert grant.extensions == self.extensions_recorded() == 0
        assert login_roles(self.admin_url, self.prefix) == set()
        assert not self.usable()


def _approved_request(session: Session, now: datetime) -> str:
    session.add(
        AccessFlow(
            id=new_id("flw"),
            name=FLOW.name,
            spec=FLOW.model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
    )
    request = AccessRequest(
        id=new_id("req"),
        requester_id="id_ada",
        flow_name=FLOW.name,
        reason="incident",
        duration_seconds=int(ENDS_IN.total_seconds()),
        status=RequestStatus.APPROVED,
        created_at=now,
        decided_at=now,
    )
    session.add(request)
    session.flush()
    return request.id


@pytest.fixture
def scene(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> Iterator[Scene]:
    database = target_database()
    prefix = setup.add_postgres("pg", postgres_admin_url, database)
    hub = HoldingHub(setup.factory)
    now = clock()
    (grant_id,) = setup.add_grants("pg", [now + ENDS_IN], now=now, hub=hub)
    with transaction(setup.factory) as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        grant.request_id = _approved_request(session, now)
    worker = setup.worker(clock, hub=hub, claim_lease=LEASE)
    made = Scene(setup, clock, hub, worker, postgres_admin_url, database, prefix, grant_id)
    worker.run_once()
    made.password = setup.box.open(made.row().credentials or "")
    assert made.valid_until() == now + ENDS_IN + MARGIN and made.usable()
    yield made
    made.hub.go.set()  # never leave a held worker thread behind


def _wait_until_waiting_on_a_lock(setup: Setup) -> None:
    """Until some session of the store's database waits on a row lock (the store's own view)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with setup.engine.connect() as connection:
            if connection.scalar(query):
                return
        time.sleep(0.01)
    pytest.fail("the contender never waited on the grant's row lock")


def _in_thread(action: Callable[[], Any]) -> Callable[..., Any]:
    """Start `action` in a thread; the returned function joins it (waiting up to `timeout` seconds) and
    gives what it returned or raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()

    def join(timeout: float = 30) -> Any:
        thread.join(timeout=timeout)
        assert not thread.is_alive() and outcome, "the contender did not finish"
        return outcome[0]

    return join


def test_expiry_first_the_extension_waits_for_it_and_is_refused(scene: Scene) -> None:
    end = scene.ends_at
    just_before = end - timedelta(seconds=1)  # the grantee asked a second before the end...
    scene.clock.now = end  # ...and the worker, at the end, got to the row first
    with transaction(scene.setup.factory) as session:
        assert [g.id for g in expire_due_grants(session, now=end)] == [scene.grant_id]
        extension = _in_thread(lambda: scene.extend_now(just_before))
        _wait_until_waiting_on_a_lock(scene.setup)
    refused = extension()
    assert isinstance(refused, Conflict) and "not active (it is revoked)" in refused.detail
    scene.worker.run_once()
    scene.assert_expiry_won(end)


def test_extension_first_the_expiry_passes_the_row_by(scene: Scene) -> None:
    end = scene.ends_at
    scene.clock.now = end
    with transaction(scene.setup.factory) as session:
        extended_to = scene.extend(session, end - timedelta(seconds=1))
        # The worker's expiry runs while the extension holds the row: it skips it, it does not wait.
        assert _in_thread(scene.worker.expire_due)(timeout=5) == 0
    assert extended_to == end + EXTENSION
    scene.worker.run_once()  # still at the old end: nothing is due, the new end is sent to the target
    scene.assert_extension_won(extended_to)

    scene.clock.now = extended_to  # and the new end is kept like the old one would have been
    scene.worker.run_once()
    assert login_roles(scene.admin_url, scene.prefix) == set()
    assert (scene.row().desired, scene.row().actual) == (Desired.REVOKED, Actual.REVOKED)


def test_an_extension_at_or_after_the_end_is_refused_before_the_worker_gets_there(scene: Scene) -> None:
    end = scene.ends_at
    for late in (timedelta(0), timedelta(seconds=5)):
        with pytest.raises(Conflict, match="can no longer be extended"):
            scene.extend_now(end + late)
    scene.clock.now = end + timedelta(seconds=5)
    scene.worker.run_once()
    scene.assert_expiry_won(end)


def test_an_extension_while_the_revoke_runs_is_refused(scene: Scene) -> None:
    end = scene.ends_at
    scene.clock.now = end
    scene.hub.hold("revoke")
    worker = _in_thread(scene.worker.run_once)
    assert scene.hub.reached.wait(10)  # expired, claimed, at the target's door
    with pytest.raises(Conflict, match="not active"):
        scene.extend_now(end - timedelta(seconds=1))
    scene.hub.go.set()
    assert worker() == 1
    scene.assert_expiry_won(end)


def test_an_extension_while_the_worker_applies_the_last_one_waits_its_turn(scene: Scene) -> None:
    first = scene.extend_now(scene.ends_at - timedelta(minutes=1))
    scene.hub.hold("grant")
    worker = _in_thread(scene.worker.run_once)
    assert scene.hub.reached.wait(10)  # sending `first` to the target
    with pytest.raises(Conflict, match="being applied"):
        scene.extend_now()
    scene.hub.go.set()
    assert worker() == 1
    scene.assert_extension_won(first)

    second = scene.extend_now()  # once applied, the next extension goes through
    scene.worker.run_once()
    scene.assert_extension_won(second, extensions=2)


def test_a_worker_whose_claim_lapsed_does_not_record_an_old_end_as_applied(scene: Scene) -> None:
    """The held worker sent the first extension's end in time, then was slow to record it (a store
    hiccup): past its lease, an extension may go on, and that late record must not count."""
    first = scene.extend_now(scene.ends_at - timedelta(minutes=1))
    scene.hub.hold("grant", "after")
    worker = _in_thread(scene.worker.run_once)
    assert scene.hub.reached.wait(10)  # `first` is in the target; the outcome is not recorded yet
    assert scene.valid_until() == first + MARGIN
    lapsed = scene.clock() + LEASE + timedelta(seconds=1)  # as the grantee's server sees it
    second = scene.extend_now(lapsed)
    assert second == first + EXTENSION
    scene.hub.go.set()
    worker()
    scene.worker.run_once()
    scene.assert_extension_won(second, extensions=2)
