"""CLI tests: a temporary SLUICE_HOME (embedded SQLite store) and a runner that captures both streams."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner, Result

from sluice.cli.client import ApiClient
from sluice.cli.main import app
from tests.api.conftest import Api, make_api
from tests.conftest import Clock

Invoke = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("SLUICE_HOME", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no stored `sluice login` session
    for name in (
        "SLUICE_DATABASE_URL",
        "SLUICE_SECRET_KEY",
        "SLUICE_OLD_SECRET_KEYS",
        "SLUICE_TOKEN",
        "SLUICE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def invoke(home: Path) -> Invoke:
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return run


def assert_clean_failure(result: Result, code: int = 1) -> None:
    """Failed the way a person should see: an `error:` line, the exit code, and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def api_in_process(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, *commands: ModuleType
) -> Iterator[Api]:
    """The API on a SQLite store, served in-process to the client of each command module given."""
    for served in make_api(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, clock):
        transport = served.client._transport

        def client(url: str | None, token: str | None, transport: object = transport) -> ApiClient:
            return ApiClient("http://testserver", token or "", transport=transport)  # type: ignore[arg-type]

        for module in commands:
            monkeypatch.setattr(module.ApiClient, "from_options", staticmethod(client))
        yield served
