"""A directory of its own in the shared test slapd (one OU per test), a store, the API and a worker,
and the config that connects them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import ldap3
import pytest
import yaml
from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.runtime.wiring import Runtime
from sluice.services.config.apply import apply_config
from sluice.services.config.file import parse_config
from sluice.services.directory.ldap_sync import SyncOutcome, sync_source
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from sluice.store.queries import identity_by_email
from sluice.store.tables import Identity
from sluice.worker.loop import Worker
from tests.api.conftest import build_runtime
from tests.conftest import Clock
from tests.target_servers import Slapd

SOURCE = "corp"


@dataclass
class Directory:
    """People and groups under `ou=<tag>,<base>`: ou=people and ou=groups below it."""

    slapd: Slapd
    tag: str = field(default_factory=lambda: "t" + secrets.token_hex(4))

    @property
    def base(self) -> str:
        return f"ou={self.tag},{self.slapd.base}"

    @property
    def people(self) -> str:
        return f"ou=people,{self.base}"

    @property
    def groups(self) -> str:
        return f"ou=groups,{self.base}"

    def conn(self) -> ldap3.Connection:
        return self.slapd.admin()

    def create(self) -> Directory:
        conn = self.conn()
        conn.add(self.base, ["organizationalUnit"], {"ou": self.tag})
        conn.add(self.people, ["organizationalUnit"], {"ou": "people"})
        conn.add(self.groups, ["organizationalUnit"], {"ou": "groups"})
        conn.unbind()
        return self

    def person_dn(self, uid: str) -> str:
        return f"uid={uid},{self.people}"

    def group_dn(self, name: str) -> str:
        return f"cn={name},{self.groups}"

    def add_person(self, uid: str, *, manager: str | None = None, **attributes: Any) -> str:
        values: dict[str, Any] = {
            "uid": uid,
            "cn": uid.title(),
            "sn": "Example",
            "displayName": f"{uid.title()} Example",
            "mail": f"{uid}@example.com",
            **attributes,
        }
        if manager is not None:
            values["manager"] = self.person_dn(manager)
        conn = self.conn()
        conn.add(self.person_dn(uid), ["inetOrgPerson"], values)
        conn.unbind()
        return self.person_dn(uid)

    def modify(self, dn: str, changes: dict[str, Any]) -> None:
        conn = self.conn()
        conn.modify(dn, {key: [(ldap3.MODIFY_REPLACE, value)] for key, value in changes.items()})
        conn.unbind()

    def delete(self, dn: str) -> None:
        conn = self.conn()
        conn.delete(dn)
        conn.unbind()

    def add_group(self, name: str, members: list[str], *, unique: bool = False) -> str:
        kind, attribute = ("groupOfUniqueNames", "uniqueMember") if unique else ("groupOfNames", "member")
        conn = self.conn()
        conn.add(self.group_dn(name), [kind], {"cn": name, attribute: [self.person_dn(m) for m in members]})
        conn.unbind()
        return self.group_dn(name)

    def set_members(self, name: str, members: list[str]) -> None:
        self.modify(self.group_dn(name), {"member": [self.person_dn(m) for m in members]})

    def source_config(self, **overrides: Any) -> dict[str, Any]:
        ldap = {
            "url": self.slapd.url,
            "bind_dn": self.slapd.admin_dn,
            "bind_password": {"file": self.slapd.password_file},
            "people_base_dn": self.people,
            "groups_base_dn": self.groups,
            "page_size": 2,  # several pages even for a handful of people
            **overrides,
        }
        return {"name": SOURCE, "sync_interval": "15m", "ldap": ldap}


@dataclass
class Sluice:
    runtime: Runtime
    clock: Clock
    client: TestClient
    worker: Worker
    tokens: dict[str, str] = field(default_factory=dict)

    def apply(self, document: dict[str, Any]) -> None:
        with transaction(self.runtime.factory) as session:
            doc = parse_config(yaml.safe_dump(document, sort_keys=False), "sluice.yaml", session=session)
            apply_config(session, doc, actor="test", now=self.clock())

    def sync(self) -> SyncOutcome:
        return sync_source(self.runtime.factory, SOURCE, clock=self.clock, notify=self.runtime.notify_work)

    def identity(self, email: str) -> Identity:
        with transaction(self.runtime.factory) as session:
            found = identity_by_email(session, email)
            assert found is not None, email
            session.expunge(found)
            return found

    def token(self, email: str, *, admin: bool = False) -> str:
        if email not in self.tokens:
            with transaction(self.runtime.factory) as session:
                self.tokens[email] = create_token(
                    session, email=email, admin=admin, actor="test", now=self.clock()
                )
        return self.tokens[email]

    def post(self, email: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(email)}"}
        return self.client.post("/api/v1" + path, headers=headers, json=body)

    def get(self, email: str, path: str) -> httpx.Response:
        return self.client.get("/api/v1" + path, headers={"Authorization": f"Bearer {self.token(email)}"})


@pytest.fixture
def directory(slapd: Slapd) -> Directory:
    return Directory(slapd).create()


def make_sluice(url: str, home: Path) -> Iterator[Sluice]:
    clock = Clock()
    runtime = build_runtime(url, home, clock)
    worker = Worker(
        runtime.factory, hub=runtime.hub, box=runtime.box, clock=clock, worker_id="w", sync_inventory=False
    )
    with TestClient(create_app(runtime)) as client:
        yield Sluice(runtime, clock, client, worker)
    runtime.engine.dispose()


@pytest.fixture
def sluice(tmp_path: Path) -> Iterator[Sluice]:
    """Sluice on a SQLite store."""
    yield from make_sluice(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)


@pytest.fixture
def any_store_sluice(store_url: str, tmp_path: Path) -> Iterator[Sluice]:
    """Sluice on a SQLite store and on a fresh PostgreSQL database."""
    yield from make_sluice(store_url, tmp_path)
