"""Signing in with a browser through a real OpenID Provider, and using Sluice with the session cookie."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from sluice.api.auth import SESSION_COOKIE
from sluice.store.auth_tables import LoginAttempt, SignInSession
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Group, GroupMember, Identity
from tests.api.conftest import problem
from tests.oidc_provider import RunningProvider, free_port
from tests.signin.conftest import SignIn, settings_for, sluice_signing_in

ASK = {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "incident 7"}
SAME_SITE = {"X-Requested-With": "sluice"}


def _refused(response, words: str) -> None:  # type: ignore[no-untyped-def]
    body = problem(response, 401)
    assert words in body["detail"], body["detail"]


def test_a_person_signs_in_and_asks_for_access_as_themselves(signin: SignIn) -> None:
    start = signin.start()
    query = parse_qs(urlsplit(start).query)
    assert start.startswith(signin.provider.issuer + "/auth?")
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["sluice"]
    assert query["state"][0] and query["nonce"][0] and len(query["code_challenge"][0]) == 43

    browser = signin.browser()
    answer = signin.back_at_sluice(browser.sign_in(start, "alice@example.com"))

    assert answer.status_code == 200, answer.text
    assert "alice@example.com" in answer.text
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "samesite=lax" in cookie.lower() and "max-age=43200" in cookie.lower()
    assert "secure" not in attributes  # served over http in this test; https adds it (see below)

    me = signin.client.get("/api/v1/me").json()
    assert me["email"] == "alice@example.com"
    assert me["signed_in_with"] == "web" and me["expires_at"]
    assert me["admin"] is False

    # Changing something with the cookie needs proof that Sluice's own page made the request.
    refused = signin.client.post("/api/v1/requests", json=ASK)
    assert "X-Requested-With" in problem(refused, 403)["detail"]
    cross_site = signin.client.post(
        "/api/v1/requests", json=ASK, headers=SAME_SITE | {"Origin": "https://evil.example"}
    )
    problem(cross_site, 403)
    asked = signin.client.post(
        "/api/v1/requests", json=ASK, headers=SAME_SITE | {"Origin": "http://sluice.test"}
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["requester"] == "alice@example.com"

    # Signing out ends the session in the store, not only in the browser.
    stolen = signin.client.cookies.get(SESSION_COOKIE)
    assert signin.client.post("/auth/logout", headers=SAME_SITE).status_code == 204
    signin.client.cookies.set(SESSION_COOKIE, stolen)
    replayed = signin.client.get("/api/v1/me")
    problem(replayed, 401)
    browser.close()


def test_the_session_is_stored_only_as_a_hash_and_expires(signin: SignIn) -> None:
    assert signin.sign_in("bob@example.com").status_code == 200
    token = signin.client.cookies.get(SESSION_COOKIE)
    assert token and token.startswith("sls_")
    with transaction(signin.runtime.factory) as session:
        row = session.scalars(select(SignInSession)).one()
        assert row.token_hash != token and token not in row.token_hash
        assert (row.expires_at - row.created_at).total_seconds() == 12 * 3600

    signin.clock.advance(hours=12, seconds=1)
    assert "ended" in problem(signin.client.get("/api/v1/me"), 401)["detail"]


def test_a_replayed_answer_is_refused(signin: SignIn) -> None:
    browser = signin.browser()
    location = browser.sign_in(signin.start(), "alice@example.com")
    assert signin.back_at_sluice(location).status_code == 200

    _refused(signin.back_at_sluice(location), "already completed once")
    with transaction(signin.runtime.factory) as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "auth.signed_in" in actions and "auth.sign_in_refused" in actions


def test_a_mismatched_state_is_refused(signin: SignIn) -> None:
    browser = signin.browser()
    location = browser.sign_in(signin.start(), "alice@example.com")
    forged = location.replace("state=", "state=x")
    _refused(signin.back_at_sluice(forged), "mismatched state")


def test_an_answer_arriving_in_another_browser_is_refused(signin: SignIn) -> None:
    """Login CSRF: an attacker's sign-in answer planted in a victim's browser does not sign the victim
    in as the attacker, because the attempt is bound to the browser that started it."""
    browser = signin.browser()
    location = browser.sign_in(signin.start(), "mallory@example.com")
    signin.client.cookies.clear()  # the victim's browser never started this sign-in
    _refused(signin.back_at_sluice(location), "another browser")


def test_an_unverified_email_is_refused(signin: SignIn) -> None:
    _refused(signin.sign_in("erin@example.com"), "email_verified is not true")


def test_an_unknown_person_is_refused_unless_new_people_are_allowed(
    signin: SignIn, tmp_path: Path, openid_provider: RunningProvider
) -> None:
    _refused(signin.sign_in("mallory@example.com"), "not in Sluice's directory")

    with sluice_signing_in(tmp_path / "open", openid_provider, create_unknown=True) as allowing:
        assert allowing.sign_in("mallory@example.com").status_code == 200
        me = allowing.client.get("/api/v1/me").json()
        assert me["email"] == "mallory@example.com" and me["name"] == "Mallory"
        assert "engineers" in me["groups"]
        with transaction(allowing.runtime.factory) as session:
            created = session.scalars(select(Identity).where(Identity.email == "mallory@example.com")).one()
            assert created.source == "oidc"


def test_an_inactive_person_is_refused(signin: SignIn) -> None:
    with transaction(signin.runtime.factory) as session:
        session.scalars(select(Identity).where(Identity.email == "dave@example.com")).one().active = False
    _refused(signin.sign_in("dave@example.com"), "not active")


def test_groups_come_from_the_claim_and_admin_groups_make_an_admin_session(signin: SignIn) -> None:
    assert signin.sign_in("alice@example.com").status_code == 200
    with transaction(signin.runtime.factory) as session:
        rows = session.execute(
            select(Group.name, GroupMember.source)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .join(Identity, Identity.id == GroupMember.identity_id)
            .where(Identity.email == "alice@example.com")
        ).all()
    assert set(rows) == {("engineers", "config"), ("engineers", "oidc"), ("sre", "oidc")}

    signin.client.cookies.clear()
    assert signin.sign_in("root@example.com").status_code == 200
    assert signin.client.get("/api/v1/me").json()["admin"] is True


def test_the_provider_refusing_is_shown(signin: SignIn) -> None:
    answer = signin.client.get(
        "/auth/callback", params={"error": "access_denied", "error_description": "the person said no"}
    )
    _refused(answer, "the person said no")


def test_sign_in_off_is_a_clear_not_found(signin: SignIn) -> None:
    signin.runtime.signin = None
    assert "not configured" in problem(signin.client.get("/auth/login"), 404)["detail"]
    # API tokens keep working.
    headers = {"Authorization": f"Bearer {signin.tokens['alice']}"}
    assert signin.client.get("/api/v1/me", headers=headers).json()["signed_in_with"] == "token"


def test_the_cookie_is_secure_when_sluice_is_served_over_https(
    tmp_path: Path, openid_provider: RunningProvider
) -> None:
    with sluice_signing_in(tmp_path, openid_provider, public_url="https://sluice.test") as secure:
        login = secure.client.get("/auth/login", follow_redirects=False)
        assert "secure" in login.headers["set-cookie"].lower()


def test_an_admin_ends_every_session_of_a_person(signin: SignIn) -> None:
    assert signin.sign_in("alice@example.com").status_code == 200
    alices = signin.client.cookies.get(SESSION_COOKIE)
    signin.client.cookies.clear()

    as_bob = {"Authorization": f"Bearer {signin.tokens['bob']}"}
    problem(signin.client.delete("/api/v1/identities/alice@example.com/sessions", headers=as_bob), 403)
    as_root = {"Authorization": f"Bearer {signin.tokens['root']}"}
    ended = signin.client.delete("/api/v1/identities/alice@example.com/sessions", headers=as_root)
    assert ended.status_code == 200 and ended.json() == {"ended": 1}

    signin.client.cookies.set(SESSION_COOKIE, alices)
    problem(signin.client.get("/api/v1/me"), 401)
    missing = signin.client.delete("/api/v1/identities/nobody@example.com/sessions", headers=as_root)
    problem(missing, 404)


def test_old_attempts_and_sessions_are_cleared_by_later_sign_ins(signin: SignIn) -> None:
    signin.start()  # abandoned at the provider
    assert signin.sign_in("bob@example.com").status_code == 200
    signin.clock.advance(days=8)
    signin.start()
    with transaction(signin.runtime.factory) as session:
        assert session.scalars(select(SignInSession)).all() == []
        assert len(session.scalars(select(LoginAttempt)).all()) == 1  # the one just started


def test_a_provider_that_cannot_be_reached_or_names_another_issuer_is_a_clear_502(
    signin: SignIn, openid_provider: RunningProvider
) -> None:
    signin.use(settings_for(openid_provider, issuer=f"http://127.0.0.1:{free_port()}"))
    assert "cannot reach the identity provider" in problem(signin.client.get("/auth/login"), 502)["detail"]

    # A provider whose discovery document names another issuer (the configured URL is not its issuer).
    signin.use(settings_for(openid_provider, issuer=openid_provider.issuer.replace("127.0.0.1", "localhost")))
    assert "set SLUICE_OIDC_ISSUER" in problem(signin.client.get("/auth/login"), 502)["detail"]
