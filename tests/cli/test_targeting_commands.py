"""`sluice requestable` and `sluice explain` against a real API (in-process)."""

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
from tests.api.targeting_fixtures import targeting_api
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
