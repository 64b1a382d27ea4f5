"""`sluice identities` and `sluice groups`: listing, and admins changing the directory over the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import people_admin_commands
from sluice.cli.main import app
from tests.api.conftest import Api
from tests.cli.conftest import api_in_process
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    yield from api_in_process(tmp_path, clock, monkeypatch, people_admin_commands)


def run(api: Api, who: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, [*args, "--token", api.tokens[who]], env={"COLUMNS": "300"}, catch_exceptions=False
    )
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_identities_list_and_set(api: Api) -> None:
    code, out, _ = run(api, "alice", "identities")
    assert code == 0 and "alice@example.com" in out and "Manager" in out
    code, out, _ = run(
        api, "root", "identities", "set", "erin@example.com", "--name", "Erin", "--manager",
        "bob@example.com", "-a", "department=ops", "-a", "site=lyon", "--group", "engineers", "--json",
    )  # fmt: skip
    assert code == 0, out
    erin = json.loads(out)
    assert erin["name"] == "Erin" and erin["manager"] == "bob@example.com" and erin["active"]
    assert erin["attributes"] == {"department": "ops", "site": "lyon"} and erin["groups"] == ["engineers"]

    code, out, _ = run(
        api, "root", "identities", "set", "erin@example.com", "-a", "department=sre",
        "--remove-attribute", "site", "--no-manager", "--json",
    )  # fmt: skip
    erin = json.loads(out)
    assert erin["attributes"] == {"department": "sre"} and erin["manager"] is None
    assert erin["name"] == "Erin" and erin["groups"] == ["engineers"]  # left as they were

    code, out, _ = run(api, "root", "identities", "deactivate", "erin@example.com", "--json")
    assert code == 0 and json.loads(out)["active"] is False
    code, out, _ = run(api, "root", "identities", "activate", "erin@example.com")
    assert code == 0 and "erin@example.com" in out
    code, out, _ = run(api, "root", "identities", "--json")
    assert {i["email"]: i["active"] for i in json.loads(out)}["erin@example.com"] is True


def test_identity_changes_fail_clearly(api: Api) -> None:
    def fails(who: str, *args: str) -> str:
        code, out, err = run(api, who, "identities", *args)
        assert code == 1 and out == "" and err.startswith("error: "), (code, out, err)
        return err

    assert "no identity 'ghost@example.com'" in fails("root", "deactivate", "ghost@example.com")
    assert "nothing to change" in fails("root", "set", "alice@example.com")
    assert "contradict" in fails(
        "root", "set", "alice@example.com", "--manager", "bob@example.com", "--no-manager"
    )
    assert "'dept' is not key=value" in fails("root", "set", "alice@example.com", "-a", "dept")
    assert "no attribute site" in fails("root", "set", "alice@example.com", "--remove-attribute", "site")
    assert "own manager" in fails("root", "set", "alice@example.com", "--manager", "alice@example.com")
    fails("alice", "set", "alice@example.com", "--name", "Queen")  # not an admin


def test_groups_set_and_members(api: Api) -> None:
    code, out, _ = run(
        api,
        "root",
        "groups",
        "set",
        "sre",
        "--description",
        "Site reliability",
        "-m",
        "alice@example.com",
        "--json",
    )
    assert code == 0, out
    sre = json.loads(out)
    assert sre["description"] == "Site reliability"
    assert [m["email"] for m in sre["members"]] == ["alice@example.com"]
    code, out, _ = run(
        api, "root", "groups", "add-member", "sre", "bob@example.com", "dave@example.com", "--json"
    )
    assert sorted(m["email"] for m in json.loads(out)["members"]) == [
        "alice@example.com",
        "bob@example.com",
        "dave@example.com",
    ]
    code, out, _ = run(api, "root", "groups", "remove-member", "sre", "alice@example.com")
    assert code == 0 and "bob@example.com" in out and "alice@example.com" not in out
    code, out, _ = run(api, "root", "groups", "set", "sre", "--description", "SRE", "--json")
    assert json.loads(out)["description"] == "SRE" and len(json.loads(out)["members"]) == 2  # kept
    code, out, _ = run(api, "alice", "groups")
    assert any(" sre " in line and "bob@example.com" in line for line in out.splitlines())

    code, out, err = run(api, "root", "groups", "add-member", "nope", "bob@example.com")
    assert code == 1 and out == "" and "no group 'nope'" in err and "sluice groups set nope" in err
    code, _, err = run(api, "root", "groups", "set", "sre")
    assert code == 1 and "nothing to change" in err
    code, _, err = run(api, "bob", "groups", "add-member", "sre", "carol@example.com")
    assert code == 1 and err.startswith("error: ")
