"""Every error is an RFC 9457 problem a person can act on."""

from __future__ import annotations

import logging

import pytest

from sluice.services.directory import reads as directory_reads
from tests.api.conftest import Api, problem

GOOD = {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "incident 42"}


def test_missing_token_is_401_with_challenge(api: Api) -> None:
    body = problem(api.client.get("/api/v1/me"), 401)
    assert "Authorization: Bearer" in body["detail"]
    response = api.client.get("/api/v1/me")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer slt_not-a-real-token", "Basic YWxpY2U6cHc=", "Bearer"])
def test_bad_token_is_401(api: Api, header: str) -> None:
    response = api.client.get("/api/v1/requests", headers={"Authorization": header})
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_unknown_route_and_wrong_method(api: Api) -> None:
    body = problem(api.client.get("/api/v1/nothing-here"), 404)
    assert body["instance"] == "/api/v1/nothing-here"
    response = api.client.delete("/api/v1/requests", headers=api.auth("alice"))
    body = problem(response, 405)
    assert "GET" in response.headers["allow"]
    assert "DELETE is not allowed" in body["detail"]


def test_malformed_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/api/v1/requests",
        content=b'{"resources": ["groups/oncall"',
        headers=api.auth("alice") | {"Content-Type": "application/json"},
    )
    body = problem(response, 400)
    assert "not valid JSON" in body["detail"]


def test_unknown_field_is_422(api: Api) -> None:
    body = problem(api.post("alice", "/requests", GOOD | {"color": "blue"}), 422)
    assert body["errors"] == [{"location": "body.color", "message": "Extra inputs are not permitted"}]
    assert "body.color" in body["detail"]


def test_missing_fields_are_listed(api: Api) -> None:
    body = problem(api.post("alice", "/requests", {"resources": []}), 422)
    locations = {e["location"] for e in body["errors"]}
    assert locations == {"body.resources", "body.permission", "body.duration"}


@pytest.mark.parametrize("duration", ["soon", "0s", "15x", "-5m", "99999999999999999999d"])
def test_bad_duration_is_422_with_its_message(api: Api, duration: str) -> None:
    body = problem(api.post("alice", "/requests", GOOD | {"duration": duration}), 422)
    assert repr(duration) in body["detail"]
    assert body["errors"][0]["location"] == "body.duration"


def test_duration_longer_than_flow_allows_is_422(api: Api) -> None:
    body = problem(api.post("alice", "/requests", GOOD | {"duration": "5h"}), 422)
    assert "longer than flow 'oncall' allows (4h)" in body["detail"]


def test_unknown_resource_is_404(api: Api) -> None:
    body = problem(api.post("alice", "/requests", GOOD | {"resources": ["groups/nope"]}), 404)
    assert "groups/nope" in body["detail"]


def test_refusal_carries_reasons(api: Api) -> None:
    body = problem(api.post("bob", "/requests", GOOD), 403)
    assert "no access flow lets bob@example.com" in body["detail"]
    assert "is not among the requesters" in body["reasons"]


def test_missing_reason_when_flow_needs_one(api: Api) -> None:
    body = problem(api.post("alice", "/requests", GOOD | {"reason": "  "}), 422)
    assert "needs a reason" in body["detail"]


def test_admin_routes_refuse_others(api: Api) -> None:
    problem(api.get("alice", "/audit"), 403)
    problem(api.get("alice", "/requests", scope="all"), 403)
    assert api.get("root", "/requests", scope="all").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"offset": 10**20},
        {"limit": "many"},
        {"scope": "everyone"},
        {"status": "maybe"},
    ],
)
def test_paging_is_validated(api: Api, params: dict) -> None:
    body = problem(api.get("alice", "/requests", **params), 422)
    assert body["errors"][0]["location"].startswith("query.")


def test_unexpected_error_is_a_generic_500(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(directory_reads, "list_identities", broken)
    with caplog.at_level(logging.ERROR, logger="sluice.api"):
        response = api.get("alice", "/identities")
    body = problem(response, 500)
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert "logged" in body["detail"]
    assert "secret internals" in caplog.text  # the operator sees it in the log


def test_odd_input_reaches_no_store_error(any_store_api: Api) -> None:
    """PostgreSQL refuses NUL in text and integers past 64 bits; those are 422s, not 500s."""
    api = any_store_api
    problem(api.get("alice", "/resources", q="a\x00b"), 422)
    problem(api.get("alice", "/identities/a%00b@example.com"), 422)
    problem(api.get("alice", "/requests/req%00x"), 422)
    problem(api.get("root", "/audit", before_id=2**70), 422)
    problem(api.get("alice", "/resources", offset=2**40), 422)
    body = {"resources": ["groups/\x00"], "permission": "member", "duration": "1h"}
    assert problem(api.post("alice", "/requests", body), 422)["errors"][0]["location"] == "body.resources.0"
    assert api.get("alice", "/resources", q="☃ % _ \\").json()["total"] == 0
    assert api.get("root", "/audit", subject="ünïcode", action="x" * 500).json()["items"] == []


def test_patching_an_identity_with_null_fields_leaves_them_unchanged(api: Api) -> None:
    """The schema marks every PATCH field nullable; null for a field that has no 'none' means 'leave it',
    not a NOT NULL failure in the store (it was a 500)."""
    response = api.client.patch(
        "/api/v1/identities/alice%40example.com",
        headers=api.auth("root"),
        json={"active": None, "name": None, "attributes": None, "groups": None},
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True
    assert response.json()["name"] == "Alice"
