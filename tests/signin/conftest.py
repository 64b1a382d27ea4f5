"""Sluice's API on a seeded store, signing people in through a real OpenID Provider."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.runtime.wiring import Runtime
from sluice.services.signin.provider import OpenIdProvider
from sluice.services.signin.settings import SignInSettings
from tests.api.conftest import build_runtime, seed
from tests.conftest import Clock
from tests.oidc_provider import (
    CALLBACK,
    CLIENT_ID,
    SLUICE_URL,
    Browser,
    RunningProvider,
)


def settings_for(provider: RunningProvider, **changes: Any) -> SignInSettings:
    base = SignInSettings(
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=provider.client_secret,
        scopes=("openid", "email", "profile", "groups"),
        groups_claim="groups",
        admin_groups=frozenset({"sluice-admins"}),
        public_url=SLUICE_URL,
    )
    return replace(base, **changes)


@dataclass
class SignIn:
    """Sluice with sign-in on, a person's browser at the provider, and the test client as the
    browser's view of Sluice (it keeps Sluice's cookies)."""

    client: TestClient
    runtime: Runtime
    provider: RunningProvider
    clock: Clock
    tokens: dict[str, str]

    def browser(self) -> Browser:
        return Browser(self.provider.issuer)

    def start(self, **params: str) -> str:
        """GET /auth/login; the provider URL it sends the browser to."""
        response = self.client.get("/auth/login", params=params, follow_redirects=False)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def back_at_sluice(self, location: str) -> httpx.Response:
        """The browser arriving at Sluice's callback with the provider's answer."""
        assert location.startswith(CALLBACK), location
        return self.client.get(location[len(SLUICE_URL) :], follow_redirects=False)

    def sign_in(self, email: str) -> httpx.Response:
        browser = self.browser()
        try:
            return self.back_at_sluice(browser.sign_in(self.start(), email))
        finally:
            browser.close()

    def use(self, settings: SignInSettings) -> None:
        self.runtime.signin = OpenIdProvider(settings)


def make_signin(tmp_path: Path, provider: RunningProvider, **changes: Any) -> Iterator[SignIn]:
    clock = Clock(datetime.now(UTC))  # the provider stamps tokens with the real time
    runtime = build_runtime(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, clock)
    tokens = seed(runtime)
    oidc = runtime.signin = OpenIdProvider(settings_for(provider, **changes))
    with TestClient(create_app(runtime), base_url=SLUICE_URL) as client:
        yield SignIn(client=client, runtime=runtime, provider=provider, clock=clock, tokens=tokens)
    oidc.close()
    runtime.engine.dispose()


sluice_signing_in = contextmanager(make_signin)


@pytest.fixture
def signin(tmp_path: Path, openid_provider: RunningProvider) -> Iterator[SignIn]:
    yield from make_signin(tmp_path, openid_provider)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge
