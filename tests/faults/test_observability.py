"""Quality: operators can see what the worker does. Metrics are scraped from `/metrics`, `/readyz`
tells a dead store apart, and JSON logs carry grant and request ids but never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.runtime.logs import JsonFormatter
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_engine, make_session_factory
from tests.conftest import Clock
from tests.faults.harness import Setup, expires


def _runtime(setup: Setup, clock: Clock, url: str | None = None) -> Runtime:
    engine = make_engine(url) if url else setup.engine
    factory = make_session_factory(engine)
    return Runtime(
        settings=Settings(home=setup.home, database_url=url or setup.store_url, secret_key=setup.secret_key),
        engine=engine,
        factory=factory,
        hub=ConnectorHub(factory),
        box=setup.box,
        clock=clock,
    )


def test_metrics_health_and_json_logs(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock, tmp_path: Path
) -> None:
    setup.add_postgres("pg", postgres_admin_url, target_database())
    now = clock()
    grant_ids = setup.add_grants("pg", expires(now, [60, 60, 3600]), now=now)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sluice.worker")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        worker = setup.worker(clock)
        worker.run_once()
        clock.advance(seconds=75)
        worker.run_once()
    finally:
        logger.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    done = [line for line in lines if line["msg"].endswith(tuple(grant_ids))]
    assert {(line["operation"], line["grant_id"]) for line in done} >= {("grant", g) for g in grant_ids}
    assert all(line["integration"] == "pg" and line["level"] == "info" for line in done)
    secrets = [setup.box.open(g.credentials) for g in setup.grants() if g.credentials]
    assert secrets and not any(secret in stream.getvalue() for secret in secrets)

    with TestClient(create_app(_runtime(setup, clock))) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json() == {"status": "ok"}
        scraped = client.get("/metrics").text
    assert 'sluice_grants{integration="pg",state="active"} 1.0' in scraped
    assert 'sluice_grants{integration="pg",state="revoked"} 2.0' in scraped
    assert 'sluice_queue_depth{integration="pg"} 0.0' in scraped
    assert 'sluice_revocation_lag_seconds_count{integration="pg"}' in scraped
    assert 'sluice_revocation_lag_seconds_bucket{integration="pg",le="30.0"}' in scraped
    assert 'sluice_target_operations_total{integration="pg",operation="revoke",outcome="done"}' in scraped

    dead = _runtime(setup, clock, "postgresql://postgres@127.0.0.1:1/nowhere")
    with TestClient(create_app(dead)) as client:
        assert client.get("/healthz").status_code == 200  # alive...
        assert client.get("/readyz").status_code == 503  # ...but not ready without its store
        during_outage = client.get("/api/v1/me", headers={"Authorization": "Bearer slt_anything"})
        assert during_outage.status_code == 503  # not a 500: the caller should come back
        assert during_outage.headers["retry-after"] == "5"
        assert during_outage.json()["type"] == "urn:sluice:problem:store-unavailable"
