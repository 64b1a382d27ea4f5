"""Text a caller sends is checked at the edge: no NUL, no lone surrogate, bounded lengths and list
sizes. Each refusal is a 422 problem naming the field, and nothing stored can break a later read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sluice.domain.text import EMAIL_PATTERN, STORABLE_PATTERN
from tests.api.conftest import Api, problem


def _raw(api: Api, method: str, path: str, body: bytes) -> httpx.Response:
    """A JSON body written by hand, so it can carry escapes (a lone `\\ud800`) no encoder produces."""
    headers = api.auth("root") | {"Content-Type": "application/json"}
    return api.client.request(method, "/api/v1" + path, content=body, headers=headers)


def _location_and_message(response: httpx.Response) -> tuple[str, str]:
    error = problem(response, 422)["errors"][0]
    return error["location"], error["message"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (b'{"attributes": {"team": "\\ud800"}}', "body.attributes.team"),
        (b'{"groups": ["sre", "\\udfff"]}', "body.groups.1"),
        (b'{"name": "Eve \\ud83d"}', "body.name"),
    ],
)
def test_a_lone_surrogate_is_refused_and_reads_keep_working(api: Api, body: bytes, location: str) -> None:
    where, message = _location_and_message(_raw(api, "PUT", "/identities/eve@example.com", body))
    assert where == location
    assert message.startswith("must be valid Unicode text")
    assert api.get("alice", "/identities").status_code == 200
    assert api.get("alice", "/groups").status_code == 200


def test_nul_and_long_text_are_422_on_every_store(any_store_api: Api) -> None:
    """PostgreSQL refuses NUL in text and values past a column's length: those were 500s."""
    api = any_store_api
    ask = {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "x"}
    long_email = "e" * 390 + "@example.com"
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("post", "/requests", ask | {"for_user": "bob\x00@example.com"}, "body.for_user"),
        ("post", "/requests", ask | {"for_user": long_email}, "body.for_user"),
        ("put", "/identities/eve@example.com", {"name": "Eve\x00"}, "body.name"),
        ("put", "/identities/eve@example.com", {"groups": ["sre\x00"]}, "body.groups.0"),
        ("put", "/identities/eve@example.com", {"manager": long_email}, "body.manager"),
        ("put", "/groups/sre", {"description": "on\x00call"}, "body.description"),
        ("put", "/groups/sre", {"members": [long_email]}, "body.members.0"),
        ("put", f"/identities/{long_email}", {"name": "Eve"}, "path.email"),
    ]
    for method, path, body, location in cases:
        who = "alice" if path == "/requests" else "root"
        response = api.client.request(method.upper(), "/api/v1" + path, json=body, headers=api.auth(who))
        assert _location_and_message(response)[0] == location, (path, body)
    assert api.get("alice", "/identities").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "location", "message"),
    [
        (
            "put",
            "/resources/groups/oncall/tags",
            {"tags": {f"k{n}": "v" for n in range(101)}},
            "body.tags",
            "holds 101 entries; at most 100 are allowed",
        ),
        (
            "post",
            "/tags/batch",
            {"changes": [{"resource": "groups/oncall", "delete": [f"k{n}" for n in range(101)]}]},
            "body.changes.0.delete",
            "holds 101 entries; at most 100 are allowed",
        ),
        (
            "put",
            "/identities/eve@example.com",
            {"groups": [f"g{n}" for n in range(501)]},
            "body.groups",
            "holds 501 entries; at most 500 are allowed",
        ),
        (
            "put",
            "/identities/eve@example.com",
            {"attributes": {f"a{n}": "x" for n in range(101)}},
            "body.attributes",
            "holds 101 entries; at most 100 are allowed",
        ),
        (
            "post",
            "/requests",
            {"resources": ["groups/oncall"] * 201, "permission": "member", "duration": "1h"},
            "body.resources",
            "holds 201 entries; at most 200 are allowed",
        ),
    ],
)
def test_lists_a_caller_sends_are_capped(
    api: Api, method: str, path: str, body: dict[str, Any], location: str, message: str
) -> None:
    response = api.client.request(method.upper(), "/api/v1" + path, json=body, headers=api.auth("root"))
    assert _location_and_message(response) == (location, message)


def test_the_openapi_schema_shows_the_text_rules(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    for_user = schemas["RequestCreate"]["properties"]["for_user"]["anyOf"][0]
    assert for_user["maxLength"] == 254
    assert for_user["pattern"] == EMAIL_PATTERN
    name = schemas["IdentityPut"]["properties"]["name"]
    assert name["maxLength"] == 200
    assert name["pattern"] == STORABLE_PATTERN
    tags = schemas["TagsPut"]["properties"]["tags"]
    assert tags["maxProperties"] == 100
    # Keys follow the tag key rule, which admits no NUL or surrogate either.
    assert tags["propertyNames"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
    assert tags["additionalProperties"]["pattern"] == STORABLE_PATTERN
    assert "patternProperties" not in tags


def test_messages_of_wrapped_validation_errors_carry_no_prefix(api: Api) -> None:
    response = api.client.put("/api/v1/scopes/broken", json={"query": "((("}, headers=api.auth("root"))
    body = problem(response, 422)
    assert "Value error" not in response.text
    assert body["detail"].startswith("column 4: ")


def test_resource_tags_are_read_where_they_are_written(api: Api) -> None:
    put = api.client.put(
        "/api/v1/resources/groups/oncall/tags", json={"tags": {"tier": "1"}}, headers=api.auth("root")
    )
    assert put.status_code == 200, put.text
    shown = api.get("alice", "/resources/groups/oncall/tags")
    assert shown.status_code == 200, shown.text
    assert [(t["key"], t["value"]) for t in shown.json()["tags"] if t["source"] != "discovered"] == [
        ("tier", "1")
    ]
    assert api.get("alice", "/resources/groups/oncall").json()["path"] == "groups/oncall"


def test_a_group_named_with_a_slash_is_reachable(api: Api) -> None:
    created = api.client.put("/api/v1/groups/team/db-admins", json={}, headers=api.auth("root"))
    assert created.status_code == 200, created.text
    assert created.json()["name"] == "team/db-admins"
    assert api.get("alice", "/groups/team/db-admins").json()["name"] == "team/db-admins"
    patched = api.client.patch(
        "/api/v1/groups/team/db-admins", json={"add": ["alice@example.com"]}, headers=api.auth("root")
    )
    assert [m["email"] for m in patched.json()["members"]] == ["alice@example.com"]


def test_query_filters_are_bounded_text_too(api: Api) -> None:
    assert _location_and_message(api.get("alice", "/resources", q="x" * 1001))[0] == "query.q"
    assert _location_and_message(api.get("alice", "/requestable", tag="t" * 1001))[0] == "query.tag"
    assert _location_and_message(api.get("alice", "/explain", resource="", permission="member"))[0] == (
        "query.resource"
    )
    assert api.get("alice", "/resources", q="x" * 1000).json()["total"] == 0


def test_report_filters_follow_the_same_rules(api: Api) -> None:
    assert _location_and_message(api.get("root", "/reports/access", person="a" * 255))[0] == "query.person"
    assert _location_and_message(api.get("root", "/reports/access", flow="f" * 121))[0] == "query.flow"
    assert api.get("root", "/reports/access", person="alice@example.com").status_code == 200
