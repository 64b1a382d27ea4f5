"""Integration status and the live check, through the API and through `sluice integrations`."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from sluice.cli import integration_commands, output
from sluice.cli.client import ApiClient
from sluice.cli.main import app
from sluice.store.db import transaction
from sluice.store.tables import Integration
from sluice.store.types import new_id
from tests.api.conftest import Api, problem


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def add_unreachable_redis(api: Api) -> None:
    now = api.runtime.clock()
    with transaction(api.runtime.factory) as session:
        session.add(
            Integration(
                id=new_id("int"),
                name="down-cache",
                kind="redis",
                config={"port": _closed_port(), "connect_timeout_seconds": 1, "timeout_seconds": 1},
                created_at=now,
                updated_at=now,
            )
        )


def test_status_counts_resources_and_live_grants(api: Api) -> None:
    asked = api.ask()
    assert api.post("bob", f"/requests/{asked['id']}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    [status] = api.get("alice", "/integrations/status").json()["items"]
    assert status["name"] == "groups" and status["kind"] == "builtin_groups"
    assert status["reachable"] is True
    assert (status["resource_count"], status["resources_by_type"]) == (2, {"group": 2})
    assert (status["grants_active"], status["grants_in_progress"], status["grants_failing"]) == (1, 0, 0)
    assert status["last_error"] is None
    assert api.get("alice", "/integrations/groups/status").json() == status
    problem(api.get("alice", "/integrations/nope/status"), 404)


def test_check_is_for_admins_and_says_what_is_wrong(api: Api) -> None:
    problem(api.post("alice", "/integrations/groups/check"), 403)
    good = api.post("root", "/integrations/groups/check").json()
    assert (good["ok"], good["reachable"], good["problems"]) == (True, True, [])
    add_unreachable_redis(api)
    before = api.get("alice", "/integrations/down-cache/status").json()
    assert before["reachable"] is None  # never synced: nobody knows yet
    down = api.post("root", "/integrations/down-cache/check").json()
    assert (down["ok"], down["reachable"]) == (False, False)
    assert down["problems"][0].startswith("cannot connect") and down["seconds"] < 5
    problem(api.post("root", "/integrations/down-cache/sync"), 502)
    after = api.get("root", "/integrations/down-cache/status").json()
    assert after["reachable"] is False and after["last_error"].startswith("sync: ")
    as_seen_by_alice = api.get("alice", "/integrations/down-cache/status").json()
    assert as_seen_by_alice["reachable"] is False and as_seen_by_alice["last_error"] is None
    problem(api.post("root", "/integrations/nope/check"), 404)


@pytest.fixture
def cli(api: Api, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """`sluice` commands that reach the test app in this process."""
    transport = api.client._transport  # the app itself, without a network

    def through_app(url: str | None, token: str | None) -> ApiClient:
        return ApiClient("http://testserver", token or "", transport=transport)

    monkeypatch.setattr(integration_commands.ApiClient, "from_options", staticmethod(through_app))
    monkeypatch.setattr(output.console, "width", 200)  # a wide terminal: no folded cells
    return CliRunner()


def test_the_cli_table_and_check(api: Api, cli: CliRunner) -> None:
    add_unreachable_redis(api)
    root = ["--token", api.tokens["root"]]
    table = cli.invoke(app, ["integrations", *root])
    assert table.exit_code == 0, table.output
    assert "groups" in table.stdout and "down-cache" in table.stdout and "not synced yet" in table.stdout
    listed = json.loads(cli.invoke(app, ["integrations", "--json", *root]).stdout)
    assert {i["name"] for i in listed} == {"groups", "down-cache"}

    ok = cli.invoke(app, ["integrations", "check", "groups", *root])
    assert ok.exit_code == 0 and "groups: reachable" in ok.stdout
    bad = cli.invoke(app, ["integrations", "check", "down-cache", *root])
    assert bad.exit_code == 1
    assert "down-cache: unreachable" in bad.stderr and "cannot connect" in bad.stderr
    assert "Traceback" not in bad.output
