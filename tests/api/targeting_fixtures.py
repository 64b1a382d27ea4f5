"""An API on a store built with `create_all` (the targeting tables have no migration yet), seeded
with the usual people plus a PostgreSQL-kind integration whose inventory is written directly (no
server is needed to list, explain or submit; granting is not exercised here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from sluice.api.app import create_app
from sluice.connectors.base import DiscoveredResource
from sluice.domain.flows import FlowSpec
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import apply_discovery
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import AccessFlow, Base, Integration
from sluice.store.types import new_id
from tests.api.conftest import Api, seed
from tests.conftest import Clock


def table(schema: str, name: str, **tags: str) -> DiscoveredResource:
    return DiscoveredResource("table", name, f"pg/app/{schema}/{name}", f"pg/app/{schema}", dict(tags))


BASE_INVENTORY = [
    DiscoveredResource("database", "app", "pg/app", None, {}),
    DiscoveredResource("schema", "public", "pg/app/public", "pg/app", {}),
    DiscoveredResource("schema", "sales", "pg/app/sales", "pg/app", {"team": "sales"}),
    table("public", "orders", pii="true"),
    table("public", "secrets", pii="true"),
    table("public", "logs"),
    table("sales", "leads", pii="true", owner="bob@example.com"),
]

PII_FLOW: dict[str, Any] = {
    "name": "pii-read",
    "requesters": [{"group": "engineers"}],
    "targets": [
        {
            "integration": "pg",
            "type": "table",
            "select": {
                "under": ["pg/app"],
                "tags": ["pii=true"],
                "exclude": {"names": ["pg/app/public/secrets"]},
            },
            "permissions": ["read"],
        }
    ],
    "approvers": [{"group": "leads"}],
    "max_duration": "2h",
}


def discover(runtime: Runtime, found: list[DiscoveredResource]) -> None:
    with transaction(runtime.factory) as session:
        integration = session.scalar(select(Integration).where(Integration.name == "pg"))
        assert integration is not None
        apply_discovery(session, integration, found, runtime.clock())


def put_flow(runtime: Runtime, spec: dict[str, Any]) -> None:
    flow = FlowSpec.model_validate(spec)
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        row = session.scalar(select(AccessFlow).where(AccessFlow.name == flow.name))
        if row is None:
            session.add(
                AccessFlow(
                    id=new_id("flw"),
                    name=flow.name,
                    spec=flow.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            row.spec, row.updated_at = flow.model_dump(mode="json"), now


def targeting_api(
    tmp_path: Path,
    clock: Clock,
    *,
    pg_config: dict[str, Any] | None = None,
    inventory: list[DiscoveredResource] | None = None,
    flows: list[dict[str, Any]] | None = None,
) -> Iterator[Api]:
    """`pg_config`: the `pg` integration's config (a real server); otherwise a config that is never
    used to connect, and `inventory` (default BASE_INVENTORY) is written as if discovered."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    runtime = Runtime(
        settings=Settings(home=tmp_path, database_url=url, secret_key=None),
        engine=engine,
        factory=factory,
        hub=ConnectorHub(factory),
        box=SecretBox(Fernet.generate_key()),
        clock=clock,
    )
    tokens = seed(runtime)
    now = clock()
    with transaction(factory) as session:
        session.add(
            Integration(
                id=new_id("int"),
                name="pg",
                kind="postgresql",
                config=pg_config or {},
                created_at=now,
                updated_at=now,
            )
        )
    if pg_config is None:
        discover(runtime, BASE_INVENTORY if inventory is None else inventory)
    for flow in [PII_FLOW] if flows is None else flows:
        put_flow(runtime, flow)
    with TestClient(create_app(runtime)) as client:
        yield Api(client=client, runtime=runtime, clock=clock, tokens=tokens)
    engine.dispose()
