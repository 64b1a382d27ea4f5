"""The server side of `sluice login`: a browser sign-in handed off to a loopback listener, and the
device authorization grant."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.conftest import problem
from tests.signin.conftest import SignIn, pkce_pair

LOOPBACK = "http://127.0.0.1:48123/callback"


def _cli_sign_in(signin: SignIn, email: str, challenge: str) -> str:
    """Walks a CLI sign-in up to the hand-off; returns the code the loopback listener receives."""
    started = signin.client.post(
        "/auth/cli/start", json={"redirect_uri": LOOPBACK, "code_challenge": challenge}
    )
    assert started.status_code == 200, started.text
    browser = signin.browser()
    try:
        back = signin.back_at_sluice(browser.sign_in(started.json()["authorization_url"], email))
    finally:
        browser.close()
    assert back.status_code == 303, back.text
    handoff = back.headers["location"]
    assert handoff.startswith(LOOPBACK + "?")
    return parse_qs(urlsplit(handoff).query)["code"][0]


def test_the_cli_gets_a_session_for_its_verifier_once(signin: SignIn) -> None:
    verifier, challenge = pkce_pair()
    code = _cli_sign_in(signin, "alice@example.com", challenge)

    wrong, _ = pkce_pair()
    refused = signin.client.post("/auth/cli/token", json={"code": code, "code_verifier": wrong})
    assert "verifier" in problem(refused, 401)["detail"]

    answer = signin.client.post("/auth/cli/token", json={"code": code, "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    session = answer.json()
    assert session["email"] == "alice@example.com" and session["method"] == "cli"
    assert session["token"].startswith("sls_")
    assert answer.headers["cache-control"] == "no-store"

    signin.client.cookies.clear()
    headers = {"Authorization": f"Bearer {session['token']}"}
    me = signin.client.get("/api/v1/me", headers=headers).json()
    assert me["email"] == "alice@example.com" and me["signed_in_with"] == "cli"
    # A bearer session needs no CSRF header: a browser never sends it on its own.
    ask = {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "on call"}
    assert signin.client.post("/api/v1/requests", json=ask, headers=headers).status_code == 201

    again = signin.client.post("/auth/cli/token", json={"code": code, "code_verifier": verifier})
    assert "already used" in problem(again, 401)["detail"]

    assert signin.client.post("/auth/logout", headers=headers).status_code == 204
    problem(signin.client.get("/api/v1/me", headers=headers), 401)


def test_the_handoff_expires(signin: SignIn) -> None:
    verifier, challenge = pkce_pair()
    code = _cli_sign_in(signin, "alice@example.com", challenge)
    signin.clock.advance(minutes=3)
    late = signin.client.post("/auth/cli/token", json={"code": code, "code_verifier": verifier})
    assert "expired" in problem(late, 401)["detail"]


@pytest.mark.parametrize(
    "redirect",
    [
        "https://evil.example/callback",
        "http://evil.example:8000/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1.evil.example:80/callback",
        "http://user@127.0.0.1:8000/callback",
        "http://127.0.0.1:8000/callback?next=https://evil.example",
    ],
)
def test_only_a_loopback_listener_receives_a_cli_sign_in(signin: SignIn, redirect: str) -> None:
    _, challenge = pkce_pair()
    answer = signin.client.post(
        "/auth/cli/start", json={"redirect_uri": redirect, "code_challenge": challenge}
    )
    assert "loopback" in problem(answer, 422)["detail"] or "query" in answer.json()["detail"]


def test_device_sign_in(signin: SignIn) -> None:
    started = signin.client.post("/auth/device/start")
    assert started.status_code == 200, started.text
    device = started.json()
    assert device["user_code"] and device["verification_uri"].startswith(signin.provider.issuer)

    poll = {"poll_token": device["poll_token"]}
    waiting = signin.client.post("/auth/device/token", json=poll)
    assert waiting.status_code == 202 and waiting.json()["status"] == "authorization_pending"

    browser = signin.browser()
    try:
        browser.enter_device_code(device["verification_uri"], device["user_code"], "carol@example.com")
    finally:
        browser.close()
    done = signin.client.post("/auth/device/token", json=poll)
    assert done.status_code == 200, done.text
    assert done.json()["email"] == "carol@example.com" and done.json()["method"] == "device"

    again = signin.client.post("/auth/device/token", json=poll)
    problem(again, 401)


def test_device_sign_in_of_an_unverified_address_is_refused(signin: SignIn) -> None:
    device = signin.client.post("/auth/device/start").json()
    browser = signin.browser()
    try:
        browser.enter_device_code(device["verification_uri"], device["user_code"], "erin@example.com")
    finally:
        browser.close()
    refused = signin.client.post("/auth/device/token", json={"poll_token": device["poll_token"]})
    assert "email_verified" in problem(refused, 401)["detail"]
