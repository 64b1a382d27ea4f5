"""`sluice server` and `sluice worker` as separate processes on a PostgreSQL store: the worker hears
an approval made through the server at once (LISTEN/NOTIFY), not at its next idle wake-up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SLUICE = str(Path(sys.executable).with_name("sluice"))
REACT_WITHIN = 5.0  # the worker's idle ceiling is 30 s; only a notice explains a faster reaction

CONFIG = """\
identities:
  - {email: bob@example.com, name: Bob, groups: [sre]}
  - {email: carol@example.com, name: Carol, groups: [managers]}
integrations:
  - name: groups
    kind: builtin_groups
    config: {groups: [{name: oncall}]}
flows:
  - name: oncall
    requesters: [{group: sre}]
    targets: [{integration: groups, type: group, permissions: [member]}]
    approvers: [{group: managers}]
    max_duration: 1h
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def env(tmp_path: Path, make_pg_database: Callable[[str], str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return dict(
        base,
        SLUICE_HOME=str(tmp_path / "home"),
        SLUICE_DATABASE_URL=make_pg_database("sluice_e2e"),
        SLUICE_SECRET_KEY=Fernet.generate_key().decode(),  # every server and worker shares one
    )


def _run(env: dict[str, str], *args: str, token: str | None = None) -> str:
    extra = {"SLUICE_TOKEN": token} if token else {}
    done = subprocess.run(
        [SLUICE, *args], env=dict(env, **extra), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"sluice {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    config = tmp_path / "sluice.yaml"
    config.write_text(CONFIG)
    _run(env, "db", "upgrade")
    _run(env, "apply", "-f", str(config))
    port = _free_port()
    env["SLUICE_URL"] = f"http://127.0.0.1:{port}"
    started: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("server", "worker")}
    try:
        started["server"] = subprocess.Popen(
            [SLUICE, "server", "--port", str(port)], env=env, stdout=logs["server"], stderr=logs["server"]
        )
        started["worker"] = subprocess.Popen(
            [SLUICE, "worker"], env=env, stdout=logs["worker"], stderr=logs["worker"]
        )

        def healthy() -> bool:
            for name, process in started.items():
                assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
            try:
                return httpx.get(f"{env['SLUICE_URL']}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _until("the server", healthy, 60)
        yield started
    finally:
        for process in started.values():
            if process.poll() is None:
                process.terminate()
        for process in started.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in logs.values():
            handle.close()


def test_worker_reacts_at_once_to_an_approval_made_through_the_server(
    env: dict[str, str], processes: dict[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    bob = _run(env, "token", "create", "--email", "bob@example.com").strip()
    carol = _run(env, "token", "create", "--email", "carol@example.com").strip()

    def synced() -> bool:
        listed = json.loads(_run(env, "inventory", "list", "--json", token=bob))
        return any(r["path"] == "groups/oncall" for r in listed["items"])

    _until("the worker's first inventory sync", synced, 30)
    request_id = _run(
        env, "request", "create", "-r", "groups/oncall", "-p", "member", "-d", "10m", "--reason", "pager",
        token=bob,
    ).strip()  # fmt: skip
    time.sleep(1.0)  # let the worker settle into its idle wait
    _run(env, "request", "approve", request_id, token=carol)
    approved_by = datetime.now(UTC)  # the approval committed before the command returned

    def granted_at() -> datetime | None:
        items = json.loads(_run(env, "access", "list", "--json", token=bob))
        mine = [i for i in items if i["request_id"] == request_id and i["state"] == "active"]
        return datetime.fromisoformat(mine[0]["granted_at"]) if mine else None

    # Measured by the worker's own record of the grant, not by when this test's polling (a CLI process
    # each time, seconds apiece on a busy machine) saw it.
    granted = _until("the grant to become active", granted_at, 30)
    assert (granted - approved_by).total_seconds() <= REACT_WITHIN

    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    for process in processes.values():
        assert process.wait(timeout=20) == 0
    assert "listening for work notices" in (tmp_path / "worker.log").read_text()
