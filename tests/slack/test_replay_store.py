"""The seen-signature record behind replay refusal, on SQLite and PostgreSQL: a signature is taken
once, refused while kept, and forgotten once it is too old to be accepted anyway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sluice.services.notify.slack_inbound import REPLAY_WINDOW, first_sighting
from sluice.store.db import make_engine, make_session_factory, transaction
from tests.migrated import migrate_new_store


def test_a_signature_is_taken_once(store_url: str) -> None:
    migrate_new_store(store_url)
    engine = make_engine(store_url)
    factory = make_session_factory(engine)
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    try:
        with transaction(factory) as session:
            assert first_sighting(session, "v0=abc", now) is True
        with transaction(factory) as session:
            assert first_sighting(session, "v0=abc", now + REPLAY_WINDOW) is False
            assert first_sighting(session, "v0=def", now) is True
        with transaction(factory) as session:  # long after: the row is gone, as any timestamp would be
            assert first_sighting(session, "v0=abc", now + REPLAY_WINDOW * 2 + timedelta(seconds=1)) is True
    finally:
        engine.dispose()
