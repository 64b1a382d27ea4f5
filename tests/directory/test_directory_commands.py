"""`sluice directory sync [NAME]` and `sluice directory sources` through the API, served in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import directory_commands
from sluice.cli.client import ApiClient
from sluice.cli.main import app
from tests.directory.ldap_fixtures import Directory, Sluice

ROOT = "root@example.com"


@pytest.fixture
def cli(sluice: Sluice, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    transport = sluice.client._transport

    def client(url: str | None, token: str | None) -> ApiClient:
        return ApiClient("http://testserver", token or "", transport=transport)  # type: ignore[arg-type]

    monkeypatch.setattr(directory_commands.ApiClient, "from_options", staticmethod(client))
    return CliRunner()


def test_sync_prints_what_changed_and_conflicts(directory: Directory, sluice: Sluice, cli: CliRunner) -> None:
    directory.add_person("pat")
    directory.add_person("quinn")
    directory.add_group("team", ["pat", "quinn"])
    people = [{"email": ROOT}, {"email": "quinn@example.com"}]
    sluice.apply({"identities": people, "directory_sources": [directory.source_config()]})
    token = sluice.token(ROOT, admin=True)
    result = cli.invoke(app, ["directory", "sync", "--token", token], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("corp: 1 people created, 0 changed, 0 deactivated, 1 groups created")
    assert "identity quinn@example.com is owned by the config file" in result.stderr
    listed = cli.invoke(app, ["directory", "sources", "--json", "--token", token], catch_exceptions=False)
    assert '"source": "ldap:corp"' in listed.stdout


def test_sync_of_an_unreadable_source_exits_1(
    directory: Directory, sluice: Sluice, cli: CliRunner, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-password-456\n")
    source = directory.source_config(bind_password={"file": str(wrong)})
    sluice.apply({"identities": [{"email": ROOT}], "directory_sources": [source]})
    token = sluice.token(ROOT, admin=True)
    result = cli.invoke(app, ["directory", "sync", "corp", "--token", token], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: 1 source(s) could not be read")
    assert "invalidCredentials" in result.stderr and "wrong-password-456" not in result.output
