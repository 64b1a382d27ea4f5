"""`sluice access show` and `sluice access credentials` against a real API (in-process): each kind of
grant is offered its own client, and `--env` prints what that client reads."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from sluice.cli import access_commands, output
from sluice.cli.main import app
from sluice.domain.states import Actual, Desired
from sluice.store.db import transaction
from sluice.store.tables import Grant, Identity, Integration
from sluice.store.types import new_id
from tests.api.conftest import Api, email
from tests.cli.conftest import api_in_process
from tests.conftest import Clock

PASSWORD = "pw 'quoted' $HOME"


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setattr(output, "console", Console(width=300, highlight=False, soft_wrap=False))
    yield from api_in_process(tmp_path, clock, monkeypatch, access_commands)


def active_grant(api: Api, kind: str, connection: dict[str, Any]) -> str:
    """An active grant of alice's on an integration of `kind`, as the worker leaves it."""
    now = api.clock()
    with transaction(api.runtime.factory) as session:
        integration = Integration(
            id=new_id("int"), name=f"t-{kind}", kind=kind, config={}, created_at=now, updated_at=now
        )
        person = session.scalars(select(Identity).where(Identity.email == email("alice"))).one()
        grant_id = new_id("gr")
        session.add(
            Grant(
                id=grant_id,
                identity_id=person.id,
                integration=integration,
                resource_path=f"t-{kind}/shop",
                resource_type="database",
                permission="read",
                desired=Desired.ACTIVE,
                actual=Actual.ACTIVE,
                duration_seconds=3600,
                starts_at=now,
                ends_at=now + timedelta(hours=1),
                principal=str(connection["username"]),
                connection=connection,
                credentials=api.runtime.box.seal(PASSWORD),
                created_at=now,
                updated_at=now,
            )
        )
    return grant_id


def run(api: Api, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*args, "--token", api.tokens["alice"]], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


MARIADB = {
    "host": "127.0.0.1",
    "port": 3306,
    "database": "shop",
    "username": "sluice_1234567_abcdef",
    "tls": False,
    "flavor": "mariadb",
}


def test_a_mariadb_grant_is_offered_mysql_not_psql(api: Api) -> None:
    grant_id = active_grant(api, "mysql", MARIADB)
    code, out, _ = run(api, "access", "show", grant_id)
    assert code == 0
    assert "psql" not in out
    assert f'eval "$(sluice access credentials {grant_id} --env)"' in out
    assert "mysql --host=127.0.0.1 --port=3306 --user=sluice_1234567_abcdef shop" in out
    assert "mariadb" in out  # the flavour the connector returned is shown, not dropped

    code, out, _ = run(api, "access", "show", grant_id, "--json")
    body = json.loads(out)
    assert body["connection"] == {"kind": "mysql", "table": None, **MARIADB}
    assert body["env"]["MYSQL_PWD"] == PASSWORD


def test_env_prints_lines_a_shell_can_eval(api: Api) -> None:
    pg = {
        "host": "db.internal",
        "port": 5432,
        "database": "app",
        "username": "sluice_ab",
        "sslmode": "verify-full",
    }
    grant_id = active_grant(api, "postgresql", pg)
    code, out, _ = run(api, "access", "credentials", grant_id, "--env")
    assert code == 0
    assert out.splitlines()[0] == "export PGHOST=db.internal"
    shown = subprocess.run(
        ["sh", "-c", out + '\nprintf "%s|%s|%s" "$PGSSLMODE" "$PGPASSWORD" "$PGDATABASE"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert shown.stdout == f"verify-full|{PASSWORD}|app"

    code, out, _ = run(api, "access", "credentials", grant_id, "--json")
    assert json.loads(out)["password"] == PASSWORD
    assert shlex.split(json.loads(run(api, "access", "show", grant_id, "--json")[1])["client"])[0] == "psql"


def test_credentials_of_a_grant_with_no_client_env_say_so(api: Api) -> None:
    ldap = {
        "url": "ldap://x",
        "group": "cn=g,dc=x",
        "member": "uid=a,dc=x",
        "attribute": "member",
        "username": "uid=a",
    }
    grant_id = active_grant(api, "ldap_groups", ldap)
    code, _, err = run(api, "access", "credentials", grant_id, "--env")
    assert code == 1
    assert "no client environment" in err
