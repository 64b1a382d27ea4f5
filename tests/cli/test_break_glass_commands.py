"""`sluice request create --break-glass` and `sluice request review` against a real API (in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sluice.cli import output, request_commands
from sluice.cli.main import app
from tests.api.break_glass_fixtures import allow_break_glass
from tests.api.conftest import Api, email
from tests.cli.conftest import api_in_process
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setattr(output, "console", Console(width=300, highlight=False, soft_wrap=False))
    for served in api_in_process(tmp_path, clock, monkeypatch, request_commands):
        allow_break_glass(served)
        yield served


def run(api: Api, who: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*args, "--token", api.tokens[who]], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def break_glass(api: Api, who: str = "alice", *extra: str) -> tuple[int, str, str]:
    return run(
        api,
        who,
        "request",
        "create",
        "-r",
        "groups/oncall",
        "-p",
        "member",
        "-d",
        "20m",
        "--reason",
        "the database is down",
        "--break-glass",
        "--incident",
        "INC-123",
        *extra,
    )


def test_break_glass_then_review_from_the_cli(api: Api) -> None:
    code, out, err = break_glass(api)
    assert code == 0, err
    request_id = out.strip()
    code, out, _ = run(api, "alice", "request", "show", request_id)
    assert code == 0
    assert "awaiting_review" in out and "INC-123" in out and "approved" not in out.split("state")[0]

    code, out, _ = run(api, "bob", "request", "list", "--scope", "to_review")
    assert code == 0 and request_id in out

    code, out, err = run(api, "alice", "request", "review", request_id, "--reason", "mine")
    assert code == 1 and "your own break-glass request" in err

    code, out, err = run(
        api, "bob", "request", "review", request_id, "--reason", "bogus", "--outcome", "revoke"
    )
    assert code == 0, err
    assert out.strip() == f"{request_id}: revoked, ended"  # never granted yet: it simply ends
    code, out, _ = run(api, "alice", "request", "show", request_id, "--json")
    shown = json.loads(out)
    assert (shown["review"], shown["reviewed_by"]) == ("revoked", email("bob"))


def test_a_second_break_glass_is_refused_naming_the_first(api: Api) -> None:
    code, first, _ = break_glass(api)
    assert code == 0
    code, out, err = break_glass(api)
    assert code == 1 and out == ""
    assert first.strip() in err and "one unreviewed break-glass request at a time" in err


def test_break_glass_needs_reason_and_incident(api: Api) -> None:
    args = ("request", "create", "-r", "groups/oncall", "-p", "member", "-d", "20m", "--break-glass")
    code, _, err = run(api, "alice", *args, "--reason", "down")
    assert code == 1 and "--incident" in err
    code, _, err = run(api, "alice", *args, "--incident", "INC-1")
    assert code == 1 and "--reason" in err
    code, _, err = run(
        api,
        "alice",
        "request",
        "create",
        "-r",
        "groups/oncall",
        "-p",
        "member",
        "-d",
        "1h",
        "--incident",
        "INC-1",
    )
    assert code == 1 and "--incident goes with --break-glass" in err
    code, _, err = break_glass(api, "alice", "-d", "2h")
    assert code == 1 and "allows for break-glass access (30m)" in err
