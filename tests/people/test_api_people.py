"""The directory and on-call API: PUT/PATCH identities and groups (admin), the re-evaluation they
trigger, requests for others and for later, and "who is on call"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sluice.store.db import transaction
from sluice.store.people_tables import Schedule
from tests.api.conftest import Api, email, make_api, problem
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    yield from make_api(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, clock)


def put(api: Api, who: str, path: str, body: object) -> object:
    return api.client.put("/api/v1" + path, headers=api.auth(who), json=body)


def patch(api: Api, who: str, path: str, body: object) -> object:
    return api.client.patch("/api/v1" + path, headers=api.auth(who), json=body)


def test_directory_changes_through_the_api_are_re_evaluated(api: Api) -> None:
    request = api.ask("alice")
    assert api.post("bob", f"/requests/{request['id']}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    # Only an admin changes the directory.
    problem(patch(api, "alice", f"/identities/{email('alice')}", {"groups": []}), 403)
    response = patch(api, "root", f"/identities/{email('alice')}", {"attributes": {"department": "risk"}})
    assert response.status_code == 200, response.text
    assert response.json()["attributes"] == {"department": "risk"}
    # Attributes are for those who read everything, and for the person themselves.
    assert api.get("alice", f"/identities/{email('alice')}").json()["attributes"] == {"department": "risk"}
    assert api.get("dave", f"/identities/{email('alice')}").json()["attributes"] == {}
    listed = {i["email"]: i for i in api.get("dave", "/identities").json()["items"]}
    assert listed[email("alice")]["attributes"] == {} and listed[email("alice")]["groups"]
    api.work()
    assert api.get("alice", f"/requests/{request['id']}").json()["state"] == "active"
    # Alice leaves the engineers group: what she holds through the flow is taken away, with the reason.
    response = patch(api, "root", "/groups/engineers", {"remove": [email("alice")]})
    assert response.status_code == 200, response.text
    assert email("alice") not in [m["email"] for m in response.json()["members"]]
    api.work()
    shown = api.get("alice", f"/requests/{request['id']}").json()
    assert shown["state"] == "ended"
    assert shown["grants"][0]["end_reason"] == "no longer eligible: not in group engineers"


def test_put_creates_identities_and_groups_and_refuses_bad_input(api: Api) -> None:
    response = put(
        api,
        "root",
        f"/identities/{email('zoe')}",
        {"name": "Zoe", "manager": email("bob"), "groups": ["engineers"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["groups"] == ["engineers"]
    problem(put(api, "root", f"/identities/{email('zoe')}", {"manager": email("zoe")}), 422)
    problem(patch(api, "root", f"/identities/{email('zoe')}", {"attributes": {"group": "x"}}), 422)
    response = put(api, "root", "/groups/payments", {"members": [email("zoe"), email("dave")]})
    assert sorted(m["email"] for m in response.json()["members"]) == [email("dave"), email("zoe")]
    problem(put(api, "root", "/groups/payments", {"members": ["nobody@example.com"]}), 404)


def test_requests_for_later_and_deactivation(api: Api) -> None:
    start = api.clock().replace(hour=12)
    request = api.ask("alice", starts_at=start.isoformat())
    assert api.post("bob", f"/requests/{request['id']}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    assert api.get("alice", f"/requests/{request['id']}").json()["state"] == "granting"
    api.clock.now = start
    api.work()
    assert api.get("alice", f"/requests/{request['id']}").json()["state"] == "active"
    assert patch(api, "root", f"/identities/{email('alice')}", {"active": False}).status_code == 200
    api.work()
    shown = api.get("root", f"/requests/{request['id']}").json()
    assert shown["state"] == "ended"
    assert shown["grants"][0]["end_reason"] == "alice@example.com is no longer active"


def test_who_is_on_call(api: Api) -> None:
    now = api.clock()
    with transaction(api.runtime.factory) as session:
        session.add(
            Schedule(
                id="sch_1",
                name="payments",
                spec={
                    "name": "payments",
                    "members": [email("dave"), email("carol")],
                    "rotation": "1d",
                    "start": "2026-01-01",
                    "handoff": "09:00",
                    "timezone": "UTC",
                },
                created_at=now,
                updated_at=now,
            )
        )
    response = api.get("alice", "/schedules/payments/on-call")
    assert response.json()["on_call"] == [email("dave")]  # 2026-01-05 09:00 is the fifth turn
    response = api.get("alice", "/schedules/payments/on-call", at="2026-01-06T08:59:00Z")
    assert response.json()["on_call"] == [email("dave")]
    response = api.get(
        "alice", "/schedules/payments/on-call", at=datetime(2026, 1, 6, 9, tzinfo=UTC).isoformat()
    )
    assert response.json()["on_call"] == [email("carol")]
    problem(api.get("alice", "/schedules/nope/on-call"), 404)
    assert [s["name"] for s in api.get("alice", "/schedules").json()["items"]] == ["payments"]


def test_the_oncall_command(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from sluice.cli import people_commands
    from sluice.cli.client import ApiClient
    from sluice.cli.main import app

    def client(url: str | None, token: str | None) -> ApiClient:
        return ApiClient("http://testserver", token or "", transport=api.client._transport)

    monkeypatch.setattr(people_commands.ApiClient, "from_options", staticmethod(client))
    now = api.clock()
    with transaction(api.runtime.factory) as session:
        session.add(
            Schedule(
                id="sch_1",
                name="db",
                spec={
                    "name": "db",
                    "members": [email("erin"), email("dave")],
                    "rotation": "12h",
                    "start": "2026-01-05",
                },
                created_at=now,
                updated_at=now,
            )
        )
    runner = CliRunner()
    result = runner.invoke(
        app, ["oncall", "db", "--json", "--token", api.tokens["alice"]], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["on_call"] == [email("erin")]
    result = runner.invoke(
        app,
        ["oncall", "db", "--at", "2026-01-05T21:00:00Z", "--token", api.tokens["alice"]],
        env={"COLUMNS": "200"},
    )
    assert email("dave") in result.stdout
    result = runner.invoke(app, ["oncall", "nope", "--token", api.tokens["alice"]])
    assert result.exit_code != 0 and "no schedule 'nope'" in result.stderr


def test_a_request_for_someone_else(api: Api) -> None:
    from sqlalchemy import select

    from sluice.domain.flows import FlowSpec
    from sluice.store.tables import AccessFlow

    with transaction(api.runtime.factory) as session:
        row = session.scalar(select(AccessFlow).where(AccessFlow.name == "oncall"))
        assert row is not None
        spec = dict(row.spec) | {"grantees": [{"group": "engineers"}]}
        row.spec = FlowSpec.model_validate(spec).model_dump(mode="json")
    asked = api.ask("alice", for_user=email("dave"))
    assert [g["grantee"] for g in asked["grants"]] == [email("dave")]
    refused = api.post(
        "alice",
        "/requests",
        {
            "resources": ["groups/oncall"],
            "permission": "member",
            "duration": "1h",
            "reason": "x",
            "for_user": email("bob"),
        },
    )
    assert "not someone this flow lets" in problem(refused, 403)["detail"]
