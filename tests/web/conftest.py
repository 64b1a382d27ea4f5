"""The portal on a real store with the API tests' people and flow, in demo mode (so each person can
sign in through the demo sign-in), and a browser-like client per person."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.web.guard import CSRF_COOKIE
from tests.api.conftest import Api, build_runtime, email, seed
from tests.conftest import Clock


@dataclass
class Portal:
    api: Api

    def browser(self, who: str | None = None, *, admin: bool = False) -> TestClient:
        """A client with its own cookies: anonymous, or signed in as `who` through the demo sign-in."""
        client = TestClient(self.api.client.app, follow_redirects=False)
        client.get("/signin")
        if who is not None:
            fields = {"email": email(who), "csrf": client.cookies[CSRF_COOKIE]}
            if admin:
                fields["admin"] = "on"
            answer = client.post("/signin/demo", data=fields)
            assert answer.status_code == 303, answer.text
        return client

    @staticmethod
    def post(client: TestClient, path: str, **fields: str | list[str]) -> httpx.Response:
        return client.post(path, data={"csrf": client.cookies[CSRF_COOKIE], **fields})


@pytest.fixture
def portal(tmp_path: Path, clock: Clock) -> Iterator[Portal]:
    runtime = build_runtime(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, clock)
    runtime.demo = True
    tokens = seed(runtime)
    with TestClient(create_app(runtime)) as client:
        yield Portal(Api(client=client, runtime=runtime, clock=clock, tokens=tokens))
    runtime.engine.dispose()
