"""A runtime on a real store (SQLite, and PostgreSQL where a test asks), a config-owned person, and a
client holding a SCIM token of the source `okta`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.runtime.wiring import Runtime
from sluice.services.directory.scim_tokens import create_scim_token
from sluice.store.db import transaction
from sluice.store.tables import Identity
from sluice.store.types import new_id
from tests.api.conftest import build_runtime
from tests.conftest import Clock

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": user_name.split("@")[0].title(), "familyName": "Example"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
        **extra,
    }


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


@dataclass
class Scim:
    runtime: Runtime
    client: TestClient
    token: str

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.client.request(
            method,
            "/scim/v2" + path,
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": SCIM_JSON},
        )

    def create_user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        answer = self.call("POST", "/Users", user_body(user_name, **extra))
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def create_group(self, name: str, members: list[str] | None = None) -> dict[str, Any]:
        body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{"value": m} for m in members or []],
        }
        answer = self.call("POST", "/Groups", body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def add_config_identity(runtime: Runtime, email: str) -> None:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        session.add(
            Identity(
                id=new_id("id"),
                email=email,
                name="Config",
                active=True,
                attributes={},
                source="config",
                created_at=now,
                updated_at=now,
            )
        )


def scim_for(runtime: Runtime, source: str = "okta") -> Scim:
    with transaction(runtime.factory) as session:
        token = create_scim_token(session, source=source, actor="admin", now=runtime.clock())
    return Scim(runtime, TestClient(create_app(runtime)), token)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    built = build_runtime(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, Clock())
    yield built
    built.engine.dispose()


@pytest.fixture
def scim(runtime: Runtime) -> Scim:
    return scim_for(runtime)


@pytest.fixture
def store_without_scim(runtime: Runtime) -> Runtime:
    return runtime
