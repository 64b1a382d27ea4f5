"""Pooled PostgreSQL store connections: pinged before use only after sitting idle, and a dead idle one
is replaced before a transaction sees it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from sluice.store import db

pytestmark = pytest.mark.postgres


def _counting_pings(engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_in_steady_use_is_not_pinged(
    make_pg_database: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(make_pg_database("sluice_ping"))
    pings = _counting_pings(engine, monkeypatch)
    try:
        for _ in range(20):
            with engine.begin() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        assert pings == []
    finally:
        engine.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    make_pg_database: Callable[[str], str], postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = db.make_engine(make_pg_database("sluice_ping"))
    pings = _counting_pings(engine, monkeypatch)
    try:
        with engine.begin() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        with engine.begin() as conn:  # no error: the dead connection never reaches the caller
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
        assert pings
    finally:
        engine.dispose()
