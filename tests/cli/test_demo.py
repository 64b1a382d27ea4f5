"""`seed_demo`: idempotent, complete with PostgreSQL, and still useful without it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from sluice.runtime.demo import POSTGRES_URL_ENV, seed_demo
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.store.db import transaction
from sluice.store.migrate import upgrade
from sluice.store.tables import AccessFlow, Identity, Integration, Resource


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'store.db'}", secret_key=None)
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    return runtime


def _names(runtime: Runtime) -> dict[str, set[str]]:
    with transaction(runtime.factory) as session:
        return {
            "identities": set(session.scalars(select(Identity.email))),
            "integrations": set(session.scalars(select(Integration.name))),
            "flows": set(session.scalars(select(AccessFlow.name))),
            "resources": set(session.scalars(select(Resource.path).where(Resource.deleted_at.is_(None)))),
        }


def test_without_postgres_seeds_everything_else_and_says_so_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(POSTGRES_URL_ENV, f"postgresql://postgres:s3cret@127.0.0.1:{port}/postgres")
    said: list[str] = []

    seed_demo(runtime, say=said.append)

    assert len(said) == 1 and "not reachable" in said[0]
    assert "s3cret" not in said[0]
    names = _names(runtime)
    assert names["identities"] == {"alice@example.com", "bob@example.com", "carol@example.com"}
    assert names["integrations"] == {"groups"}
    assert names["flows"] == {"oncall-membership"}
    assert names["resources"] == {"groups/oncall"}
    assert seed_demo(runtime, say=said.append).is_empty


@pytest.mark.postgres
def test_with_postgres_seeds_the_demo_database_idempotently(
    runtime: Runtime, postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(POSTGRES_URL_ENV, postgres_admin_url)
    said: list[str] = []

    first = seed_demo(runtime, say=said.append)
    second = seed_demo(runtime, say=said.append)

    assert said == []
    assert not first.is_empty and second.is_empty
    names = _names(runtime)
    assert names["integrations"] == {"groups", "local-pg"}
    assert names["flows"] == {"engineering-read-tables", "oncall-membership"}
    tables = {f"local-pg/sluice_demo/public/{t}" for t in ("orders", "customers", "invoices")}
    assert tables <= names["resources"]
