"""`sluice access ssh-key`: the files it writes and the command it prints log in to a real sshd."""

from __future__ import annotations

import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sluice.cli import ssh_key_command
from sluice.connectors.ssh_certs import SshConnector
from sluice.domain.connection import client_command, connection_of
from tests.cli.conftest import Invoke, assert_clean_failure
from tests.connectors.test_ssh import connector, unit_for
from tests.target_servers import Sshd


class _Answers:
    """The API's answer for one grant, as `GET /access/{id}` gives it to its grantee."""

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item

    def __enter__(self) -> _Answers:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get(self, path: str) -> dict[str, Any]:
        assert path == "/access/gr_0b0000000001"
        return self.item


def _serve(monkeypatch: pytest.MonkeyPatch, item: dict[str, Any]) -> None:
    monkeypatch.setattr(
        ssh_key_command.ApiClient, "from_options", staticmethod(lambda url, token: _Answers(item))
    )


def test_the_printed_command_logs_in_with_the_written_files(
    invoke: Invoke, sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = connector(sshd)
    unit = unit_for(c, "0b0000000001")
    connection = connection_of("ssh", c.grant(unit)).model_dump()
    item = {"connection": connection, **SshConnector.secret_fields(unit.secret or "")}
    assert client_command(connection_of("ssh", connection)) == "sluice access ssh-key gr_0b0000000001"
    _serve(monkeypatch, item)
    folder = tmp_path / "keys"
    result = invoke("access", "ssh-key", "gr_0b0000000001", "--dir", str(folder))
    assert result.exit_code == 0, result.output
    for name in ("gr_0b0000000001", "gr_0b0000000001-cert.pub"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    words = shlex.split(result.stdout.strip())
    assert words[0] == "ssh" and words[-1] == f"{sshd.user}@127.0.0.1"
    test_only = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
    test_only += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
    done = subprocess.run(
        ["ssh", *test_only, *words[1:], "echo logged-in"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and "logged-in" in done.stdout, done.stderr
    c.revoke(unit)


def test_a_grant_that_is_not_ssh_is_a_clear_error(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, {"connection": {"kind": "postgresql", "host": "db"}, "password": "p"})
    assert_clean_failure(invoke("access", "ssh-key", "gr_0b0000000001"))
