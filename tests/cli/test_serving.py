"""The pieces `sluice up/server/worker` are made of: the PostgreSQL notice listener, the SQLite work
signal poller and shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from sluice.cli.errors import CliError
from sluice.cli.serving import WorkNoticeListener, WorkSignalPoller, ensure_port_free
from sluice.runtime.wiring import WORK_CHANNEL
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import Base
from sluice.store.work_signal import raise_work_signal
from tests.target_servers import free_port

SLUICE = str(Path(sys.executable).with_name("sluice"))


@pytest.mark.postgres
def test_listener_wakes_the_worker_on_each_notice(make_pg_database: Callable[[str], str]) -> None:
    url = make_pg_database("sluice_listen")
    wake = threading.Event()
    listener = WorkNoticeListener(url, wake)
    listener.start()
    try:
        assert wake.wait(10), "the listener sets wake once it listens"
        for _ in range(2):
            wake.clear()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(WORK_CHANNEL)))
            assert wake.wait(5), "a NOTIFY from another connection wakes the worker"
    finally:
        listener.stop()


def test_poller_wakes_the_worker_when_another_process_raises_the_signal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine, other = make_engine(url), make_engine(url)  # the other stands for another process
    Base.metadata.create_all(engine)
    wake = threading.Event()
    poller = WorkSignalPoller(make_session_factory(engine), wake)
    poller.start()
    try:
        assert not wake.wait(2.5), "nothing changed: the poller does not wake the worker"
        for _ in range(2):
            with transaction(make_session_factory(other)) as session:
                raise_work_signal(session)
            assert wake.wait(3), "a change committed elsewhere wakes the worker within a second or so"
            wake.clear()
    finally:
        poller.stop()
        engine.dispose()
        other.dispose()


def test_a_busy_port_is_refused_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CliError, match=f"cannot listen on 127.0.0.1:{port}"):
            ensure_port_free("127.0.0.1", port)


def run_up_until_healthy(
    tmp_path: Path, port: int, stop_with: signal.Signals, *, extra_env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Start `sluice up` on its own SLUICE_HOME, wait until it answers /healthz, stop it with a signal;
    returns its exit code and what it wrote to stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env |= {"SLUICE_HOME": str(tmp_path / "home"), **(extra_env or {})}
    process = subprocess.Popen(
        [SLUICE, "up", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1].decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        process.send_signal(stop_with)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, err.decode()


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM])
def test_up_stops_cleanly_on_a_signal(tmp_path: Path, stop_with: signal.Signals) -> None:
    code, text = run_up_until_healthy(tmp_path, free_port(), stop_with)
    assert code == 0, text
    assert "worker stopped" in text
    assert "Traceback" not in text


def test_json_log_mode_prints_only_json(tmp_path: Path) -> None:
    port = free_port()
    _code, text = run_up_until_healthy(
        tmp_path, port, signal.SIGTERM, extra_env={"SLUICE_LOG_FORMAT": "json"}
    )
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    started = [r for r in records if r.get("url") == f"http://127.0.0.1:{port}"]
    assert started and "sluice.db" in started[0]["store"]
    assert not any("SLUICE_TOKEN" in r["msg"] for r in records)  # no demo hint outside the demo


def test_wrong_sign_in_settings_stop_up_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env |= {
        "SLUICE_HOME": str(tmp_path / "home"),
        "SLUICE_OIDC_ISSUER": "http://idp.example.com",
        "SLUICE_OIDC_CLIENT_ID": "sluice",
        "SLUICE_OIDC_CLIENT_SECRET": "s",
    }
    done = subprocess.run(
        [SLUICE, "up", "--port", str(free_port())], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "SLUICE_OIDC_ISSUER" in done.stderr.decode() and "https://" in done.stderr.decode()
    assert not (tmp_path / "home" / "sluice.db").exists()  # refused before the store was touched


def test_up_names_the_identity_provider_when_sign_in_is_on(tmp_path: Path) -> None:
    """The provider is only contacted when someone signs in: a server starts while it is away."""
    extra = {
        "SLUICE_OIDC_ISSUER": f"http://127.0.0.1:{free_port()}",
        "SLUICE_OIDC_CLIENT_ID": "sluice",
        "SLUICE_OIDC_CLIENT_SECRET": "s",
    }
    code, err = run_up_until_healthy(tmp_path, free_port(), signal.SIGTERM, extra_env=extra)
    assert code == 0, err
    assert f"sign-in: {extra['SLUICE_OIDC_ISSUER']}" in err


def test_a_channel_setting_that_cannot_work_stops_the_worker_with_its_name(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env |= {"SLUICE_HOME": str(tmp_path), "SLUICE_SMTP_HOST": "mail.example.com", "SLUICE_SMTP_FROM": "bad"}
    done = subprocess.run([SLUICE, "worker"], env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "error: SLUICE_SMTP_FROM must be an email address, not 'bad'"
