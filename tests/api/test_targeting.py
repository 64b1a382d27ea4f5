"""Dynamic targeting over the API: selectors by tag, parent and exclusion; injected tags; what may be
requested; explanations; a resource that disappears."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.api.conftest import Api, problem
from tests.api.targeting_fixtures import BASE_INVENTORY, PII_FLOW, discover, put_flow, table, targeting_api
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    yield from targeting_api(tmp_path, clock)


def put(api: Api, who: str, path: str, body: Any) -> httpx.Response:
    return api.client.put("/api/v1" + path, headers=api.auth(who), json=body)


def requestable_paths(api: Api, who: str = "alice", **params: Any) -> list[str]:
    """Paths in the `pg` integration (alice may also request the on-call groups of the seed)."""
    response = api.get(who, "/requestable", **({"integration": "pg"} | params))
    assert response.status_code == 200, response.text
    return [item["path"] for item in response.json()["items"]]


def test_requestable_follows_tags_parents_and_exclusions(api: Api) -> None:
    assert requestable_paths(api) == ["pg/app/public/orders", "pg/app/sales/leads"]
    assert requestable_paths(api, "bob") == []  # not a requester of the flow
    assert api.get("bob", "/requestable").json()["items"] == []
    body = api.get("alice", "/requestable", integration="pg").json()
    option = body["items"][0]["options"][0]
    assert option["permission"] == "read"
    assert option["flow"] == "pii-read"
    assert option["max_duration"] == "2h"
    assert option["approval_required"] is True
    assert option["approvers"] == ["group leads"]  # as the flow names them; explain names the people
    assert body["items"][0]["tags"] == {"pii": "true"}


def test_requestable_filters_and_pages(api: Api) -> None:
    assert requestable_paths(api, path_prefix="pg/app/sales/") == ["pg/app/sales/leads"]
    assert requestable_paths(api, tag="owner=bob@example.com") == ["pg/app/sales/leads"]
    assert requestable_paths(api, q="ORD") == ["pg/app/public/orders"]
    assert requestable_paths(api, integration="nope") == []
    first = api.get("alice", "/requestable", integration="pg", limit=1).json()
    assert [i["path"] for i in first["items"]] == ["pg/app/public/orders"]
    assert first["next_offset"] == 1
    second = api.get("alice", "/requestable", integration="pg", limit=1, offset=1).json()
    assert [i["path"] for i in second["items"]] == ["pg/app/sales/leads"]
    assert second["next_offset"] is None
    problem(api.get("alice", "/requestable", tag="=x"), 422)


def test_new_tagged_table_and_retagging(api: Api) -> None:
    discover(api.runtime, [*BASE_INVENTORY, table("public", "cards", pii="true")])
    assert "pg/app/public/cards" in requestable_paths(api)
    discover(api.runtime, [*BASE_INVENTORY, table("public", "cards")])
    assert "pg/app/public/cards" not in requestable_paths(api)
    refused = api.post(
        "alice",
        "/requests",
        {"resources": ["pg/app/public/cards"], "permission": "read", "duration": "1h", "reason": "x"},
    )
    assert "tag pii is missing" in problem(refused, 403)["reasons"]


def test_excluded_table_is_never_requestable(api: Api) -> None:
    assert "pg/app/public/secrets" not in requestable_paths(api)
    refused = api.post(
        "alice",
        "/requests",
        {"resources": ["pg/app/public/secrets"], "permission": "read", "duration": "1h", "reason": "x"},
    )
    assert "excluded by exclude.names" in problem(refused, 403)["reasons"]
    allowed = api.post(
        "alice",
        "/requests",
        {"resources": ["pg/app/public/orders"], "permission": "read", "duration": "1h", "reason": "x"},
    )
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["flow"] == "pii-read"


def test_injected_tags_survive_discovery_and_keep_their_source(api: Api) -> None:
    response = put(
        api, "root", "/resources/pg/app/public/logs/tags", {"tags": {"pii": "true", "dspm": "low"}}
    )
    assert response.status_code == 200, response.text
    sources = {t["key"]: t["source"] for t in response.json()["tags"]}
    assert sources == {"pii": "api:root@example.com", "dspm": "api:root@example.com"}
    assert "pg/app/public/logs" in requestable_paths(api)
    discover(api.runtime, BASE_INVENTORY)  # the target still reports no tag on logs
    assert "pg/app/public/logs" in requestable_paths(api)
    shown = api.get("alice", "/tags", resource="pg/app/public/logs").json()
    assert {t["key"]: t["value"] for t in shown["tags"]} == {"dspm": "low", "pii": "true"}
    # PUT replaces the injected set; discovered tags stay
    put(api, "root", "/resources/pg/app/public/orders/tags", {"tags": {"dspm": "high"}})
    shown = api.get("alice", "/tags", resource="pg/app/public/orders").json()
    assert {t["key"]: t["source"] for t in shown["tags"]} == {
        "dspm": "api:root@example.com",
        "pii": "discovered",
    }


def test_clearing_an_injected_tag_brings_the_discovered_value_back_at_once(api: Api) -> None:
    """An injected value overrides a discovered one without erasing it: clearing the injected tags
    puts the discovered value back in effect at once, not at the next inventory sync."""
    orders = "pg/app/public/orders"

    def tags_of(path: str) -> dict[str, tuple[str, str, str | None]]:
        shown = api.get("alice", "/tags", resource=path).json()["tags"]
        return {t["key"]: (t["value"], t["source"], t["discovered_value"]) for t in shown}

    assert tags_of(orders) == {"pii": ("true", "discovered", "true")}
    overridden = put(api, "root", f"/resources/{orders}/tags", {"tags": {"pii": "false"}})
    assert overridden.status_code == 200, overridden.text
    assert tags_of(orders) == {"pii": ("false", "api:root@example.com", "true")}
    assert orders not in requestable_paths(api)
    # A sync while it is overridden updates the discovered value underneath, not the effective one.
    discover(api.runtime, [*BASE_INVENTORY[:3], table("public", "orders", pii="yes"), *BASE_INVENTORY[4:]])
    assert tags_of(orders) == {"pii": ("false", "api:root@example.com", "yes")}
    discover(api.runtime, [*BASE_INVENTORY[:3], table("public", "orders"), *BASE_INVENTORY[4:]])
    assert tags_of(orders) == {"pii": ("false", "api:root@example.com", None)}
    discover(api.runtime, BASE_INVENTORY)
    assert tags_of(orders) == {"pii": ("false", "api:root@example.com", "true")}
    cleared = put(api, "root", f"/resources/{orders}/tags", {"tags": {}})
    assert cleared.status_code == 200, cleared.text
    assert [(t["key"], t["value"], t["source"]) for t in cleared.json()["tags"]] == [
        ("pii", "true", "discovered")
    ]
    assert orders in requestable_paths(api)
    # Deleting through a batch removes only an injected value; a discovered one follows the target.
    api.post("root", "/tags/batch", {"changes": [{"resource": orders, "set": {"pii": "no"}}]})
    deleted = api.post("root", "/tags/batch", {"changes": [{"resource": orders, "delete": ["pii"]}]})
    assert deleted.json() == {"resources": 1, "set": 0, "deleted": 1}
    again = api.post("root", "/tags/batch", {"changes": [{"resource": orders, "delete": ["pii"]}]})
    assert again.json() == {"resources": 1, "set": 0, "deleted": 0}
    assert tags_of(orders) == {"pii": ("true", "discovered", "true")}
    # An injected tag with nothing discovered under it goes away entirely.
    put(api, "root", "/resources/pg/app/public/logs/tags", {"tags": {"pii": "true"}})
    put(api, "root", "/resources/pg/app/public/logs/tags", {"tags": {}})
    assert tags_of("pg/app/public/logs") == {}


def test_tag_injection_refusals(api: Api) -> None:
    assert put(api, "alice", "/resources/pg/app/public/logs/tags", {"tags": {}}).status_code == 403
    problem(put(api, "root", "/resources/pg/app/nope/tags", {"tags": {"a": "b"}}), 404)
    problem(put(api, "root", "/resources/pg/app/public/logs/tags", {"tags": {"bad key": "b"}}), 422)
    problem(put(api, "root", "/resources/pg/app/public/logs/tags", {"tags": {}, "extra": 1}), 422)


def test_one_resource_cannot_grow_past_its_tag_cap_a_few_tags_at_a_time(api: Api) -> None:
    logs = "/resources/pg/app/public/logs/tags"
    for start in range(0, 200, 50):
        batch = {
            "changes": [
                {"resource": "pg/app/public/logs", "set": {f"k{n}": "v" for n in range(start, start + 50)}}
            ]
        }
        assert api.post("root", "/tags/batch", batch).status_code == 200
    one_more = {"changes": [{"resource": "pg/app/public/logs", "set": {"last": "straw"}}]}
    assert "at most 200 are allowed" in problem(api.post("root", "/tags/batch", one_more), 422)["detail"]
    # Replacing the tags with fewer is always possible, and so is changing a value already there.
    assert put(api, "root", logs, {"tags": {"k1": "changed"}}).status_code == 200
    assert api.post("root", "/tags/batch", one_more).status_code == 200


def test_batch_is_atomic(api: Api) -> None:
    ok = api.post(
        "root",
        "/tags/batch",
        {
            "changes": [
                {"resource": "pg/app/public/logs", "set": {"pii": "true", "class": "c1"}},
                {"resource": "pg/app/public/orders", "set": {"pii": "false"}},
            ]
        },
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"resources": 2, "set": 3, "deleted": 0}
    assert requestable_paths(api) == ["pg/app/public/logs", "pg/app/sales/leads"]
    # One change names a missing resource: nothing at all is applied.
    bad = api.post(
        "root",
        "/tags/batch",
        {
            "changes": [
                {"resource": "pg/app/public/logs", "delete": ["pii"]},
                {"resource": "pg/app/public/missing", "set": {"pii": "true"}},
            ]
        },
    )
    body = problem(bad, 404)
    assert "#1 'pg/app/public/missing'" in body["detail"]
    assert "pg/app/public/logs" in requestable_paths(api)
    problem(
        api.post("root", "/tags/batch", {"changes": [{"resource": "pg/app/public/logs", "sett": {}}]}), 422
    )
    problem(api.post("root", "/tags/batch", {"changes": []}), 422)
    bad_key = {
        "changes": [
            {"resource": "pg/app/public/logs", "set": {"ok": "1"}},
            {"resource": "x", "set": {"-": "1"}},
        ]
    }
    refused = problem(api.post("root", "/tags/batch", bad_key), 422)["detail"]
    assert "changes.1" in refused and "'-' is not a tag key" in refused
    assert api.post("alice", "/tags/batch", {"changes": [{"resource": "pg/app"}]}).status_code == 403


def test_batch_of_thousands_by_id_and_path(api: Api) -> None:
    discover(api.runtime, [*BASE_INVENTORY, *(table("bulk", f"t{n}") for n in range(1500))])
    changes = [{"resource": f"pg/app/bulk/t{n}", "set": {"pii": "true", "n": str(n)}} for n in range(1500)]
    response = api.post("root", "/tags/batch", {"changes": changes})
    assert response.status_code == 200, response.text
    assert response.json()["set"] == 3000
    assert len(requestable_paths(api, path_prefix="pg/app/bulk/", limit=500)) == 500


def test_explain(api: Api) -> None:
    allowed = api.get(
        "root", "/explain", identity="alice@example.com", resource="pg/app/public/orders", permission="read"
    ).json()
    assert allowed["allowed"] is True
    assert allowed["flow"] == "pii-read"
    assert allowed["flows"][0]["approvers"] == ["bob@example.com", "carol@example.com"]
    excluded = api.get("alice", "/explain", resource="pg/app/public/secrets", permission="read").json()
    assert excluded["allowed"] is False
    reasons = {f["flow"]: f["reason"] for f in excluded["flows"]}
    assert "excluded by exclude.names" in reasons["pii-read"]
    assert "not among the requesters" in reasons["oncall"] or "integration" in reasons["oncall"]
    missing = api.get("alice", "/explain", resource="pg/app/public/logs", permission="read").json()
    assert "tag pii is missing" in {f["flow"]: f["reason"] for f in missing["flows"]}["pii-read"]
    wrong_type = api.get("alice", "/explain", resource="pg/app/public", permission="read").json()
    assert "type table, not schema" in {f["flow"]: f["reason"] for f in wrong_type["flows"]}["pii-read"]
    not_requester = api.get(
        "root", "/explain", identity="bob@example.com", resource="pg/app/public/orders", permission="read"
    ).json()
    assert "not among the requesters" in {f["flow"]: f["reason"] for f in not_requester["flows"]}["pii-read"]
    bad_permission = api.get("alice", "/explain", resource="pg/app/public/orders", permission="fly").json()
    assert bad_permission["allowed"] is False and "cannot be granted" in bad_permission["summary"]
    assert (
        api.get(
            "alice", "/explain", identity="bob@example.com", resource="pg/app", permission="connect"
        ).status_code
        == 403
    )
    problem(api.get("alice", "/explain", resource="pg/nope", permission="read"), 404)
    problem(
        api.get("root", "/explain", identity="nobody@example.com", resource="pg/app", permission="read"), 404
    )


def test_vanished_resource_closes_pending_requests(api: Api) -> None:
    created = api.post(
        "alice",
        "/requests",
        {"resources": ["pg/app/sales/leads"], "permission": "read", "duration": "1h", "reason": "x"},
    )
    assert created.status_code == 201, created.text
    discover(api.runtime, [r for r in BASE_INVENTORY if r.name != "leads"])
    shown = api.get("alice", f"/requests/{created.json()['id']}").json()
    assert shown["status"] == "cancelled"
    assert "no longer exists" in shown["decision_reason"]
    assert "pg/app/sales/leads" not in requestable_paths(api)


def test_parent_selector_covers_a_schema_created_later(api: Api) -> None:
    put_flow(
        api.runtime,
        {
            **PII_FLOW,
            "name": "app-schemas",
            "targets": [
                {
                    "integration": "pg",
                    "type": "schema",
                    "select": {"under": ["pg/app"]},
                    "permissions": ["read"],
                }
            ],
        },
    )
    assert requestable_paths(api, type="schema") == ["pg/app/public", "pg/app/sales"]
    later = [*BASE_INVENTORY, *[r for r in [table("audit", "x")]]]
    later.append(type(BASE_INVENTORY[1])("schema", "audit", "pg/app/audit", "pg/app", {}))
    discover(api.runtime, later)
    assert requestable_paths(api, type="schema") == ["pg/app/audit", "pg/app/public", "pg/app/sales"]


# The policy evaluator's read of every tag of the resources asked for (finding approvers by an owner
# tag reads that one key, and is not this).
_EVERY_TAG = re.compile(r'SELECT resource_tags\.resource_id, resource_tags\."?key"?, resource_tags\.value\s')


def _tag_reads(api: Api, path: str) -> int:
    """Submits a read of `path` as alice; how many statements of the submit read every tag of it."""
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(api.runtime.engine, "before_cursor_execute", note)
    try:
        asked = api.post(
            "alice", "/requests", {"resources": [path], "permission": "read", "duration": "1h", "reason": "x"}
        )
    finally:
        event.remove(api.runtime.engine, "before_cursor_execute", note)
    assert asked.status_code == 201, asked.text
    return sum(bool(_EVERY_TAG.search(statement)) for statement in seen)


def test_a_submit_reads_tags_only_when_a_flow_that_may_carry_it_selects_by_tag(api: Api) -> None:
    assert _tag_reads(api, "pg/app/public/orders") == 1  # pii-read selects by tag
    by_name = {**PII_FLOW, "targets": [{**PII_FLOW["targets"][0], "select": {"names": ["leads"]}}]}
    put_flow(api.runtime, by_name)
    assert _tag_reads(api, "pg/app/sales/leads") == 0


def test_asking_again_for_what_one_holds_or_has_asked_for_is_a_conflict(api: Api) -> None:
    def ask(*paths: str) -> httpx.Response:
        body = {"resources": list(paths), "permission": "read", "duration": "1h", "reason": "x"}
        return api.post("alice", "/requests", body)

    first = ask("pg/app/public/orders")
    assert first.status_code == 201, first.text
    grant_id = first.json()["grants"][0]["id"]
    again = problem(ask("pg/app/sales/leads", "pg/app/public/orders"), 409)
    assert f"read on pg/app/public/orders (grant {grant_id})" in again["detail"]
    cancelled = api.post("alice", f"/requests/{first.json()['id']}/cancel", {})
    assert cancelled.status_code == 200, cancelled.text
    assert ask("pg/app/sales/leads", "pg/app/public/orders").status_code == 201  # nothing live is held
