"""`sluice apply`, a process of its own, wakes the worker of a running `sluice up`: a flow it adds takes
effect within seconds, not at the worker's idle ceiling. On the embedded SQLite store through the
work signal the worker polls, on PostgreSQL through its notice."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from sluice.domain.states import Actual
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import Grant
from sluice.worker.loop import IDLE_CEILING

SLUICE = str(Path(sys.executable).with_name("sluice"))

BASE = """\
identities:
  - email: alice@example.com
    groups: [sre]
groups:
  - name: sre
integrations:
  - name: helpers
    kind: builtin_groups
    config:
      groups: [{name: responders}]
flows:
  - name: nothing-yet
    requesters: [{group: sre}]
    targets: [{integration: helpers, type: group, permissions: [member]}]
    active: false
"""

AUTOMATIC = """\
  - name: sre-responders
    trigger: automatic
    requesters: [{group: sre}]
    targets: [{integration: helpers, type: group, permissions: [member]}]
    max_duration: 1h
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(check: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until `check` held, or None if it did not within `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


@pytest.fixture
def up(tmp_path: Path, store_url: str) -> Iterator[dict[str, str]]:
    """`sluice up` on a fresh store with BASE applied at start; yields the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(tmp_path / "home")
    env["SLUICE_DATABASE_URL"] = store_url
    config = tmp_path / "sluice.yaml"
    config.write_text(BASE)
    port = _free_port()
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [SLUICE, "up", "--port", str(port), "--config", str(config)], env=env, stdout=log, stderr=log
    )
    try:

        def healthy() -> bool:
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert _wait_for(healthy, 60) is not None, (tmp_path / "up.log").read_text()
        yield env
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_apply_from_another_process_wakes_the_worker_of_sluice_up(up: dict[str, str], tmp_path: Path) -> None:
    engine = make_engine(up["SLUICE_DATABASE_URL"])
    factory = make_session_factory(engine)

    def granted() -> bool:
        with transaction(factory) as session:
            rows = session.scalars(select(Grant).where(Grant.flow_name == "sre-responders")).all()
            return any(g.actual == Actual.ACTIVE for g in rows)

    try:
        time.sleep(3)  # the worker has done its first passes and sleeps, up to its idle ceiling
        config = tmp_path / "sluice.yaml"
        config.write_text(BASE + AUTOMATIC)
        applied = subprocess.run(
            [SLUICE, "apply", "-f", str(config)], env=up, capture_output=True, text=True, timeout=60
        )
        assert applied.returncode == 0, applied.stderr
        took = _wait_for(granted, IDLE_CEILING.total_seconds() + 10)
        assert took is not None, "the automatic flow never took effect"
        assert took < 5, f"the worker acted {took:.1f}s after apply: it was not woken"
    finally:
        engine.dispose()
