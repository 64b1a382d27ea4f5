"""A runtime on a real store, a seeded directory and policy, tokens, and a client that speaks as one of
the seeded people."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.domain.flows import FlowSpec
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.services.directory.tokens import create_token
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import AccessFlow, Group, GroupMember, Identity, Integration
from sluice.store.types import new_id
from sluice.worker.loop import Worker
from tests.conftest import Clock
from tests.migrated import migrate_new_store

PEOPLE = {
    # email stem: (groups, admin token)
    "alice": (["engineers"], False),
    "dave": (["engineers"], False),
    "bob": (["leads"], False),
    "carol": (["leads"], False),
    "root": ([], True),
}

ONCALL_FLOW = FlowSpec.model_validate(
    {
        "name": "oncall",
        "description": "Engineers join the on-call or DBA group for a while, with a lead's approval",
        "requesters": [{"group": "engineers"}],
        "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
        "approvers": [{"group": "leads"}],
        "max_duration": "4h",
    }
)


def email(who: str) -> str:
    return f"{who}@example.com"


def build_runtime(url: str, home: Path, clock: Clock, *, new_store: bool = True) -> Runtime:
    """A runtime on the store at `url`: a new, empty one is first made a migrated store; with
    `new_store=False`, a store another runtime already uses (a second server of it)."""
    if new_store:
        migrate_new_store(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    return Runtime(
        settings=Settings(home=home, database_url=url, secret_key=None),
        engine=engine,
        factory=factory,
        hub=ConnectorHub(factory),
        box=SecretBox(Fernet.generate_key()),
        clock=clock,
    )


def seed(runtime: Runtime) -> dict[str, str]:
    """People, groups, the `groups` integration (synced) and the on-call flow; returns a token each."""
    now = runtime.clock()
    tokens: dict[str, str] = {}
    with transaction(runtime.factory) as session:
        groups = {
            name: Group(id=new_id("grp"), name=name, description=f"the {name}", source="config")
            for name in ("engineers", "leads", "oncall", "dba")
        }
        session.add_all(groups.values())
        for who, (member_of, _admin) in PEOPLE.items():
            person = Identity(
                id=new_id("idn"),
                email=email(who),
                name=who.title(),
                active=True,
                attributes={"team": "platform"},
                created_at=now,
                updated_at=now,
            )
            session.add(person)
            session.flush()
            for name in member_of:
                session.add(GroupMember(group_id=groups[name].id, identity_id=person.id, source="config"))
        session.add(
            Integration(
                id=new_id("int"),
                name="groups",
                kind="builtin_groups",
                config={"groups": [{"name": "oncall"}, {"name": "dba"}]},
                owner=email("root"),
                created_at=now,
                updated_at=now,
            )
        )
        session.add(
            AccessFlow(
                id=new_id("flw"),
                name=ONCALL_FLOW.name,
                spec=ONCALL_FLOW.model_dump(mode="json"),
                created_at=now,
                updated_at=now,
            )
        )
    sync_integration(runtime.factory, runtime.hub, "groups", clock=runtime.clock)
    with transaction(runtime.factory) as session:
        for who, (_groups, admin) in PEOPLE.items():
            tokens[who] = create_token(session, email=email(who), admin=admin, actor="test", now=now)
    return tokens


@dataclass
class Api:
    """Speaks to the API as one of the seeded people."""

    client: TestClient
    runtime: Runtime
    clock: Clock
    tokens: dict[str, str]
    worker: Worker = field(init=False)

    def __post_init__(self) -> None:
        self.worker = Worker(
            self.runtime.factory,
            hub=self.runtime.hub,
            box=self.runtime.box,
            clock=self.clock,
            worker_id="test-worker",
            sync_inventory=False,
        )

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        return self.client.get("/api/v1" + path, headers=self.auth(who), params=params)

    def post(self, who: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.client.post("/api/v1" + path, headers=self.auth(who), json=body, **kwargs)

    def ask(self, who: str = "alice", *, group: str = "oncall", duration: str = "1h", **extra: Any) -> dict:
        body = {"resources": [f"groups/{group}"], "permission": "member", "duration": duration}
        body |= {"reason": "incident 42"} | extra
        response = self.post(who, "/requests", body)
        assert response.status_code == 201, response.text
        return response.json()

    def put_group_bundle(self, name: str, group: str) -> None:
        """A bundle (made by root) of membership in one group of the `groups` integration."""
        target = {"integration": "groups", "type": "group", "select": {"names": [group]}}
        bundle = {"targets": [target | {"permissions": ["member"]}]}
        made = self.client.put(f"/api/v1/bundles/{name}", headers=self.auth("root"), json=bundle)
        assert made.status_code in (200, 201), made.text

    def work(self) -> int:
        return self.worker.run_once()


def make_api(url: str, home: Path, clock: Clock) -> Iterator[Api]:
    runtime = build_runtime(url, home, clock)
    tokens = seed(runtime)
    with TestClient(create_app(runtime)) as client:
        yield Api(client=client, runtime=runtime, clock=clock, tokens=tokens)
    runtime.engine.dispose()


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    """The API on a SQLite file."""
    yield from make_api(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, clock)


@pytest.fixture
def any_store_api(store_url: str, tmp_path: Path, clock: Clock) -> Iterator[Api]:
    """The API on a SQLite file and on a fresh PostgreSQL database."""
    yield from make_api(store_url, tmp_path, clock)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Asserts an RFC 9457 problem with `status` and returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    return body
