"""`sluice token create|list|revoke` and `sluice service-account` against a real API (in-process), and
how the store-side bootstrap (`--email`) and one's own tokens (`--name`) are told apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from sluice.cli import output, token_commands
from sluice.cli.main import app
from sluice.services.directory.tokens import digest
from sluice.store.db import transaction
from sluice.store.tables import ApiToken
from tests.api.conftest import Api, email
from tests.cli.conftest import Invoke, api_in_process, assert_clean_failure
from tests.conftest import Clock


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setattr(output, "console", Console(width=300, highlight=False, soft_wrap=False))
    yield from api_in_process(tmp_path, clock, monkeypatch, token_commands)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_create_list_revoke_own_tokens(api: Api) -> None:
    alice = api.tokens["alice"]
    code, out, err = run(
        "token", "create", "--name", "ci", "--expires", "7d", "--scope", "read", "--token", alice
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("slt_") and "\n" not in secret
    with transaction(api.runtime.factory) as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == "ci")).one()
    assert row.token_hash == digest(secret) and row.scopes == "read"
    code, out, _ = run("token", "list", "--token", alice)
    assert code == 0 and "ci" in out and secret[:10] in out and secret not in out
    code, out, _ = run("token", "list", "--json", "--token", alice)
    listed = json.loads(out)["items"]
    assert {t["owner"] for t in listed} == {email("alice")}
    code, out, err = run("token", "revoke", row.id, "--token", alice)
    assert code == 0, err
    assert f"revoked {row.id}" in out
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401


def test_expired_tokens_show_as_expired(api: Api) -> None:
    code, out, _ = run(
        "token", "create", "--name", "short", "--expires", "1h", "--json", "--token", api.tokens["bob"]
    )
    assert code == 0 and json.loads(out)["state"] == "active"
    api.clock.advance(hours=2)
    _, out, _ = run("token", "list", "--json", "--token", api.tokens["bob"])
    assert [t["state"] for t in json.loads(out)["items"] if t["name"] == "short"] == ["expired"]


def test_list_all_is_for_admins(api: Api) -> None:
    run("token", "create", "--name", "mine", "--token", api.tokens["carol"])
    code, _, err = run("token", "list", "--all", "--token", api.tokens["carol"])
    assert code == 1 and "only an admin" in err
    code, out, _ = run("token", "list", "--all", "--json", "--token", api.tokens["root"])
    assert code == 0 and email("carol") in {t["owner"] for t in json.loads(out)["items"]}


def test_a_refusal_is_a_clear_error(api: Api) -> None:
    code, _, err = run("token", "create", "--name", "x", "--scope", "admin", "--token", api.tokens["alice"])
    assert code == 1 and "beyond the owner's role" in err
    code, _, err = run("token", "create", "--token", api.tokens["alice"])
    assert code == 2 and "--name" in err
    code, _, err = run("token", "create", "--name", "x", "--admin", "--token", api.tokens["alice"])
    assert code == 2 and "--email" in err


def test_service_accounts_from_the_cli(api: Api) -> None:
    root = api.tokens["root"]
    code, out, err = run("service-account", "create", "deployer", "--description", "deploys", "--token", root)
    assert code == 0, err
    assert "deployer@service-accounts.invalid" in out
    code, out, _ = run(
        "service-account", "token", "deployer", "--name", "main", "--scope", "request", "--token", root
    )
    assert code == 0
    secret = out.strip()
    _, out, _ = run("service-account", "list", "--json", "--token", root)
    assert [a["name"] for a in json.loads(out)["items"]] == ["deployer"]
    code, _, err = run("service-account", "list", "--token", api.tokens["alice"])
    assert code == 1 and "admin" in err
    assert run("service-account", "disable", "deployer", "--token", root)[0] == 0
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401


def test_the_store_side_bootstrap_stays_apart(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "sluice.yaml"
    config.write_text("identities:\n  - {email: alice@example.com}\n")
    invoke("db", "upgrade")
    assert invoke("apply", "-f", str(config)).exit_code == 0
    mixed = invoke("token", "create", "--email", "alice@example.com", "--name", "x")
    assert_clean_failure(mixed, code=2)
    assert "store-side bootstrap" in mixed.stderr
    bad = invoke("token", "create", "--email", "alice@example.com", "--expires", "soon")
    assert_clean_failure(bad, code=2)
    made = invoke("token", "create", "--email", "alice@example.com", "--expires", "2d", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["token"].startswith("slt_")
