"""Asking on someone's behalf: a flow's `on_behalf` says who may ask for others; the request records
the requester and the person it is for, the access is theirs, and neither of them may decide on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sluice.domain.flows import FlowSpec
from tests.api.conftest import Api, email, problem
from tests.api.targeting_fixtures import targeting_api
from tests.conftest import Clock

ORDERS = "pg/app/public/orders"
ASK = {"resources": [ORDERS], "permission": "write", "duration": "1h", "reason": "backfill"}


def _flow(**extra: Any) -> dict[str, Any]:
    return {
        "name": "orders-write",
        "requesters": [{"group": "leads"}],
        "grantees": [{"group": "engineers"}],
        "on_behalf": [{"user": email("bob")}],
        "targets": [
            {"integration": "pg", "type": "table", "select": {"names": [ORDERS]}, "permissions": ["write"]}
        ],
        "approvers": [{"group": "leads"}, {"group": "engineers"}],
        "max_duration": "2h",
        **extra,
    }


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    yield from targeting_api(tmp_path, clock, flows=[_flow()])


def test_only_those_the_flow_names_may_ask_for_others(api: Api) -> None:
    refused = problem(api.post("carol", "/requests", ASK | {"on_behalf_of": email("dave")}), 403)
    assert "only people who are" in refused["detail"] and "ask for someone else" in refused["detail"]
    assert api.get("carol", "/requests").json()["total"] == 0


def test_the_request_records_both_and_neither_may_decide(api: Api) -> None:
    made = api.post("bob", "/requests", ASK | {"on_behalf_of": email("dave")})
    assert made.status_code == 201, made.text
    asked = made.json()
    assert (asked["requester"], asked["on_behalf_of"]) == (email("bob"), email("dave"))
    assert [g["grantee"] for g in asked["grants"]] == [email("dave")]
    # leads and engineers approve, but neither bob (asked) nor dave (it is for him) may
    assert email("bob") not in asked["approvers"] and email("dave") not in asked["approvers"]
    assert sorted(asked["approvers"]) == [email("alice"), email("carol")]
    for who in ("bob", "dave"):
        waiting = api.get(who, "/requests", scope="to_approve").json()
        assert asked["id"] not in [r["id"] for r in waiting["items"]]
        problem(api.post(who, f"/requests/{asked['id']}/approve", {"reason": "mine"}), 403)
    [created] = [
        e
        for e in api.get("root", "/audit", subject=asked["id"]).json()["items"]
        if e["action"] == "request.created"
    ]
    assert created["actor"] == email("bob")
    assert created["details"]["grantee_of"] == email("dave")
    approved = api.post("alice", f"/requests/{asked['id']}/approve", {"reason": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"


def test_the_older_field_still_works_and_both_must_agree(api: Api) -> None:
    made = api.post("bob", "/requests", ASK | {"for_user": email("dave")})
    assert made.status_code == 201, made.text
    assert made.json()["on_behalf_of"] == email("dave")
    clash = problem(
        api.post("bob", "/requests", ASK | {"on_behalf_of": email("alice"), "for_user": email("dave")}), 422
    )
    assert "name different people" in clash["detail"]


def test_on_behalf_is_refused_where_nobody_may_be_asked_for() -> None:
    spec = _flow()
    del spec["grantees"]
    with pytest.raises(ValidationError, match="ask only for themselves"):
        FlowSpec.model_validate(spec)
