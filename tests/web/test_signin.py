"""Signing in to the portal: the demo sign-in exists in demo mode only, every state-changing form
needs its CSRF token, and signing out ends the session."""

from __future__ import annotations

from sluice.web.guard import CSRF_COOKIE
from tests.web.conftest import Portal


def test_demo_signin_lists_the_people_and_signs_in(portal: Portal) -> None:
    anonymous = portal.browser()
    page = anonymous.get("/signin")
    assert page.status_code == 200
    assert "Demo sign-in" in page.text and "alice@example.com" in page.text
    assert anonymous.get("/access").headers["location"] == "/signin"
    alice = portal.browser("alice")
    mine = alice.get("/access")
    assert mine.status_code == 200
    assert "alice@example.com" in mine.text
    assert mine.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in mine.headers["content-security-policy"]
    assert "unsafe-inline" not in mine.headers["content-security-policy"]


def test_no_demo_signin_outside_demo_mode(portal: Portal) -> None:
    portal.api.runtime.demo = False
    client = portal.browser()
    page = client.get("/signin")
    assert "Demo sign-in" not in page.text and "alice@example.com" not in page.text
    answer = portal.post(client, "/signin/demo", email="alice@example.com")
    assert answer.status_code == 404
    assert "sluice_session" not in client.cookies


def test_a_form_without_its_csrf_token_is_refused(portal: Portal) -> None:
    client = portal.browser()
    refused = client.post("/signin/demo", data={"email": "alice@example.com"})
    assert refused.status_code == 403
    assert "cross-site request token" in refused.text
    wrong = client.post("/signin/demo", data={"email": "alice@example.com", "csrf": "x" * 43})
    assert wrong.status_code == 403
    alice = portal.browser("alice")
    assert alice.post("/signout").status_code == 403
    foreign = alice.post(
        "/signout", data={"csrf": alice.cookies[CSRF_COOKIE]}, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert alice.get("/access").status_code == 200  # still signed in


def test_htmx_sends_the_token_as_a_header(portal: Portal) -> None:
    alice = portal.browser("alice")
    answer = alice.post(
        "/signout", headers={"X-CSRF-Token": alice.cookies[CSRF_COOKIE], "HX-Request": "true"}
    )
    assert answer.status_code == 204 and answer.headers["hx-redirect"] == "/signin"


def test_signing_out_ends_the_session(portal: Portal) -> None:
    alice = portal.browser("alice")
    session = alice.cookies["sluice_session"]
    assert portal.post(alice, "/signout").status_code == 303
    thief = portal.browser()
    thief.cookies.set("sluice_session", session)
    assert thief.get("/access").headers["location"] == "/signin"
