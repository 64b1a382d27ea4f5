"""`sluice grants list` against a real API (in-process): the revokes that keep failing, filters, JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sluice.cli import grant_commands, output
from sluice.cli.main import app
from tests.api.conftest import Api, email
from tests.api.grant_fixtures import mixed_grants
from tests.cli.conftest import api_in_process, assert_clean_failure
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    # A wide terminal of its own: no folded cells, whatever width other tests left the shared one at.
    monkeypatch.setattr(output, "console", Console(width=300, highlight=False, soft_wrap=False))
    yield from api_in_process(tmp_path, clock, monkeypatch, grant_commands)


@pytest.fixture
def grants(api: Api) -> dict[str, str]:
    return mixed_grants(api)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_revoke_failed_grants_are_listed_for_operators(api: Api, grants: dict[str, str]) -> None:
    code, out, _ = run("grants", "list", "--state", "revoke_failed", "--token", api.tokens["root"])
    assert code == 0
    assert grants["stuck"] in out and "revoke_failed" in out and email("carol") in out
    assert grants["active"] not in out and grants["pending"] not in out

    code, out, _ = run("grants", "list", "--state", "revoke_failed", "--json", "--token", api.tokens["root"])
    assert code == 0
    body = json.loads(out)
    assert body["total"] == 1
    (item,) = body["items"]
    assert (item["id"], item["state"], item["resource"]) == (
        grants["stuck"],
        "revoke_failed",
        "dead-pg/app/public/orders",
    )
    assert item["last_error"] and item["revoke_failed_at"] and item["failing_since"]


def test_filters_reach_the_server(api: Api, grants: dict[str, str]) -> None:
    def listed(*args: str) -> set[str]:
        code, out, _ = run("grants", "list", *args, "--json", "--token", api.tokens["root"])
        assert code == 0
        return {item["id"] for item in json.loads(out)["items"]}

    assert listed() == set(grants.values())
    assert listed("--integration", "groups") == {grants["active"], grants["pending"]}
    assert listed("--identity", email("dave")) == {grants["pending"]}
    assert listed("--resource", "groups/oncall") == {grants["active"]}
    assert listed("--state", "ACTIVE") == {grants["active"]}
    assert listed("--limit", "1") <= set(grants.values()) and len(listed("--limit", "1")) == 1


def test_an_empty_list_says_so(api: Api, grants: dict[str, str]) -> None:
    code, out, err = run("grants", "list", "--state", "revoking", "--token", api.tokens["root"])
    assert code == 0 and out == ""
    assert "no grants match" in err


def test_a_non_admin_token_is_a_clear_error(api: Api) -> None:
    result = CliRunner().invoke(app, ["grants", "list", "--token", api.tokens["alice"]])
    assert_clean_failure(result)
    assert "admin token" in result.stderr


def test_an_unknown_state_is_refused_with_the_valid_ones() -> None:
    result = CliRunner().invoke(app, ["grants", "list", "--state", "stuck", "--token", "t"])
    assert result.exit_code == 2
    assert "revoke_failed" in result.output
