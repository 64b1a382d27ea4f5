"""On a PostgreSQL store, `sluice server` and `sluice worker` refuse to start without a shared secret
key, and with a key other than the one the store's secrets were sealed with; each says how to fix it.
(Before, each process made a key file of its own, and a server whose key differed from the worker's
answered `access show` with an error and logged nothing.) `sluice up` on SQLite still makes its key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from sluice.services.grants.secrets import fingerprint
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import SealingKey

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SLUICE = str(Path(sys.executable).with_name("sluice"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(tmp_path: Path, url: str, key: str | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env = dict(base, SLUICE_HOME=str(tmp_path / "home"), SLUICE_DATABASE_URL=url)
    if key:
        env["SLUICE_SECRET_KEY"] = key
    return env


def _start(env: dict[str, str], command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Start a command expected to stop by itself; one that keeps serving is a failure."""
    args = [SLUICE, command] + (["--port", str(_free_port())] if command == "server" else [])
    try:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`sluice {command}` started instead of refusing: {exc.stderr!r}") from exc


def _fingerprints(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return list(session.scalars(select(SealingKey.fingerprint)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", ["server", "worker"])
def test_no_key_on_postgresql_is_refused_with_the_fix_named(
    command: str, tmp_path: Path, make_pg_database: Callable[[str], str]
) -> None:
    done = _start(_env(tmp_path, make_pg_database("sluice_key"), None), command)
    assert done.returncode != 0
    assert "needs SLUICE_SECRET_KEY" in done.stderr
    assert "sluice keys generate" in done.stderr
    assert not (tmp_path / "home" / "secret.key").exists()  # no private key was made on the side


@pytest.mark.parametrize("command", ["server", "worker"])
def test_a_key_other_than_the_stores_is_refused_with_the_fix_named(
    command: str, tmp_path: Path, make_pg_database: Callable[[str], str]
) -> None:
    url = make_pg_database("sluice_key")
    first, other = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    upgraded = subprocess.run(
        [SLUICE, "db", "upgrade"], env=_env(tmp_path, url, first), capture_output=True, text=True, check=False
    )
    assert upgraded.returncode == 0, upgraded.stderr
    # The first worker records its key's fingerprint (never the key) when it starts.
    worker = subprocess.Popen(
        [SLUICE, "worker"], env=_env(tmp_path, url, first), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while _fingerprints(url) != [fingerprint(first)]:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker never recorded its key"
            time.sleep(0.05)
        done = _start(_env(tmp_path, url, other), command)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert done.returncode != 0
    assert f"fingerprint {fingerprint(other)[:16]}" in done.stderr
    assert f"fingerprint {fingerprint(first)[:16]}" in done.stderr
    assert "Set SLUICE_SECRET_KEY to the key the other servers and workers" in done.stderr
    assert first not in done.stderr and other not in done.stderr
    assert _fingerprints(url) == [fingerprint(first)]  # the wrong key did not register itself
