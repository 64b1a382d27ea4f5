"""The worker's health endpoint: liveness, readiness (store answers, last pass recent) and metrics,
both on a worker in this process and on a real `sluice worker --health-port` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_engine, make_session_factory
from sluice.worker.health import HealthServer, PassClock
from sluice.worker.loop import Worker
from tests.conftest import Clock
from tests.migrated import migrate_new_store


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def worker(tmp_path: Path, clock: Clock) -> Iterator[Worker]:
    migrate_new_store(f"sqlite:///{tmp_path / 'store.db'}")
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    factory = make_session_factory(engine)
    box = SecretBox(Fernet.generate_key())
    found = Worker(factory, hub=ConnectorHub(factory), box=box, clock=clock, worker_id="health-test")
    yield found
    engine.dispose()


def _serve(worker: Worker, **options: object) -> HealthServer:
    bind = worker.factory.kw["bind"]
    server = HealthServer(
        engine=bind, factory=worker.factory, clock=worker.clock, passes=worker.passes, **options
    )  # type: ignore[arg-type]
    server.start()
    return server


def test_ready_once_a_pass_finished_and_until_passes_go_stale(worker: Worker) -> None:
    health = _serve(worker, stale_after=timedelta(seconds=0.5))
    base = f"http://127.0.0.1:{health.port}"
    try:
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        waiting = httpx.get(f"{base}/readyz")
        assert waiting.status_code == 503
        assert waiting.json()["problems"] == ["the worker has not finished a pass yet"]
        loop = threading.Thread(target=worker.run_forever, daemon=True)
        loop.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.05)
        worker.stop.set()
        worker.wake.set()
        loop.join(10)
        time.sleep(0.6)
        stale = httpx.get(f"{base}/readyz")
        assert stale.status_code == 503
        assert "the last finished pass was" in stale.json()["problems"][0]
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert "sluice_store_up 1.0" in metrics.text and "sluice_queue_depth" in metrics.text
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        health.stop()


def test_not_ready_when_the_store_does_not_answer(worker: Worker) -> None:
    passes = PassClock()
    passes.mark()
    gone = make_engine(f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/none?connect_timeout=2")
    health = HealthServer(engine=gone, factory=worker.factory, clock=worker.clock, passes=passes)
    health.start()
    try:
        answer = httpx.get(f"http://127.0.0.1:{health.port}/readyz", timeout=10)
        assert answer.status_code == 503
        assert answer.json()["problems"][0].startswith("the store does not answer")
    finally:
        health.stop()
        gone.dispose()


def test_sluice_worker_serves_its_health_port(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(tmp_path / "home")
    command = [str(Path(sys.executable).with_name("sluice")), "worker", "--health-port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "sluice worker never answered /readyz"
            time.sleep(0.1)
        assert "sluice_store_up" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
