"""Audit events written in bulk, for the passes that record one per grant of a batch (expiry, the
worker's outcomes): each event's row and its outbox row go through the driver's executemany with one
prebuilt statement each, instead of the ORM's object per row and multi-row INSERT text per flush.
The events are the same as `audit.record`'s, chained the same way and in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from sluice.events.audit import NewEvent
from sluice.events.chain import EVENT_COLUMNS, seal
from sluice.store.bulk import Prepared
from sluice.store.tables import AuditEvent, OutboxMessage

_EVENTS = cast(Table, AuditEvent.__table__)
_OUTBOX = cast(Table, OutboxMessage.__table__)

_INSERT_EVENTS = insert(_EVENTS).values({name: None for name in EVENT_COLUMNS})
# The outbox row finds its event by its place in the chain (unique), so no id has to come back.
_INSERT_OUTBOX = insert(_OUTBOX).from_select(
    ["event_id", "topic", "payload", "created_at", "attempts"],
    select(
        _EVENTS.c.id,
        bindparam("topic", type_=_OUTBOX.c.topic.type),
        bindparam("payload", type_=_OUTBOX.c.payload.type),
        bindparam("created_at", type_=_OUTBOX.c.created_at.type),
        bindparam("attempts", type_=_OUTBOX.c.attempts.type),
    ).where(_EVENTS.c.seq == bindparam("seq", type_=_EVENTS.c.seq.type)),
)


def record_many(session: Session, events: Sequence[NewEvent]) -> None:
    """Write `events` and their outbox rows in the session's transaction. What the session holds is
    flushed first, so events recorded before these (through the ORM) keep their earlier places."""
    if not events:
        return
    session.flush()
    seal(session.connection(), events)
    Prepared(session, _INSERT_EVENTS, reuse=True).execute_many(
        [{name: getattr(e, name) for name in EVENT_COLUMNS} for e in events]
    )
    Prepared(session, _INSERT_OUTBOX, reuse=True).execute_many(
        [
            {"seq": e.seq, "topic": e.action, "payload": e.payload(), "created_at": e.at, "attempts": 0}
            for e in events
        ]
    )
