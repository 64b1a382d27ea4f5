"""End to end on a real PostgreSQL target (and a PostgreSQL store): approvals, automatic flows on
shifts and groups, a database created later, leaving a group and deactivation, each checked in the
target's catalog."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import select

from sluice.domain.flows import FlowSpec
from sluice.domain.states import Desired
from sluice.services.directory.changes import set_group, set_identity
from sluice.services.grants.revocation import revoke_grant
from sluice.services.grants.secrets import SecretBox
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.people_tables import Schedule
from sluice.store.tables import AccessFlow, Base, Grant, Group, GroupMember, Identity, Integration
from sluice.worker.loop import Worker
from tests.conftest import Clock

pytestmark = pytest.mark.postgres

PREFIX = f"pp{secrets.token_hex(3)}_"
STEMS = {"alice": ["sre"], "bob": ["dba"], "carol": ["managers"], "erin": ["dba"], "olga": []}


def email(stem: str) -> str:
    return f"{stem}@example.com"


@pytest.fixture(scope="module")
def admin_params(postgres_admin_url: str) -> dict[str, Any]:
    params = conninfo_to_dict(postgres_admin_url)
    return {k: params[k] for k in ("host", "port", "user", "dbname", "password") if params.get(k)}


def _admin(params: dict[str, Any], dbname: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(**{**params, **({"dbname": dbname} if dbname else {})}, autocommit=True)


@dataclass
class Target:
    params: dict[str, Any]
    first: str
    later: str

    def create_later(self) -> None:
        with _admin(self.params) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.later)))

    def roles_of(self, grants: list[Grant]) -> set[str]:
        with _admin(self.params) as conn:
            return {
                r[0]
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [[g.principal for g in grants]]
                )
            }

    def can(self, principal: str, what: str, on: str) -> bool:
        with _admin(self.params, self.first) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s AND rolcanlogin", [principal]
            ).fetchone()
            if exists is None:
                return False
            query = {
                "connect": "SELECT has_database_privilege(%s, %s, 'CONNECT')",
                "read": "SELECT has_table_privilege(%s, %s, 'SELECT')",
            }[what]
            row = conn.execute(query, [principal, on]).fetchone()
            return bool(row and row[0])


@pytest.fixture
def target(admin_params: dict[str, Any]) -> Iterator[Target]:
    first, later = f"sluice_pp_{secrets.token_hex(4)}", f"sluice_pp_{secrets.token_hex(4)}"
    with _admin(admin_params) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(first)))
    with _admin(admin_params, first) as conn:
        conn.execute(
            """
            CREATE TABLE public.ledger (id int);
            COMMENT ON TABLE public.ledger IS 'sluice: team=payments owner=olga@example.com';
            CREATE TABLE public.refunds (id int);
            COMMENT ON TABLE public.refunds IS 'sluice: team=payments';
            CREATE TABLE public.staff (id int);
            """
        )
    try:
        yield Target(admin_params, first, later)
    finally:
        with _admin(admin_params) as conn:
            for name in (first, later):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for (role,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [PREFIX]
            ):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@dataclass
class World:
    factory: Any
    hub: ConnectorHub
    worker: Worker
    clock: Clock
    target: Target

    def flow(self, spec: dict[str, Any]) -> None:
        flow = FlowSpec.model_validate(spec)
        with transaction(self.factory) as session:
            now = self.clock()
            session.add(
                AccessFlow(
                    id=f"flow_{flow.name}",
                    name=flow.name,
                    spec=flow.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
            )

    def sync(self) -> None:
        sync_integration(self.factory, self.hub, "pg", clock=self.clock)

    def grants(self, stem: str, live: bool = True) -> list[Grant]:
        with transaction(self.factory) as session:
            query = select(Grant).join(Identity).where(Identity.email == email(stem))
            if live:
                query = query.where(Grant.desired == Desired.ACTIVE)
            rows = list(session.scalars(query.order_by(Grant.resource_path)))
            session.expunge_all()
            return rows

    def identity(self, session: Any, stem: str) -> Identity:
        return session.scalar(select(Identity).where(Identity.email == email(stem)))


@pytest.fixture
def world(make_pg_database: Callable[[str], str], target: Target, tmp_path: Any) -> Iterator[World]:
    engine = make_engine(make_pg_database("sluice_people"))
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    clock = Clock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    now = clock()
    with transaction(factory) as session:
        groups = {g: Group(id=f"grp_{g}", name=g) for g in ("sre", "dba", "managers")}
        session.add_all(groups.values())
        for stem, member_of in STEMS.items():
            session.add(
                Identity(
                    id=f"id_{stem}",
                    email=email(stem),
                    name=stem,
                    attributes={},
                    manager_email=email("carol") if stem == "alice" else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.flush()
            for g in member_of:
                session.add(GroupMember(group_id=groups[g].id, identity_id=f"id_{stem}", source="config"))
        p = target.params
        session.add(
            Integration(
                id="int_pg",
                name="pg",
                kind="postgresql",
                owner=email("carol"),
                created_at=now,
                updated_at=now,
                config={
                    "host": p.get("host", "127.0.0.1"),
                    "port": int(p.get("port", 5432)),
                    "user": p.get("user", "postgres"),
                    "dbname": p.get("dbname", "postgres"),
                    "role_prefix": PREFIX,
                    "databases": [target.first, target.later],
                },
            )
        )
        session.add(
            Integration(
                id="int_groups",
                name="groups",
                kind="builtin_groups",
                owner=email("carol"),
                created_at=now,
                updated_at=now,
                config={"groups": [{"name": "responders"}]},
            )
        )
    hub = ConnectorHub(factory, clock=clock)
    worker = Worker(
        factory, hub=hub, box=SecretBox.load(tmp_path, None), clock=clock, worker_id="w", sync_inventory=False
    )
    w = World(factory, hub, worker, clock, target)
    w.sync()
    sync_integration(factory, hub, "groups", clock=clock)
    yield w
    engine.dispose()


def test_dba_automatic_flow_covers_a_database_created_later_and_follows_the_group(world: World) -> None:
    world.flow(
        {
            "name": "dba-connect",
            "trigger": "automatic",
            "requesters": [{"group": "dba"}],
            "targets": [{"integration": "pg", "type": "database", "permissions": ["connect"]}],
            "max_duration": "4h",
        }
    )
    world.worker.run_once()
    (bob_first,) = world.grants("bob")
    assert world.target.can(bob_first.principal, "connect", world.target.first)
    world.target.create_later()
    world.sync()
    world.worker.run_once()
    bobs = world.grants("bob")
    assert [g.resource_path for g in bobs] == sorted([f"pg/{world.target.first}", f"pg/{world.target.later}"])
    later = next(g for g in bobs if g.resource_path.endswith(world.target.later))
    assert world.target.can(later.principal, "connect", world.target.later)
    erin = world.grants("erin")
    assert len(erin) == 2
    with transaction(world.factory) as session:
        set_group(
            session,
            name="dba",
            description=None,
            members=None,
            add=[],
            remove=[email("erin")],
            actor="admin@example.com",
            now=world.clock(),
        )
    world.worker.run_once()
    assert world.grants("erin") == []
    assert world.target.roles_of(erin) == set()
    ended = world.grants("erin", live=False)
    assert {g.end_reason for g in ended} == {"no longer eligible: not in group dba"}


def test_on_call_reads_payments_tables_exactly_during_the_shift(world: World) -> None:
    with transaction(world.factory) as session:
        now = world.clock()
        session.add(
            Schedule(
                id="s1",
                name="payments",
                created_at=now,
                updated_at=now,
                spec={
                    "name": "payments",
                    "members": [email("alice"), email("erin")],
                    "rotation": "1d",
                    "handoff": "09:00",
                    "timezone": "UTC",
                    "start": "2026-01-05",
                },
            )
        )
    world.flow(
        {
            "name": "payments-oncall",
            "trigger": "automatic",
            "requesters": [{"shift": "payments"}],
            "targets": [
                {
                    "integration": "pg",
                    "type": "table",
                    "select": {"tags": ["team=payments"]},
                    "permissions": ["read"],
                }
            ],
            "max_duration": "2h",
        }
    )
    world.worker.run_once()
    assert world.grants("alice") == []  # 08:00: the first shift starts at 09:00
    assert 0 < world.worker.seconds_until_next() <= 3600
    world.clock.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    world.worker.run_once()
    alice = world.grants("alice")
    assert [g.resource_path.rsplit("/", 1)[-1] for g in alice] == ["ledger", "refunds"]
    assert all(
        world.target.can(
            g.principal, "read", "public.ledger" if "ledger" in g.resource_path else "public.refunds"
        )
        for g in alice
    )
    world.clock.now = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)  # the handoff
    world.worker.run_once()
    assert world.grants("alice") == []
    assert world.target.roles_of(alice) == set()
    assert len(world.grants("erin")) == 2


def test_owner_approval_then_deactivation_revokes_in_the_target(world: World) -> None:
    world.flow(
        {
            "name": "sre-read",
            "requesters": [{"group": "sre"}],
            "targets": [{"integration": "pg", "type": "table", "permissions": ["read"]}],
            "approval": {"groups": [{"approvers": [{"resource_owner": True}]}]},
            "max_duration": "4h",
        }
    )
    with transaction(world.factory) as session:
        alice = world.identity(session, "alice")
        tagged = submit_request(
            session,
            hub=world.hub,
            requester=alice,
            reason="audit",
            now=world.clock(),
            units=[UnitAsked(f"pg/{world.target.first}/public/ledger", "read")],
            duration=timedelta(hours=1),
        )
        untagged = submit_request(
            session,
            hub=world.hub,
            requester=alice,
            reason="audit",
            now=world.clock(),
            units=[UnitAsked(f"pg/{world.target.first}/public/staff", "read")],
            duration=timedelta(hours=1),
        )
        tagged_id, untagged_id = tagged.id, untagged.id
    with transaction(world.factory) as session, pytest.raises(Exception, match="not an approver"):
        approve_request(
            session,
            request_id=tagged_id,
            approver=world.identity(session, "carol"),
            reason="ok",
            now=world.clock(),
        )
    with transaction(world.factory) as session:
        approve_request(
            session,
            request_id=tagged_id,
            approver=world.identity(session, "olga"),
            reason="ok",
            now=world.clock(),
        )
        # Without an owner tag, the integration owner (carol) approves.
        approve_request(
            session,
            request_id=untagged_id,
            approver=world.identity(session, "carol"),
            reason="ok",
            now=world.clock(),
        )
    world.worker.run_once()
    grants = world.grants("alice")
    assert len(grants) == 2
    assert world.target.can(grants[0].principal, "read", "public.ledger")
    with transaction(world.factory) as session:
        set_identity(
            session,
            email=email("alice"),
            fields={"active": False},
            replace=False,
            actor="admin@example.com",
            now=world.clock(),
        )
    world.worker.run_once()
    assert world.grants("alice") == []
    assert world.target.roles_of(grants) == set()


def test_a_table_grant_ends_on_the_next_pass_after_the_group_membership_that_allowed_it(
    world: World,
) -> None:
    """Alice joins `responders` through a built-in group grant, and `responders` may read the ledger.
    Revoking the membership grant takes the ledger away on the worker's next pass (same instant), not
    at the periodic full re-evaluation five minutes on."""
    world.flow(
        {
            "name": "sre-responders",
            "requesters": [{"group": "sre"}],
            "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
            "max_duration": "8h",
        }
    )
    world.flow(
        {
            "name": "responders-ledger",
            "requesters": [{"group": "responders"}],
            "targets": [
                {
                    "integration": "pg",
                    "type": "table",
                    "select": {"names": ["ledger"]},
                    "permissions": ["read"],
                }
            ],
            "max_duration": "8h",
        }
    )
    ledger = f"pg/{world.target.first}/public/ledger"
    for resource, permission in (("groups/responders", "member"), (ledger, "read")):
        with transaction(world.factory) as session:
            submit_request(
                session,
                hub=world.hub,
                requester=world.identity(session, "alice"),
                reason="incident",
                now=world.clock(),
                units=[UnitAsked(resource, permission)],
                duration=timedelta(hours=2),
            )
        world.worker.run_once()
    membership, table = sorted(world.grants("alice"), key=lambda g: g.resource_path != "groups/responders")
    assert table.resource_path == ledger
    assert world.target.can(table.principal, "read", "public.ledger")

    with transaction(world.factory) as session:
        revoke_grant(
            session,
            grant_id=membership.id,
            actor=world.identity(session, "alice"),
            is_admin=False,
            reason="incident over",
            now=world.clock(),
        )
    world.worker.run_once()  # the membership ends in Sluice's group table
    world.worker.run_once()  # the next pass: the ledger grant is no longer allowed
    assert world.grants("alice") == []
    assert not world.target.can(table.principal, "read", "public.ledger")
    (ended,) = [g for g in world.grants("alice", live=False) if g.id == table.id]
    assert ended.end_reason == "no longer eligible: not in group responders"
