"""`sluice requestable`, `explain`, `tags`, `inventory list` and bundle requests on an in-process API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import targeting_commands
from sluice.cli.client import ApiClient
from sluice.cli.main import app
from tests.api.conftest import Api
from tests.api.targeting_fixtures import put_flow, targeting_api
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for served in targeting_api(tmp_path, clock):
        transport = served.client._transport

        def client(url: str | None, token: str | None, transport: object = transport) -> ApiClient:
            return ApiClient("http://testserver", token or "", transport=transport)  # type: ignore[arg-type]

        monkeypatch.setattr(targeting_commands.ApiClient, "from_options", staticmethod(client))
        yield served


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_requestable_lists_resources_with_flow_and_approvers(api: Api) -> None:
    code, out, _ = run("requestable", "--integration", "pg", "--json", "--token", api.tokens["alice"])
    assert code == 0
    body = json.loads(out)
    assert [i["path"] for i in body["items"]] == ["pg/app/public/orders", "pg/app/sales/leads"]
    code, out, _ = run("requestable", "--tag", "owner=bob@example.com", "--token", api.tokens["alice"])
    assert code == 0
    assert "pg/app/sales/leads" in out and "pii-read" in out and "group leads" in out
    assert "orders" not in out


def test_explain_says_why_not(api: Api) -> None:
    code, out, err = run("explain", "pg/app/public/secrets", "read", "--token", api.tokens["alice"])
    assert code == 1
    assert "not allowed" in err
    assert "pii-read" in out
    code, out, _ = run("explain", "pg/app/public/secrets", "read", "--json", "--token", api.tokens["alice"])
    reasons = {f["flow"]: f["reason"] for f in json.loads(out)["flows"]}
    assert "excluded by exclude.names" in reasons["pii-read"]
    code, _, err = run("explain", "pg/app/public/orders", "read", "--token", api.tokens["alice"])
    assert code == 0 and "pii-read" in err
    code, _, err = run("explain", "pg/app/nope", "read", "--token", api.tokens["alice"])
    assert code == 1 and err.startswith("error: ") and "no resource" in err


def test_tags_list_set_rm_show_each_layer(api: Api) -> None:
    root, alice = api.tokens["root"], api.tokens["alice"]
    code, out, _ = run("tags", "list", "pg/app/sales/leads", "--token", alice)
    assert code == 0 and "owner" in out and "bob@example.com" in out and "discovered" in out

    code, out, _ = run(
        "tags", "set", "pg/app/sales/leads", "owner=carol@example.com", "tier=gold", "--json", "--token", root
    )
    assert code == 0, out
    tags = {t["key"]: t for t in json.loads(out)["tags"]}
    assert tags["owner"]["value"] == "carol@example.com"
    assert tags["owner"]["source"] == "api:root@example.com"
    assert tags["owner"]["discovered_value"] == "bob@example.com"
    assert tags["tier"]["value"] == "gold" and tags["pii"]["source"] == "discovered"
    code, out, _ = run("tags", "list", "pg/app/sales/leads", "--token", alice)
    assert "injected by root@example.com" in out and "bob@example.com" in out  # the overridden value

    code, out, err = run("tags", "rm", "pg/app/sales/leads", "owner", "pii", "--json", "--token", root)
    assert code == 0
    tags = {t["key"]: t for t in json.loads(out)["tags"]}
    assert tags["owner"] == {**tags["owner"], "value": "bob@example.com", "source": "discovered"}
    assert tags["pii"]["value"] == "true" and "tier" in tags  # a discovered key stays; others untouched
    code, _, err = run("tags", "rm", "pg/app/sales/leads", "pii", "--token", root)
    assert code == 0 and "without an injected value" in err


def test_tag_commands_fail_clearly(api: Api) -> None:
    code, out, err = run("tags", "set", "pg/app/sales/leads", "owner", "--token", api.tokens["root"])
    assert code == 1 and out == "" and err.startswith("error: ") and "'owner' is not key=value" in err
    code, _, err = run("tags", "set", "pg/app/sales/leads", "a=b", "--token", api.tokens["alice"])
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err
    code, _, err = run("tags", "list", "pg/app/nope", "--token", api.tokens["alice"])
    assert code == 1 and "no resource" in err
    code, _, err = run("tags", "set", "pg/app/sales/leads", "bad key=x", "--token", api.tokens["root"])
    assert code == 1 and err.startswith("error: ")


def test_inventory_list_shows_and_filters_tags(api: Api) -> None:
    alice = api.tokens["alice"]
    code, out, _ = run("inventory", "list", "--path-prefix", "pg/app/sales", "--token", alice)
    assert code == 0 and "Tags" in out
    leads = next(line for line in out.splitlines() if "pg/app/sales/leads" in line)
    assert "owner=bob@example.com, pii=true" in leads
    code, out, _ = run("inventory", "list", "--tag", "pii=true", "--json", "--token", alice)
    body = json.loads(out)
    assert [i["path"] for i in body["items"]] == [
        "pg/app/public/orders",
        "pg/app/public/secrets",
        "pg/app/sales/leads",
    ]
    assert body["items"][2]["tags"] == {"owner": "bob@example.com", "pii": "true"}
    run("tags", "set", "pg/app/public/logs", "pii=true", "--token", api.tokens["root"])
    code, out, _ = run(
        "inventory", "list", "--tag", "pii != true", "--type", "table", "--json", "--token", alice
    )
    assert json.loads(out)["total"] == 0  # the injected value counts in the filter
    code, _, err = run("inventory", "list", "--tag", "in [", "--token", alice)
    assert code == 1 and err.startswith("error: ") and "tag filter" in err


def test_request_create_bundle(api: Api) -> None:
    root, bob = api.tokens["root"], api.tokens["bob"]
    target = {"integration": "pg", "type": "table", "select": {"tags": ["pii=true"]}, "permissions": ["read"]}
    bundle = {"targets": [target]}
    assert api.client.put("/api/v1/bundles/analyst", json=bundle, headers=api.auth("root")).status_code == 201
    flow = {
        "name": "analysts",
        "requesters": [{"user": "bob@example.com"}],
        "targets": [{"bundle": "analyst"}],
    }
    put_flow(api.runtime, {**flow, "approvers": [], "max_duration": "1h"})
    args = ("request", "create", "--bundle", "analyst", "--duration", "1h", "--reason", "close")
    code, out, _ = run(*args, "-r", "pg/app/sales/leads", "--json", "--token", bob)
    assert code == 0, out
    created = json.loads(out)
    assert [(g["resource"], g["permission"]) for g in created["grants"]] == [("pg/app/sales/leads", "read")]
    code, out, _ = run(*args, "-r", "pg/app/public/orders", "--token", bob)
    assert code == 0 and out.strip().startswith("req")
    code, out, err = run(*args, "--token", bob)  # the whole bundle: leads and orders are held already
    assert code == 1 and out == "" and err.startswith("error: ")
    code, out, err = run(*args, "--permission", "read", "--token", bob)
    assert code == 1 and out == "" and "--permission does not go with --bundle" in err
    code, _, err = run("request", "create", "--duration", "1h", "--token", bob)
    assert code == 1 and "--bundle NAME" in err
    code, _, err = run("request", "create", "--bundle", "nope", "--duration", "1h", "--token", root)
    assert code == 1 and err.startswith("error: ") and "nope" in err


def test_request_create_for_someone_else(api: Api) -> None:
    """`--for EMAIL` asks on someone's behalf where a flow's `on_behalf` names the caller."""
    flow = {
        "name": "orders-for-others",
        "requesters": [{"user": "bob@example.com"}, {"user": "carol@example.com"}],
        "grantees": [{"group": "engineers"}],
        "on_behalf": [{"user": "bob@example.com"}],
        "targets": [
            {"integration": "pg", "type": "table", "select": {"names": ["orders"]}, "permissions": ["write"]}
        ],
        "approvers": [{"group": "leads"}],
        "max_duration": "1h",
    }
    put_flow(api.runtime, flow)
    args = ("request", "create", "-r", "pg/app/public/orders", "-p", "write", "-d", "1h", "--reason", "fix")
    code, out, err = run(*args, "--for", "dave@example.com", "--json", "--token", api.tokens["bob"])
    assert code == 0, err
    created = json.loads(out)
    assert (created["requester"], created["on_behalf_of"]) == ("bob@example.com", "dave@example.com")
    assert [g["grantee"] for g in created["grants"]] == ["dave@example.com"]
    assert created["approvers"] == ["carol@example.com"]
    code, out, err = run(*args, "--for", "dave@example.com", "--token", api.tokens["carol"])
    assert code == 1 and out == "" and "ask for someone else" in err
    code, _, err = run("request", "create", "--bundle", "x", "-d", "1h", "--for", "dave@example.com")
    assert code == 1 and "--for does not go with --bundle" in err
