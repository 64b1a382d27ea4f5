"""Bundles and saved scopes over the API: CRUD with clear refusals, use from flows, requestable units,
requesting a bundle (all of it or a subset)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, problem
from tests.api.targeting_fixtures import PII_FLOW, put_flow, targeting_api
from tests.conftest import Clock

PII_QUERY = 'type = "table" and tag.pii = "true" and path starts_with "pg/" and not name in ["secrets"]'


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    yield from targeting_api(tmp_path, clock)


def put(api: Api, who: str, path: str, body: Any) -> httpx.Response:
    return api.client.put("/api/v1" + path, headers=api.auth(who), json=body)


def delete(api: Api, who: str, path: str) -> httpx.Response:
    return api.client.delete("/api/v1" + path, headers=api.auth(who))


def paths(api: Api, who: str = "alice") -> list[str]:
    return [i["path"] for i in api.get(who, "/requestable", integration="pg").json()["items"]]


def test_scope_crud_and_column_of_parse_errors(api: Api) -> None:
    created = put(api, "root", "/scopes/pii-tables", {"query": PII_QUERY, "description": "PII"})
    assert created.status_code == 201, created.text
    assert put(api, "root", "/scopes/pii-tables", {"query": PII_QUERY}).status_code == 200
    assert api.get("alice", "/scopes/pii-tables").json()["query"] == PII_QUERY
    assert [s["name"] for s in api.get("alice", "/scopes").json()["items"]] == ["pii-tables"]
    bad = problem(put(api, "root", "/scopes/broken", {"query": 'type = "table" and tag.pii == "x"'}), 422)
    assert "column 29" in bad["detail"], bad
    problem(put(api, "root", "/scopes/broken", {"query": 'colour = "red"'}), 422)
    problem(put(api, "root", "/scopes/broken", {"query": "type = 'table'"}), 422)
    problem(put(api, "root", "/scopes/broken", {"query": PII_QUERY, "owner": "me"}), 422)
    problem(put(api, "root", "/scopes/bad name", {"query": PII_QUERY}), 422)
    assert put(api, "alice", "/scopes/mine", {"query": PII_QUERY}).status_code == 403
    problem(api.get("alice", "/scopes/broken"), 404)


def test_flow_target_by_scope(api: Api) -> None:
    put(api, "root", "/scopes/pii-tables", {"query": PII_QUERY})
    put_flow(
        api.runtime,
        {
            **PII_FLOW,
            "name": "by-scope",
            "requesters": [{"user": "bob@example.com"}],
            "targets": [{"scope": "pii-tables", "permissions": ["read"]}],
        },
    )
    assert paths(api, "bob") == ["pg/app/public/orders", "pg/app/sales/leads"]
    explained = api.get("bob", "/explain", resource="pg/app/public/secrets", permission="read").json()
    reason = {f["flow"]: f["reason"] for f in explained["flows"]}["by-scope"]
    assert 'name in ["secrets"]' in reason
    # Changing the scope changes what the flow covers, without touching the flow.
    put(api, "root", "/scopes/pii-tables", {"query": 'type = "table" and name = "logs"'})
    assert paths(api, "bob") == ["pg/app/public/logs"]
    assert delete(api, "root", "/scopes/pii-tables").status_code == 409


def test_bundle_crud_refusals(api: Api) -> None:
    good = {
        "targets": [
            {"integration": "pg", "type": "table", "select": {"tags": ["pii=true"]}, "permissions": ["read"]}
        ]
    }
    created = put(api, "root", "/bundles/analyst", good)
    assert created.status_code == 201, created.text
    assert api.get("alice", "/bundles/analyst").json()["targets"][0]["select"] == {"tags": ["pii=true"]}
    nested = problem(put(api, "root", "/bundles/outer", {"targets": [{"bundle": "analyst"}]}), 422)
    assert "cannot contain a bundle" in str(nested)
    problem(put(api, "root", "/bundles/x", {"targets": [{**good["targets"][0], "colour": "red"}]}), 422)
    problem(put(api, "root", "/bundles/x", {"targets": [{**good["targets"][0], "integration": "nope"}]}), 422)
    problem(
        put(api, "root", "/bundles/x", {"targets": [{**good["targets"][0], "permissions": ["fly"]}]}), 422
    )
    problem(put(api, "root", "/bundles/x", {"targets": [{"scope": "missing", "permissions": ["read"]}]}), 422)
    bad_query = {"targets": [{**good["targets"][0], "select": {"query": "name = "}}]}
    assert "column 8" in str(problem(put(api, "root", "/bundles/x", bad_query), 422))
    problem(put(api, "root", "/bundles/x", {"targets": []}), 422)
    assert put(api, "alice", "/bundles/x", good).status_code == 403
    problem(api.get("alice", "/bundles/x"), 404)
    assert delete(api, "root", "/bundles/analyst").status_code == 204
    problem(delete(api, "root", "/bundles/analyst"), 404)


def test_bundles_in_flows_and_requests(api: Api) -> None:
    put(api, "root", "/scopes/sales", {"query": 'parent = "pg/app/sales"'})
    bundle = {
        "description": "What an analyst needs",
        "targets": [
            {
                "integration": "pg",
                "type": "table",
                "select": {"names": ["orders", "logs"]},
                "permissions": ["read"],
            },
            {"scope": "sales", "permissions": ["read", "write"]},
        ],
    }
    assert put(api, "root", "/bundles/analyst", bundle).status_code == 201
    for name, approvers in (("analysts-quick", []), ("analysts-reviewed", [{"group": "leads"}])):
        put_flow(
            api.runtime,
            {
                "name": name,
                "requesters": [{"user": "bob@example.com"}],
                "targets": [{"bundle": "analyst"}],
                "approvers": approvers,
                "max_duration": "1h" if approvers == [] else "8h",
            },
        )
    page = api.get("bob", "/requestable", integration="pg").json()
    assert [i["path"] for i in page["items"]] == [
        "pg/app/public/logs",
        "pg/app/public/orders",
        "pg/app/sales/leads",
    ]
    assert {(b["bundle"], b["flow"]) for b in page["bundles"]} == {
        ("analyst", "analysts-quick"),
        ("analyst", "analysts-reviewed"),
    }
    leads = page["items"][2]["options"]
    assert [o["permission"] for o in leads] == ["read", "write"]
    assert leads[0]["flow"] == "analysts-quick" and leads[0]["other_flows"] == ["analysts-reviewed"]
    assert delete(api, "root", "/bundles/analyst").status_code == 409

    whole = api.post("bob", "/bundles/analyst/requests", {"duration": "1h", "reason": "quarter close"})
    assert whole.status_code == 201, whole.text
    units = sorted((g["resource"], g["permission"]) for g in whole.json()["grants"])
    assert units == [
        ("pg/app/public/logs", "read"),
        ("pg/app/public/orders", "read"),
        ("pg/app/sales/leads", "read"),
        ("pg/app/sales/leads", "write"),
    ]
    assert whole.json()["status"] == "approved"  # the flow without approvers was chosen
    subset = api.post(
        "bob",
        "/bundles/analyst/requests",
        {"duration": "4h", "reason": "x", "resources": ["pg/app/sales/leads"], "flow": "analysts-reviewed"},
    )
    assert subset.status_code == 409, subset.text  # already held through the first request
    outside = api.post(
        "bob", "/bundles/analyst/requests", {"duration": "1h", "resources": ["pg/app/public/secrets"]}
    )
    assert "not in bundle" in problem(outside, 422)["detail"]
    problem(api.post("bob", "/bundles/nope/requests", {"duration": "1h"}), 404)
    problem(api.post("carol", "/bundles/analyst/requests", {"duration": "1h", "reason": "x"}), 403)
    problem(api.post("bob", "/bundles/analyst/requests", {"duration": "1h", "extra": 1}), 422)
