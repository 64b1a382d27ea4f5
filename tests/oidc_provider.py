"""A real OpenID Provider for the tests: node-oidc-provider (tests/oidc/server.js) run by the
machine's Node.js on a free loopback port, with the demo people as accounts; and a browser stand-in
that walks its sign-in form with httpx."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.conftest import IN_CI

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
SLUICE_URL = "http://sluice.test"  # where the test client reaches Sluice; the registered redirect
CALLBACK = f"{SLUICE_URL}/auth/callback"
CLIENT_ID = "sluice"
OTHER_CLIENT_ID = "another-app"
OTHER_REDIRECT = "http://another-app.test/callback"

# The demo people as the provider knows them; erin's address is not verified, mallory is not in
# Sluice's directory.
ACCOUNTS = [
    {"email": "alice@example.com", "email_verified": True, "name": "Alice", "groups": ["engineers", "sre"]},
    {"email": "bob@example.com", "email_verified": True, "name": "Bob", "groups": ["leads"]},
    {"email": "carol@example.com", "email_verified": True, "name": "Carol", "groups": ["leads"]},
    {"email": "dave@example.com", "email_verified": True, "name": "Dave", "groups": ["engineers"]},
    {"email": "root@example.com", "email_verified": True, "name": "Root", "groups": ["sluice-admins"]},
    {"email": "erin@example.com", "email_verified": False, "name": "Erin", "groups": []},
    {"email": "mallory@example.com", "email_verified": True, "name": "Mallory", "groups": ["engineers"]},
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_key() -> dict[str, Any]:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    return dict(key.as_dict(private=True))


@dataclass
class RunningProvider:
    issuer: str
    port: int
    client_secret: str
    process: subprocess.Popen[bytes]
    keys: list[dict[str, Any]] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _need_node() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "Node.js (`node`) is not installed"
    elif not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        problem = "tests/oidc has no node_modules; run `npm ci --prefix tests/oidc` (make test does)"
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    assert node is not None
    return node


def start_provider(
    *, port: int | None = None, keys: list[dict[str, Any]] | None = None, client_secret: str | None = None
) -> RunningProvider:
    """Starts server.js and waits until its discovery document answers."""
    node = _need_node()
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    keys = keys or [new_key()]
    secret = client_secret or os.urandom(16).hex()
    clients = [
        {
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
            "response_types": ["code"],
        },
        {
            "client_id": OTHER_CLIENT_ID,
            "client_secret": "another-secret-of-another-app",
            "redirect_uris": [OTHER_REDIRECT],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        },
    ]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "ISSUER": issuer,
        "KEYS": json.dumps({"keys": keys}),
        "ACCOUNTS": json.dumps(ACCOUNTS),
        "CLIENTS": json.dumps(clients),
        "NODE_ENV": "test",
    }
    process = subprocess.Popen(
        [node, "server.js"], cwd=OIDC_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    running = RunningProvider(issuer=issuer, port=port, client_secret=secret, process=process, keys=keys)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"the test OpenID Provider exited: {err}")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    running.stop()
    raise RuntimeError("the test OpenID Provider did not come up within 30s")


@pytest.fixture(scope="session")
def openid_provider() -> Iterator[RunningProvider]:
    running = start_provider()
    yield running
    running.stop()


class Browser:
    """Plays a person's browser at the provider: follows its redirects and fills in its sign-in form,
    and stops at the first redirect that leaves the provider (the answer for the client)."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.http = httpx.Client(follow_redirects=False, timeout=10)

    def close(self) -> None:
        self.http.close()

    def sign_in(self, url: str, email: str) -> str:
        """Walks from an authorization URL to the redirect back to the client; returns it."""
        response = self.http.get(url)
        for _ in range(10):
            if response.status_code in (302, 303):
                location = _absolute(self.issuer, response.headers["location"])
                if not location.startswith(self.issuer):
                    return location
                response = self.http.get(location)
                continue
            if response.status_code == 200 and 'name="login"' in response.text:
                action = response.text.split('action="', 1)[1].split('"', 1)[0]
                response = self.http.post(self.issuer + action, data={"login": email})
                continue
            raise AssertionError(f"the provider answered {response.status_code}: {response.text[:500]}")
        raise AssertionError("too many redirects at the provider")

    def enter_device_code(self, verification_uri: str, user_code: str, email: str) -> None:
        """Visits the device page, enters the code, signs in and confirms."""
        response = self.http.get(verification_uri)
        response = self._submit_form(response, {"user_code": user_code})
        for _ in range(10):
            if response.status_code in (302, 303):
                response = self.http.get(_absolute(self.issuer, response.headers["location"]))
            elif 'name="login"' in response.text:
                action = response.text.split('action="', 1)[1].split('"', 1)[0]
                response = self.http.post(self.issuer + action, data={"login": email})
            elif "op.deviceConfirmForm" in response.text:
                response = self._submit_form(response, {"confirm": "yes"})
            elif "Signed in; return to your device" in response.text:
                return
            else:
                raise AssertionError(f"unexpected device page {response.status_code}: {response.text[:500]}")
        raise AssertionError("too many steps at the provider's device pages")

    def _submit_form(self, response: httpx.Response, values: dict[str, str]) -> httpx.Response:
        text = response.text
        form = text.split("<form", 1)[1].split("</form>", 1)[0]
        action = form.split('action="', 1)[1].split('"', 1)[0]
        data = dict(_hidden_inputs(form)) | values
        return self.http.post(_absolute(self.issuer, action), data=data)


def _absolute(issuer: str, location: str) -> str:
    return location if urlsplit(location).scheme else issuer + location


def _hidden_inputs(form: str) -> Iterator[tuple[str, str]]:
    for chunk in form.split("<input")[1:]:
        tag = chunk.split(">", 1)[0]
        if 'type="hidden"' not in tag:
            continue
        name = tag.split('name="', 1)[1].split('"', 1)[0]
        value = tag.split('value="', 1)[1].split('"', 1)[0] if 'value="' in tag else ""
        yield name, value
