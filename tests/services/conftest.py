"""A small seeded store for service and worker tests: built-in groups, so no target server is needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.flows import FlowSpec
from sluice.services.grants.secrets import SecretBox
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import AccessFlow, Base, Group, GroupMember, Identity, Integration
from sluice.worker.loop import Worker
from tests.conftest import Clock


@dataclass
class Store:
    factory: sessionmaker[Session]
    hub: ConnectorHub
    box: SecretBox
    clock: Clock

    def identity(self, session: Session, email: str) -> Identity:
        return session.query(Identity).filter_by(email=email).one()

    def worker(self, worker_id: str = "w1", **options: Any) -> Worker:
        """A worker on this store; `options` are the Worker's others (tuning, channels, …)."""
        return Worker(
            self.factory, hub=self.hub, box=self.box, clock=self.clock, worker_id=worker_id, **options
        )


def seed(factory: sessionmaker[Session], clock: Clock) -> None:
    now = clock()
    with transaction(factory) as session:
        people = {
            "alice@example.com": ("engineering", "carol@example.com"),
            "bob@example.com": ("sre", None),
            "carol@example.com": ("managers", None),
        }
        groups = {name: Group(id=f"grp_{name}", name=name) for name in ("engineering", "sre", "managers")}
        session.add_all(groups.values())
        for index, (email, (group, manager)) in enumerate(people.items()):
            session.add(
                Identity(
                    id=f"id_{index}",
                    email=email,
                    name=email.split("@")[0].title(),
                    manager_email=manager,
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
            )
            session.flush()
            session.add(GroupMember(group_id=groups[group].id, identity_id=f"id_{index}", source="config"))
        session.add(
            Integration(
                id="int_groups",
                name="groups",
                kind="builtin_groups",
                config={"groups": [{"name": "oncall"}, {"name": "dba"}]},
                created_at=now,
                updated_at=now,
            )
        )
        spec = FlowSpec.model_validate(
            {
                "name": "oncall-by-manager",
                "requesters": [{"group": "engineering"}, {"group": "sre"}],
                "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
                "approvers": [{"manager": True}, {"group": "managers"}],
                "max_duration": "8h",
                "pending_timeout": "1h",
            }
        )
        session.add(
            AccessFlow(
                id="flow_1", name=spec.name, spec=spec.model_dump(mode="json"), created_at=now, updated_at=now
            )
        )


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    seed(factory, clock)
    hub = ConnectorHub(factory)
    sync_integration(factory, hub, "groups", clock=clock)
    return Store(factory, hub, SecretBox.load(tmp_path, None), clock)


def approved_oncall_request(store: Store, minutes: int = 30) -> str:
    now = store.clock()
    with transaction(store.factory) as session:
        request = submit_request(
            session,
            hub=store.hub,
            requester=store.identity(session, "alice@example.com"),
            units=[UnitAsked("groups/oncall", "member")],
            duration=timedelta(minutes=minutes),
            reason="incident 7",
            now=now,
        )
        approve_request(
            session,
            request_id=request.id,
            approver=store.identity(session, "carol@example.com"),
            reason="ok",
            now=now,
        )
        return request.grants[0].id
