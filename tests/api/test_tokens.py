"""Personal API tokens through the API: create (secret once, no-store), list, revoke, expiry on the test
clock, last use written at most once a minute, hashed at rest (read from the store table), and who may
see or revoke whose tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sluice.domain.tokens import TokenLifetimes
from sluice.services.directory.tokens import digest
from sluice.store.db import transaction
from sluice.store.tables import ApiToken, AuditEvent
from tests.api.conftest import PEOPLE, Api, email, problem


def create(api: Api, who: str, **body: Any) -> httpx.Response:
    return api.post(who, "/tokens", {"name": "laptop"} | body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_shown_once_and_works(api: Api) -> None:
    answer = create(api, "alice", scopes=["read", "request"], expires="7d")
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    made = answer.json()
    secret = made["token"]
    assert secret.startswith("slt_")
    assert secret.startswith(made["prefix"]) and len(made["prefix"]) < 16
    assert made["owner"] == email("alice")
    assert made["scopes"] == ["read", "request"]
    assert made["state"] == "active"
    assert made["expires_at"].startswith((api.clock() + timedelta(days=7)).date().isoformat())
    me = api.client.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200 and me.json()["email"] == email("alice")
    assert me.json()["scopes"] == ["read", "request"]
    listed = api.get("alice", "/tokens").json()
    assert "token" not in listed["items"][0]
    assert [t["name"] for t in listed["items"] if t["name"]] == ["laptop"]
    with transaction(api.runtime.factory) as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.actor == email("alice")))
        assert "token.created" in set(actions)


def test_only_the_hash_is_stored(any_store_api: Api) -> None:
    """On SQLite and PostgreSQL: every column of every token row and audit event is read back."""
    api = any_store_api
    secret = create(api, "alice").json()["token"]
    with transaction(api.runtime.factory) as session:
        rows = session.execute(select(ApiToken.__table__)).mappings().all()
        events = session.execute(select(AuditEvent.__table__)).mappings().all()
    assert any(row["token_hash"] == digest(secret) for row in rows)
    for row in [*rows, *events]:
        for value in row.values():
            assert secret not in str(value)
            assert secret[len("slt_") + 6 :] not in str(value)


def test_the_default_lifetime_and_the_maximum(api: Api) -> None:
    default = create(api, "alice").json()
    assert default["expires_at"].startswith((api.clock() + timedelta(days=30)).date().isoformat())
    assert default["scopes"] == ["read", "request"]
    too_long = problem(create(api, "alice", name="long", expires="400d"), 403)
    assert "at most 365d" in too_long["detail"]
    never = problem(create(api, "alice", name="forever", expires="never"), 403)
    assert "SLUICE_TOKEN_ALLOW_NEVER" in never["detail"]
    api.runtime.settings = replace(api.runtime.settings, token_lifetimes=TokenLifetimes(allow_never=True))
    assert create(api, "alice", name="forever", expires="never").json()["expires_at"] is None


def test_names_are_unique_per_owner(api: Api) -> None:
    assert create(api, "alice").status_code == 201
    assert "already has a token named" in problem(create(api, "alice"), 409)["detail"]
    assert create(api, "dave").status_code == 201


def test_an_expired_token_is_refused_with_a_clear_401(api: Api) -> None:
    secret = create(api, "alice", expires="1h").json()["token"]
    assert api.client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    api.clock.advance(hours=1)
    refused = problem(api.client.get("/api/v1/me", headers=bearer(secret)), 401)
    assert "laptop" in refused["detail"] and "expired at" in refused["detail"]
    listed = api.get("alice", "/tokens").json()["items"]
    assert [t["state"] for t in listed if t["name"] == "laptop"] == ["expired"]


def test_a_revoked_token_stops_at_once(api: Api) -> None:
    made = create(api, "alice").json()
    revoked = api.client.delete(f"/api/v1/tokens/{made['id']}", headers=api.auth("alice"))
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = problem(api.client.get("/api/v1/me", headers=bearer(made["token"])), 401)
    assert "revoked at" in refused["detail"]
    again = api.client.delete(f"/api/v1/tokens/{made['id']}", headers=api.auth("alice"))
    assert again.status_code == 200
    with transaction(api.runtime.factory) as session:
        revocations = session.scalars(select(AuditEvent).where(AuditEvent.action == "token.revoked")).all()
    assert len(revocations) == 1


def test_last_use_is_written_at_most_once_a_minute(any_store_api: Api) -> None:
    api = any_store_api
    made = create(api, "alice").json()

    def last_used() -> object:
        with transaction(api.runtime.factory) as session:
            return session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == made["id"]))

    assert last_used() is None
    first = api.clock()
    api.client.get("/api/v1/me", headers=bearer(made["token"]))
    assert last_used() == first
    api.clock.advance(seconds=30)
    api.client.get("/api/v1/me", headers=bearer(made["token"]))
    assert last_used() == first
    api.clock.advance(seconds=30)
    api.client.get("/api/v1/me", headers=bearer(made["token"]))
    assert last_used() == api.clock()


# Authorisation walk: who sees and who revokes whose tokens.
NOT_ADMINS = [who for who, (_groups, admin) in PEOPLE.items() if not admin]


@pytest.mark.parametrize("who", NOT_ADMINS)
def test_people_see_and_revoke_only_their_own_tokens(api: Api, who: str) -> None:
    mine = create(api, who, name=f"{who}-token").json()
    others = {other: create(api, other, name=f"{other}-token").json() for other in PEOPLE if other != who}
    seen = api.get(who, "/tokens").json()["items"]
    assert {t["owner"] for t in seen} == {email(who)}
    assert problem(api.get(who, "/tokens", all="true"), 403)
    assert problem(api.get(who, "/tokens", owner=email("root")), 403)
    for other, token in others.items():
        answer = api.client.delete(f"/api/v1/tokens/{token['id']}", headers=api.auth(who))
        problem(answer, 404)
        assert api.client.get("/api/v1/me", headers=bearer(token["token"])).status_code == 200, other
    assert api.client.delete(f"/api/v1/tokens/{mine['id']}", headers=api.auth(who)).status_code == 200


def test_an_admin_sees_and_revokes_anyones_tokens(api: Api) -> None:
    tokens = {who: create(api, who, name=f"{who}-token").json() for who in NOT_ADMINS}
    everyone = api.get("root", "/tokens", all="true").json()
    assert {email(who) for who in NOT_ADMINS} <= {t["owner"] for t in everyone["items"]}
    bobs = api.get("root", "/tokens", owner=email("bob")).json()["items"]
    assert {t["owner"] for t in bobs} == {email("bob")}
    assert tokens["bob"]["id"] in {t["id"] for t in bobs}
    assert problem(api.get("root", "/tokens", owner="nobody@example.com"), 404)
    revoked = api.client.delete(f"/api/v1/tokens/{tokens['carol']['id']}", headers=api.auth("root"))
    assert revoked.status_code == 200
    problem(api.client.get("/api/v1/me", headers=bearer(tokens["carol"]["token"])), 401)
    with transaction(api.runtime.factory) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "token.revoked")).one()
    assert (event.actor, event.subject_id) == (email("root"), email("carol"))


def test_bad_bodies_are_422(api: Api) -> None:
    problem(create(api, "alice", name=""), 422)
    problem(create(api, "alice", name="x" * 101), 422)
    problem(create(api, "alice", scopes=["everything"]), 422)
    problem(create(api, "alice", scopes=[]), 422)
    problem(create(api, "alice", expires="soon"), 422)
    problem(create(api, "alice", expires="0d"), 422)
    problem(create(api, "alice", expires="1h30m"), 422)
    problem(api.post("alice", "/tokens", {"name": "x", "extra": 1}), 422)
