"""Acting on a request or grant one may not see answers exactly as for an id that does not exist: the
refusal never confirms the id, names its flow or says why the action would fail."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from sluice.domain.flows import FlowSpec
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow
from tests.api.conftest import Api, problem


def _same_as_missing(response: httpx.Response, real_id: str, missing: httpx.Response, fake_id: str) -> None:
    body: dict[str, Any] = problem(response, 404)
    absent: dict[str, Any] = problem(missing, 404)
    assert body["detail"].replace(real_id, fake_id) == absent["detail"]
    assert {k: v for k, v in body.items() if k not in ("detail", "instance")} == {
        k: v for k, v in absent.items() if k not in ("detail", "instance")
    }
    assert "oncall" not in response.text


def _granted(api: Api) -> tuple[str, str]:
    asked = api.ask("alice")
    assert api.post("bob", f"/requests/{asked['id']}/approve").status_code == 200
    api.work()
    return asked["id"], asked["grants"][0]["id"]


def test_a_grant_one_may_not_see_is_not_found(api: Api) -> None:
    _, grant_id = _granted(api)
    for action, body in (("extend", {"by": "30m"}), ("revoke", {"reason": "x"})):
        _same_as_missing(
            api.post("dave", f"/access/{grant_id}/{action}", body),
            grant_id,
            api.post("dave", f"/access/grt_missing/{action}", body),
            "grt_missing",
        )


def test_a_request_one_may_not_see_is_not_found(api: Api) -> None:
    request_id, _ = _granted(api)
    pending = api.ask("alice", group="dba")["id"]
    for action, target in (
        ("revoke", request_id),
        ("approve", pending),
        ("reject", pending),
        ("cancel", pending),
    ):
        _same_as_missing(
            api.post("dave", f"/requests/{target}/{action}"),
            target,
            api.post("dave", f"/requests/req_missing/{action}"),
            "req_missing",
        )
    assert api.get("alice", f"/requests/{pending}").json()["status"] == "pending"


def test_those_who_may_see_still_hear_why_not(api: Api) -> None:
    """The grantee, the flow's approvers and admins see the grant, so they get the real reason."""
    _, grant_id = _granted(api)
    for who in ("alice", "carol", "root"):
        refused = problem(api.post(who, f"/access/{grant_id}/extend", {"by": "30m"}), 422)
        assert "flow 'oncall' does not allow extensions" in refused["detail"]


def test_the_person_a_request_is_for_sees_it_and_may_revoke_it(api: Api) -> None:
    with transaction(api.runtime.factory) as session:
        row = session.scalar(select(AccessFlow).where(AccessFlow.name == "oncall"))
        assert row is not None
        spec = dict(row.spec) | {"grantees": [{"group": "engineers"}]}
        row.spec = FlowSpec.model_validate(spec).model_dump(mode="json")
    asked = api.ask("alice", for_user="dave@example.com")
    assert api.post("bob", f"/requests/{asked['id']}/approve").status_code == 200
    api.work()
    assert api.get("dave", f"/requests/{asked['id']}").status_code == 200
    revoked = api.post("dave", f"/requests/{asked['id']}/revoke", {"reason": "done"})
    assert revoked.status_code == 200, revoked.text
    problem(api.post("carol", f"/requests/{asked['id']}/cancel"), 403)  # an approver sees it, may not cancel
