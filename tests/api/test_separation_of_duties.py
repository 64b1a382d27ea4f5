"""Nobody approves access for themselves, whoever asked: bob (a lead) asks write on `orders` for dave
(an engineer); dave may be named by the flow's approvers, yet never sees the request to approve it and
cannot decide on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, email, problem
from tests.api.targeting_fixtures import PII_FLOW, put_flow, targeting_api
from tests.conftest import Clock

ORDERS = "pg/app/public/orders"


def orders_write(*approvers: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "orders-write",
        "requesters": [{"group": "leads"}],
        "grantees": [{"group": "engineers"}],
        "targets": [
            {"integration": "pg", "type": "table", "select": {"names": [ORDERS]}, "permissions": ["write"]}
        ],
        "approvers": list(approvers),
        "max_duration": "2h",
    }


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    flows = [PII_FLOW, orders_write({"group": "leads"}, {"user": email("dave")})]
    yield from targeting_api(tmp_path, clock, flows=flows)


def ask_for_dave(api: Api) -> Any:
    body = {"resources": [ORDERS], "permission": "write", "duration": "1h", "reason": "backfill"}
    return api.post("bob", "/requests", body | {"for_user": email("dave")})


def test_the_grantee_does_not_see_nor_approve_a_request_made_for_them(api: Api) -> None:
    response = ask_for_dave(api)
    assert response.status_code == 201, response.text
    asked = response.json()
    assert [g["grantee"] for g in asked["grants"]] == [email("dave")]
    assert asked["approvers"] == [email("carol")]  # not bob (he asked), not dave (it is for him)

    assert api.get("dave", "/requests", scope="to_approve").json() == {"items": [], "total": 0}
    refused = problem(api.post("dave", f"/requests/{asked['id']}/approve", {"reason": "me"}), 403)
    assert "access for yourself" in refused["detail"]
    problem(api.post("dave", f"/requests/{asked['id']}/reject", {"reason": "me"}), 403)
    assert api.get("bob", f"/requests/{asked['id']}").json()["status"] == "pending"

    assert [r["id"] for r in api.get("carol", "/requests", scope="to_approve").json()["items"]] == [
        asked["id"]
    ]
    approved = api.post("carol", f"/requests/{asked['id']}/approve", {"reason": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"


def test_a_request_only_its_grantee_could_approve_is_refused_with_the_reason(
    tmp_path: Path, clock: Clock
) -> None:
    """The reproduction: dave was the only approver left once bob, the requester, was set aside."""
    flows = [orders_write({"user": email("bob")}, {"user": email("dave")})]
    for api in targeting_api(tmp_path, clock, flows=flows):
        body = problem(ask_for_dave(api), 403)
        assert body["detail"] == (
            "nobody may approve this request under flow 'orders-write': bob@example.com is the requester, "
            "dave@example.com is the grantee, and nobody approves access for themselves"
        )
        assert api.get("dave", "/requests", scope="to_approve").json()["total"] == 0
        assert api.get("bob", "/requests").json()["total"] == 0


def test_explain_names_the_approvers_of_a_flow_written_with_approval(api: Api) -> None:
    """`GET /explain` asks the same engine as deciding: the owner a flow's `approval:` names (the
    `owner` tag of pg/app/sales/leads) is named, and the person explained is left out."""
    put_flow(
        api.runtime,
        PII_FLOW
        | {
            "name": "pii-owners",
            "approvers": [],
            "approval": {"groups": [{"approvers": [{"resource_owner": True}, {"user": email("alice")}]}]},
        },
    )
    body = api.get("alice", "/explain", resource="pg/app/sales/leads", permission="read").json()
    approvers = {f["flow"]: f["approvers"] for f in body["flows"] if f["allowed"]}
    assert approvers == {"pii-owners": [email("bob")], "pii-read": [email("bob"), email("carol")]}
