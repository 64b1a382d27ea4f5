"""Store-direct commands: db upgrade, apply/plan, token create."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import func, select

from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.store.db import transaction
from sluice.store.tables import ApiToken, Identity
from tests.cli.conftest import Invoke, assert_clean_failure
from tests.target_servers import free_port

GOOD = """\
identities:
  - email: alice@example.com
    name: Alice
    groups: [engineering]
  - email: carol@example.com
    name: Carol
"""

BAD = """\
identities:
  - email: alice@example.com
    name: Alice
  - email: not-an-email
    name: Nobody
flows:
  - name: broken
    requesters: []
    targets:
      - integration: nowhere
        type: table
        permissions: [read]
"""


def _identity_count() -> int:
    runtime = Runtime.from_settings(Settings.from_env())
    with transaction(runtime.factory) as session:
        return int(session.scalar(select(func.count()).select_from(Identity)) or 0)


def test_db_upgrade_then_apply_plan_and_dry_run(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "sluice.yaml"
    config.write_text(GOOD)
    assert invoke("db", "upgrade").exit_code == 0

    planned = invoke("plan", "-f", str(config), "--json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["applied"] is False
    assert {"kind": "identity", "name": "alice@example.com"} in plan["created"]

    dry = invoke("apply", "-f", str(config), "--dry-run")
    assert dry.exit_code == 0 and "+ identity alice@example.com" in dry.stdout
    assert _identity_count() == 0

    applied = invoke("apply", "-f", str(config))
    assert applied.exit_code == 0, applied.output
    assert "applied:" in applied.stdout
    assert _identity_count() == 2

    again = invoke("apply", "-f", str(config), "--json")
    assert json.loads(again.stdout) == {
        "applied": False,
        "created": [],
        "changed": [],
        "removed": [],
        "warnings": [],
    }


def test_db_upgrade_shows_the_installation_id_which_stays_the_same(invoke: Invoke) -> None:
    first = invoke("db", "upgrade", "--json")
    assert first.exit_code == 0, first.output
    installation = json.loads(first.stdout)["installation"]
    assert re.fullmatch(r"[0-9a-f]{16}", installation)
    again = invoke("db", "upgrade")
    assert again.exit_code == 0 and f"installation {installation})" in again.stdout


def test_apply_bad_file_lists_every_problem_and_applies_nothing(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(BAD)
    invoke("db", "upgrade")

    result = invoke("apply", "-f", str(config))

    assert_clean_failure(result, code=2)
    located = re.findall(rf"^  {re.escape(str(config))}:(\d+):(\d+): (.+)$", result.stderr, re.MULTILINE)
    assert len(located) >= 2, result.stderr
    lines = {int(line) for line, _, _ in located}
    assert 4 in lines  # the bad email
    assert "nothing was applied" in result.stderr
    assert _identity_count() == 0


def test_apply_missing_file_is_a_clean_error(invoke: Invoke, tmp_path: Path) -> None:
    invoke("db", "upgrade")
    result = invoke("apply", "-f", str(tmp_path / "absent.yaml"))
    assert_clean_failure(result, code=2)
    assert "absent.yaml" in result.stderr


def test_store_command_before_upgrade_says_how_to_fix_it(invoke: Invoke) -> None:
    result = invoke("token", "create", "--email", "alice@example.com")
    assert_clean_failure(result)
    assert "sluice db upgrade" in result.stderr


def test_token_create_prints_only_the_token(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "sluice.yaml"
    config.write_text(GOOD)
    invoke("db", "upgrade")
    invoke("apply", "-f", str(config))

    plain = invoke("token", "create", "--email", "alice@example.com")
    assert plain.exit_code == 0
    assert plain.stderr == ""
    assert re.fullmatch(r"slt_[A-Za-z0-9_-]{20,}\n", plain.stdout), plain.stdout

    as_json = invoke("token", "create", "--email", "carol@example.com", "--admin", "--json")
    assert as_json.exit_code == 0
    body = json.loads(as_json.stdout)
    assert list(body) == ["token"] and body["token"].startswith("slt_")

    runtime = Runtime.from_settings(Settings.from_env())
    with transaction(runtime.factory) as session:
        tokens = session.scalars(select(ApiToken)).all()
        assert sorted(t.role for t in tokens) == ["admin", "user"]
        assert all(plain.stdout.strip() not in t.token_hash for t in tokens)


def test_token_for_unknown_identity_is_a_clean_error(invoke: Invoke) -> None:
    invoke("db", "upgrade")
    result = invoke("token", "create", "--email", "nobody@example.com")
    assert_clean_failure(result)
    assert "nobody@example.com" in result.stderr


def test_db_upgrade_says_whether_it_migrated(invoke: Invoke) -> None:
    first = invoke("db", "upgrade")
    assert first.exit_code == 0
    assert "migrated from revision none (empty) to " in first.stdout
    again = invoke("db", "upgrade", "--json")
    body = json.loads(again.stdout)
    assert body["upgraded"] is False and body["from"] == body["to"]
    assert "already up to date" in invoke("db", "upgrade").stdout


def test_client_option_help_shows_its_defaults(invoke: Invoke) -> None:
    text = invoke("access", "revoke", "--help").stdout
    assert "$SLUICE_URL or" in text and "$SLUICE_TOKEN" in text
    assert "--reason" in text


def test_plan_refuses_an_alias_bomb_at_its_line(invoke: Invoke, tmp_path: Path) -> None:
    """493 bytes of nested YAML aliases once grew `sluice plan` past 20 GB."""
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"{c}: &{c} [" + ",".join([f"*{chr(ord(c) - 1)}"] * 9) + "]" for c in "bcdefghi"]
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(levels) + "\nidentities: *i\n")
    invoke("db", "upgrade")

    result = invoke("plan", "-f", str(config))

    assert_clean_failure(result, code=2)
    assert f"  {config}:5:8: aliases (*d) repeat more than 10000 values in all" in result.stderr


def test_token_create_takes_a_role(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "sluice.yaml"
    config.write_text(GOOD)
    invoke("db", "upgrade")
    invoke("apply", "-f", str(config))
    auditor = invoke("token", "create", "--email", "carol@example.com", "--role", "auditor")
    assert auditor.exit_code == 0, auditor.output
    clash = invoke("token", "create", "--email", "carol@example.com", "--admin", "--role", "auditor")
    assert_clean_failure(clash, code=2)
    assert "--admin and --role auditor disagree" in clash.stderr


def test_reconcile_that_could_not_compare_an_integration_fails(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "sluice.yaml"
    port = free_port()  # nothing listens there
    config.write_text(
        GOOD
        + f"""\
integrations:
  - name: down-cache
    kind: redis
    config: {{host: 127.0.0.1, port: {port}, connect_timeout_seconds: 1}}
"""
    )
    invoke("db", "upgrade")
    assert invoke("apply", "-f", str(config)).exit_code == 0
    result = invoke("reconcile", "--json")
    assert result.exit_code == 1 and result.stderr.startswith("error: "), result.output
    assert json.loads(result.stdout)["not_compared"] == ["down-cache"]
    assert "not compared (target unreachable): down-cache" in result.stderr
