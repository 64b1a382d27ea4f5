"""The store is its owner's alone: SLUICE_HOME 0700, the SQLite database (and its WAL files) and the
secret key 0600, whatever the umask; looser ones from before are tightened at start and logged."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.store.migrate import upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The common default: new files readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _start(home: Path) -> Runtime:
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'sluice.db'}", secret_key=None)
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    with runtime.engine.begin() as connection:  # a write, so the WAL files exist
        connection.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
    return runtime


@pytest.mark.usefixtures("open_umask")
def test_a_new_store_is_private(tmp_path: Path) -> None:
    home = tmp_path / "deep" / ".sluice"
    runtime = _start(home)
    try:
        assert _mode(home) == 0o700
        for name in ("sluice.db", "sluice.db-wal", "sluice.db-shm", "secret.key"):
            assert _mode(home / name) == 0o600, name
    finally:
        runtime.engine.dispose()


@pytest.mark.usefixtures("open_umask")
def test_an_open_store_is_tightened_at_start_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / ".sluice"
    _start(home).engine.dispose()
    home.chmod(0o755)
    for name in ("sluice.db", "secret.key"):
        (home / name).chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="sluice.store"):
        runtime = _start(home)
    runtime.engine.dispose()

    assert _mode(home) == 0o700
    assert _mode(home / "sluice.db") == 0o600
    assert _mode(home / "secret.key") == 0o600
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        f"{home / 'sluice.db'} was open to other users (mode 0644); it is now 0600" in m for m in logged
    )
    assert any(f"{home} was open to other users (mode 0755); it is now 0700" in m for m in logged)


@pytest.mark.usefixtures("open_umask")
def test_a_private_store_starts_without_a_word(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / ".sluice"
    _start(home).engine.dispose()
    with caplog.at_level(logging.WARNING, logger="sluice.store"):
        _start(home).engine.dispose()
    assert not [r for r in caplog.records if r.name == "sluice.store"]


@pytest.mark.usefixtures("open_umask")
def test_a_database_outside_home_keeps_its_folder_as_the_operator_made_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{shared / 'x.db'}", secret_key=None)
    Runtime.from_settings(settings).engine.dispose()
    assert _mode(shared) == 0o755
    assert _mode(shared / "x.db") == 0o600
    assert _mode(tmp_path / "home") == 0o700  # it holds the secret key
