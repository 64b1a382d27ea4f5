"""`sluice report access` and `GET /api/v1/reports/access` against a real API (in-process): who had
which access, approved by whom, ended how; filters; CSV and JSON; admins only."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import report_commands
from sluice.cli.main import app
from tests.api.conftest import Api, email, problem
from tests.cli.conftest import api_in_process, assert_clean_failure
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    yield from api_in_process(tmp_path, clock, monkeypatch, report_commands)


@pytest.fixture
def history(api: Api) -> dict[str, str]:
    """alice: on call for an hour, approved by bob, ended early by carol; dave: in dba, still live;
    alice again: asked for dba, rejected (never access, so never in the report)."""
    first = api.ask("alice", group="oncall", reason="incident 7")
    assert api.post("bob", f"/requests/{first['id']}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    api.clock.advance(minutes=30)
    assert api.post("root", f"/requests/{first['id']}/revoke", {"reason": "done early"}).status_code == 200
    api.work()
    api.clock.advance(minutes=5)
    second = api.ask("dave", group="dba", reason="migration")
    assert api.post("carol", f"/requests/{second['id']}/approve", {"reason": "fine"}).status_code == 200
    api.work()
    rejected = api.ask("alice", group="dba")
    assert api.post("bob", f"/requests/{rejected['id']}/reject", {"reason": "no"}).status_code == 200
    return {"first": first["id"], "second": second["id"]}


def run(api: Api, *args: str) -> tuple[int, str, str]:
    command = ["report", "access", *args, "--token", api.tokens["root"]]
    result = CliRunner().invoke(app, command, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_report_lists_access_with_its_approvers_and_end(api: Api, history: dict[str, str]) -> None:
    body = api.get("root", "/reports/access").json()
    assert body["total"] == 2
    first, second = body["items"]
    assert (first["person"], first["resource"], first["permission"]) == (
        email("alice"),
        "groups/oncall",
        "member",
    )
    assert first["requested_by"] == email("alice") and first["reason"] == "incident 7"
    assert first["approved_by"] == [email("bob")]
    assert first["state"] == "revoked" and first["ended_at"] is not None
    assert first["request_id"] == history["first"] and first["flow"] == "oncall"
    assert second["person"] == email("dave") and second["state"] == "active" and second["ended_at"] is None
    assert second["approved_by"] == [email("carol")]


def test_filters_narrow_the_report(api: Api, history: dict[str, str]) -> None:
    def people(**params: str) -> list[str]:
        return [row["person"] for row in api.get("root", "/reports/access", **params).json()["items"]]

    assert people(person=email("dave")) == [email("dave")]
    assert people(resource="groups/oncall") == [email("alice")]
    assert people(resource="groups") == [email("alice"), email("dave")]
    assert people(flow="oncall") == [email("alice"), email("dave")]
    assert people(integration="nothing") == []
    ended_at = api.get("root", "/reports/access").json()["items"][0]["ended_at"]
    # After alice's access ended, only dave's was live.
    assert people(since=ended_at.replace("+00:00", "Z")) == [email("alice"), email("dave")]
    later = api.clock.now.isoformat()
    assert people(since=later) == [email("dave")]
    assert people(until="2020-01-01T00:00:00Z") == []
    problem(api.get("root", "/reports/access", since="2026-01-05T09:00:00"), 422)


def test_only_admins_read_reports(api: Api, history: dict[str, str]) -> None:
    for who in ("alice", "bob", "carol", "dave"):
        problem(api.get(who, "/reports/access"), 403)


def test_cli_writes_csv_and_json(api: Api, history: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run(api, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["person"] for r in rows] == [email("alice"), email("dave")]
    assert rows[0]["approved_by"] == email("bob") and rows[0]["state"] == "revoked"
    target = tmp_path / "report.json"
    code, _out, err = run(api, "--format", "json", "--person", email("dave"), "-o", str(target))
    assert code == 0 and "1 row(s) written" in err
    assert json.loads(target.read_text())["items"][0]["resource"] == "groups/dba"
    code, out, _err = run(api)
    assert code == 0 and "groups/oncall" in out


def test_cli_refuses_a_bad_date(api: Api) -> None:
    result = CliRunner().invoke(app, ["report", "access", "--since", "yesterday", "--token", "t"])
    assert_clean_failure(result, code=2)
    assert "--since: 'yesterday' is not a date" in result.stderr
