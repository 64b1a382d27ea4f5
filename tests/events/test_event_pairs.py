"""An audit event and its outbox row are written in the flush that records them: on PostgreSQL in one
statement, on SQLite by the unit of work; either way both rows are in the store, linked, and the
objects in hand are persistent with their ids, as the unit of work would leave them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.events.audit import Action, record
from sluice.events.chain import verify_chain
from sluice.events.pairs import MOST_PAIRS
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, OutboxMessage
from tests.events.test_audit_chain import store  # noqa: F401 (the fixture)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _record(session: Session, subject: str, reason: str | None) -> AuditEvent:
    return record(
        session,
        now=NOW,
        actor="alice@example.com",
        action=Action.OBJECT_CHANGED,
        subject_type="flow",
        subject_id=subject,
        reason=reason,
        kind="flow",
        name=subject,
    )


def test_events_and_outbox_rows_are_written_together_and_left_persistent(
    store: tuple[Engine, sessionmaker[Session]],  # noqa: F811
) -> None:
    engine, factory = store
    inserts: list[str] = []

    def note(*args: object) -> None:
        if "INSERT" in str(args[2]):
            inserts.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", note)
    try:
        with transaction(factory) as session:
            first, second = _record(session, "a", "why"), _record(session, "b", None)
            messages = [m for m in session.new if isinstance(m, OutboxMessage)]
            session.flush()
            assert not session.new
            assert all(inspect(o).persistent for o in (first, second, *messages))
            assert first.id is not None and second.id is not None and first.seq == second.seq - 1  # type: ignore[operator]
            assert sorted((m.event_id, m.topic, m.attempts, m.delivered_at) for m in messages) == sorted(
                (e.id, "admin.changed", 0, None) for e in (first, second)
            )
            ids = first.id, second.id
    finally:
        event.remove(engine, "before_cursor_execute", note)
    if engine.dialect.name == "postgresql":
        assert len(inserts) == 1, inserts  # SQLite: as many as its unit of work needs
    with transaction(factory) as session:
        stored = session.execute(
            select(OutboxMessage.event_id, OutboxMessage.payload, AuditEvent.subject_id, AuditEvent.reason)
            .join(AuditEvent, AuditEvent.id == OutboxMessage.event_id)
            .order_by(AuditEvent.seq)
        ).all()
        assert [(row.event_id, row.subject_id, row.reason) for row in stored] == [
            (ids[0], "a", "why"),
            (ids[1], "b", None),
        ]
        assert [row.payload["subject"]["id"] for row in stored] == ["a", "b"]
        assert verify_chain(session).ok


def test_a_flush_of_more_pairs_than_one_statement_takes_is_written_by_the_unit_of_work(
    store: tuple[Engine, sessionmaker[Session]],  # noqa: F811
) -> None:
    _, factory = store
    count = MOST_PAIRS + 1
    with transaction(factory) as session:
        recorded = [_record(session, f"s{n}", None) for n in range(count)]
        session.flush()
        assert all(inspect(item).persistent and item.id is not None for item in recorded)
    with transaction(factory) as session:
        linked = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .join(AuditEvent, AuditEvent.id == OutboxMessage.event_id)
        )
        assert linked == count
        assert verify_chain(session).ok
