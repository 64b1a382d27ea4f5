"""`sluice grants revoke --integration` and `sluice integrations retire` against a real API
(in-process), on the built-in groups integration: what a person sees, and that the memberships go."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sluice.cli import grant_commands, integration_commands, output
from sluice.cli.main import app
from sluice.store.db import transaction
from sluice.store.tables import GroupMember
from tests.api.conftest import Api
from tests.cli.conftest import api_in_process, assert_clean_failure
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setattr(output, "console", Console(width=300, highlight=False, soft_wrap=False))
    yield from api_in_process(tmp_path, clock, monkeypatch, grant_commands, integration_commands)


def _granted(api: Api, who: str, group: str) -> str:
    request = api.ask(who, group=group)
    api.post("bob", f"/requests/{request['id']}/approve", {"reason": "ok"})
    api.work()
    return str(request["grants"][0]["id"])


def _memberships_by_grants(api: Api) -> int:
    with transaction(api.runtime.factory) as session:
        return session.query(GroupMember).filter(GroupMember.source.startswith("grant:")).count()


def test_the_emergency_stop_from_the_cli(api: Api) -> None:
    _granted(api, "alice", "oncall")
    _granted(api, "dave", "dba")
    assert _memberships_by_grants(api) == 2
    runner = CliRunner()
    refused = runner.invoke(
        app, ["grants", "revoke", "--integration", "groups", "--reason", "x", "--token", api.tokens["alice"]]
    )
    assert_clean_failure(refused)
    done = runner.invoke(
        app,
        ["grants", "revoke", "--integration", "groups", "--reason", "leak", "--token", api.tokens["root"]],
    )
    assert done.exit_code == 0, done.output
    assert "groups: 2 grant(s) being revoked" in done.stdout
    api.work()
    assert _memberships_by_grants(api) == 0


def test_retire_from_the_cli(api: Api) -> None:
    _granted(api, "alice", "oncall")
    runner = CliRunner()
    root = ["--token", api.tokens["root"]]
    started = runner.invoke(
        app, ["integrations", "retire", "groups", "--reason", "moving to LDAP", "--wait", "0", *root]
    )
    assert started.exit_code == 0, started.output
    assert "groups: retiring" in started.stdout
    api.work()
    api.work()
    assert _memberships_by_grants(api) == 0
    listed = runner.invoke(app, ["integrations", "--json", *root])
    (status,) = json.loads(listed.stdout)
    assert (status["name"], status["lifecycle"]) == ("groups", "retired")
    table = runner.invoke(app, ["integrations", *root])
    assert "retired" in table.stdout
    again = runner.invoke(app, ["integrations", "retire", "groups", "--reason", "again", *root])
    assert_clean_failure(again)
    assert "retired already" in again.stderr
