"""Favourites through the API: saved, listed and removed by their owner alone, asked for again as a new
request checked now (a vanished resource or a flow that no longer allows it is said so), and bad
names, NULs, surrogates and too many favourites refused as problems."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from sluice.services.requests.favourites import MAX_FAVOURITES
from sluice.store.db import transaction
from sluice.store.tables import Resource
from tests.api.conftest import Api
from tests.api.targeting_fixtures import put_flow

ONCALL = {
    "name": "on call",
    "resources": ["groups/oncall"],
    "permission": "member",
    "duration": "2h",
    "reason": "my weekly shift",
}


def _save(api: Api, who: str = "alice", **changes: Any) -> dict[str, Any]:
    answer = api.post(who, "/favourites", ONCALL | changes)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _problem(answer: Any, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    detail: str = answer.json()["detail"]
    return detail


def test_a_favourite_is_saved_listed_asked_for_again_and_removed(api: Api) -> None:
    saved = _save(api)
    assert saved["units"] == [{"resource": "groups/oncall", "permission": "member"}]
    assert (saved["duration"], saved["reason"], saved["bundle"]) == ("2h", "my weekly shift", None)
    assert [f["id"] for f in api.get("alice", "/favourites").json()["items"]] == [saved["id"]]

    asked = api.post("alice", f"/favourites/{saved['id']}/requests")
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["requester"], request["status"], request["reason"]) == (
        "alice@example.com",
        "pending",
        "my weekly shift",
    )
    assert request["duration"] == "2h"
    assert [g["resource"] for g in request["grants"]] == ["groups/oncall"]
    # asked again while that one waits: the same rules as any request (no second live ask)
    _problem(api.post("alice", f"/favourites/{saved['id']}/requests"), 409)

    removed = api.client.delete(f"/api/v1/favourites/{saved['id']}", headers=api.auth("alice"))
    assert removed.status_code == 204
    assert api.get("alice", "/favourites").json()["items"] == []
    _problem(api.post("alice", f"/favourites/{saved['id']}/requests"), 404)


def test_a_bundle_favourite_asks_for_what_the_bundle_covers_then(api: Api) -> None:
    api.put_group_bundle("dba-kit", "dba")
    saved = _save(api, name="kit", resources=[], permission=None, bundle="dba-kit")
    assert saved["bundle"] == "dba-kit" and saved["units"] == []
    asked = api.post("alice", f"/favourites/{saved['id']}/requests")
    assert asked.status_code == 201, asked.text
    assert [g["resource"] for g in asked.json()["grants"]] == ["groups/dba"]
    gone = api.client.delete("/api/v1/bundles/dba-kit", headers=api.auth("root"))
    assert gone.status_code == 204, gone.text
    api.post("alice", f"/requests/{asked.json()['id']}/cancel")
    detail = _problem(api.post("alice", f"/favourites/{saved['id']}/requests"), 409)
    assert "favourite 'kit'" in detail and "dba-kit" in detail


def test_a_vanished_resource_or_a_flow_that_no_longer_allows_it_is_said_plainly(api: Api) -> None:
    saved = _save(api)
    longer = _save(api, name="long", resources=["groups/dba"], duration="8h")
    too_long = _problem(api.post("alice", f"/favourites/{longer['id']}/requests"), 422)
    assert "favourite 'long'" in too_long and "4h" in too_long

    with transaction(api.runtime.factory) as session:
        session.execute(
            update(Resource).where(Resource.path == "groups/oncall").values(deleted_at=api.clock())
        )
    detail = _problem(api.post("alice", f"/favourites/{saved['id']}/requests"), 409)
    assert "favourite 'on call'" in detail and "groups/oncall" in detail and "no longer exists" in detail

    put_flow(
        api.runtime,
        {
            "name": "oncall",
            "requesters": [{"group": "leads"}],
            "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
            "approvers": [{"group": "leads"}],
            "max_duration": "12h",
        },
    )
    refused = _problem(api.post("alice", f"/favourites/{longer['id']}/requests"), 403)
    assert refused.startswith("favourite 'long' may no longer be asked for")
    assert api.get("alice", "/requests").json()["total"] == 0


def test_only_the_owner_reaches_a_favourite(api: Api) -> None:
    saved = _save(api)
    for who in ("dave", "bob", "root"):
        assert saved["id"] not in [f["id"] for f in api.get(who, "/favourites").json()["items"]]
        _problem(api.post(who, f"/favourites/{saved['id']}/requests"), 404)
        gone = api.client.delete(f"/api/v1/favourites/{saved['id']}", headers=api.auth(who))
        _problem(gone, 404)
    _save(api, "dave")  # the same name is anyone's to use once
    assert len(api.get("alice", "/favourites").json()["items"]) == 1


@pytest.mark.parametrize(
    ("changes", "status", "said"),
    [
        ({"name": "x" * 121}, 422, "name"),
        ({"name": ""}, 422, "name"),
        ({"name": "   "}, 422, "name"),
        ({"name": "a\x00b"}, 422, "NUL"),
        ({"reason": "half \ud800 pair"}, 422, "surrogate"),
        ({"resources": ["groups/\x00"]}, 422, "NUL"),
        ({"reason": "r" * 2001}, 422, "2000"),
        ({"duration": "soon"}, 422, "duration"),
        ({"permission": None}, 422, "permission"),
        ({"resources": [], "permission": None}, 422, "or a bundle"),
        ({"bundle": "kit"}, 422, "not both"),
        ({"resources": [], "bundle": "kit"}, 422, "not both"),
        ({"resources": ["groups/oncall", "groups/oncall"]}, 422, "twice"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_bad_favourites_are_problems(api: Api, changes: dict[str, Any], status: int, said: str) -> None:
    body = {k: v for k, v in (ONCALL | changes).items() if v is not None}
    raw = api.client.post(
        "/api/v1/favourites",
        headers={**api.auth("alice"), "content-type": "application/json"},
        content=_json(body),
    )
    assert raw.status_code == status, raw.text
    assert said in raw.text
    assert api.get("alice", "/favourites").json()["items"] == []


def _json(body: dict[str, Any]) -> bytes:
    """JSON with lone surrogates escaped as `\\udxxx` (what a hostile client can send)."""
    return json.dumps(body).encode("ascii")


def test_a_name_is_used_once_and_favourites_are_capped(api: Api) -> None:
    _save(api)
    detail = _problem(api.post("alice", "/favourites", ONCALL), 409)
    assert "on call" in detail
    for n in range(1, MAX_FAVOURITES):
        _save(api, name=f"fav {n}")
    capped = _problem(api.post("alice", "/favourites", ONCALL | {"name": "one more"}), 409)
    assert str(MAX_FAVOURITES) in capped
    assert len(api.get("alice", "/favourites").json()["items"]) == MAX_FAVOURITES
