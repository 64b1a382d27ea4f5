"""A store for the people side: a directory, built-in groups as the target (no server needed), and
helpers to add flows and schedules, submit, decide and run the worker with a movable clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.flows import FlowSpec
from sluice.domain.shifts import ScheduleSpec
from sluice.services.grants.secrets import SecretBox
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.people_tables import Schedule
from sluice.store.queries import group_names_of
from sluice.store.tables import (
    AccessFlow,
    AccessRequest,
    Base,
    Grant,
    Group,
    GroupMember,
    Identity,
    Integration,
)
from sluice.worker.loop import Worker
from tests.conftest import Clock

# email stem: (groups, manager stem, attributes)
PEOPLE: dict[str, tuple[list[str], str | None, dict[str, str]]] = {
    "alice": (["engineering"], "carol", {"department": "payments", "location": "paris"}),
    "bob": (["sre"], "carol", {"department": "platform", "location": "lyon"}),
    "carol": (["managers"], None, {"department": "payments", "title": "manager"}),
    "dave": (["dba", "sre"], None, {}),
    "erin": (["dba"], None, {}),
    "frank": (["dba", "security"], None, {}),
    "gina": (["security"], None, {}),
    "olga": (["owners"], None, {}),
}
BUILTIN_GROUPS = ["oncall", "payments-ro", "audit"]


def email(stem: str) -> str:
    return f"{stem}@example.com"


@dataclass
class People:
    factory: sessionmaker[Session]
    hub: ConnectorHub
    box: SecretBox
    clock: Clock

    def worker(self) -> Worker:
        return Worker(
            self.factory, hub=self.hub, box=self.box, clock=self.clock, worker_id="w1", sync_inventory=False
        )

    def identity(self, session: Session, stem: str) -> Identity:
        row = session.scalar(select(Identity).where(Identity.email == email(stem)))
        assert row is not None
        return row

    def flow(self, spec: dict[str, Any]) -> FlowSpec:
        flow = FlowSpec.model_validate(spec)
        now = self.clock()
        with transaction(self.factory) as session:
            row = session.scalar(select(AccessFlow).where(AccessFlow.name == flow.name))
            if row is None:
                session.add(
                    AccessFlow(
                        id=f"flow_{flow.name}",
                        name=flow.name,
                        spec=flow.model_dump(mode="json"),
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                row.spec = flow.model_dump(mode="json")
                row.updated_at = now
        return flow

    def schedule(self, spec: dict[str, Any]) -> None:
        parsed = ScheduleSpec.model_validate(spec)
        now = self.clock()
        with transaction(self.factory) as session:
            session.add(
                Schedule(
                    id=f"sch_{parsed.name}",
                    name=parsed.name,
                    spec=parsed.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
            )

    def submit(self, stem: str, group: str = "oncall", minutes: int = 30, **extra: Any) -> str:
        with transaction(self.factory) as session:
            request = submit_request(
                session,
                hub=self.hub,
                requester=self.identity(session, stem),
                units=[UnitAsked(f"groups/{group}", "member")],
                duration=timedelta(minutes=minutes),
                reason="incident 7",
                now=self.clock(),
                **extra,
            )
            return request.id

    def status(self, request_id: str) -> str:
        with transaction(self.factory) as session:
            request = session.get(AccessRequest, request_id)
            assert request is not None
            return request.status

    def groups_of(self, stem: str) -> frozenset[str]:
        with transaction(self.factory) as session:
            return group_names_of(session, self.identity(session, stem).id, self.clock())

    def grants_of(self, stem: str) -> list[Grant]:
        with transaction(self.factory) as session:
            identity = self.identity(session, stem)
            rows = list(
                session.scalars(
                    select(Grant).where(Grant.identity_id == identity.id).order_by(Grant.created_at)
                )
            )
            session.expunge_all()
            return rows


def seed(factory: sessionmaker[Session], now: datetime) -> None:
    with transaction(factory) as session:
        names = {g for groups, _, _ in PEOPLE.values() for g in groups} | set(BUILTIN_GROUPS)
        groups = {name: Group(id=f"grp_{name}", name=name, source="config") for name in sorted(names)}
        session.add_all(groups.values())
        for stem, (member_of, manager, attributes) in PEOPLE.items():
            session.add(
                Identity(
                    id=f"id_{stem}",
                    email=email(stem),
                    name=stem.title(),
                    manager_email=email(manager) if manager else None,
                    attributes=attributes,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.flush()
            for group in member_of:
                session.add(GroupMember(group_id=groups[group].id, identity_id=f"id_{stem}", source="config"))
        session.add(
            Integration(
                id="int_groups",
                name="groups",
                kind="builtin_groups",
                owner=email("gina"),
                config={"groups": [{"name": n} for n in BUILTIN_GROUPS]},
                created_at=now,
                updated_at=now,
            )
        )


@pytest.fixture
def people(tmp_path: Path, clock: Clock) -> People:
    engine = make_engine(f"sqlite:///{tmp_path / 'people.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    seed(factory, clock())
    hub = ConnectorHub(factory, clock=clock)
    sync_integration(factory, hub, "groups", clock=clock)
    return People(factory, hub, SecretBox.load(tmp_path, None), clock)
