"""An audit event and its outbox row, written in one statement on PostgreSQL.

`record` adds both to the session; the unit of work would insert the events, wait for their ids,
then insert the outbox rows that refer to them: two round trips on every transition. On PostgreSQL a
flush that holds new pairs writes them instead in one statement, a data-modifying CTE (the events,
then the outbox rows joined to them by their place in the chain), and the objects become persistent
as if the unit of work had written them. Both rows are still written in the caller's flush, in its
transaction. SQLite has no data-modifying CTE; there the unit of work writes them as before.

This runs after `chain._seal_new_events` (registered later, on import of this module by
`events.audit`), so every new event already has its place (`seq`), which is unique.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from sqlalchemy import BigInteger, Column, Table, bindparam, event, insert, select, union_all
from sqlalchemy.orm import Session, make_transient_to_detached

from sluice.events.chain import EVENT_COLUMNS  # and with it chain's listener, registered first
from sluice.store.tables import AuditEvent, OutboxMessage

_events = cast(Table, AuditEvent.__table__)
_outbox = cast(Table, OutboxMessage.__table__)
_MESSAGE_COLUMNS = ("topic", "payload", "created_at", "delivered_at", "attempts", "notified_at")
# A flush with more new pairs than this is left to the unit of work: the statement binds 17 values a
# pair and is built once per count, and PostgreSQL takes at most 65,535 values in one statement. The
# passes that record many events at once write them in bulk anyway (`audit_batch.record_many`).
MOST_PAIRS = 64


def _new_pairs(session: Session) -> list[tuple[AuditEvent, OutboxMessage]]:
    """New outbox rows whose (new, chained) event is written in this flush, in chain order. An event
    with more than one new outbox row (`record` never makes one) is left to the unit of work."""
    pairs = [
        (message.event, message)
        for message in session.new
        if isinstance(message, OutboxMessage)
        and message.event is not None
        and message.event in session.new
        and message.event.seq is not None
    ]
    if len({id(item) for item, _ in pairs}) < len(pairs):
        return []
    return sorted(pairs, key=lambda pair: pair[0].seq or 0)


def _rows(prefix: str, columns: list[Column[Any]], count: int) -> Any:
    """`count` rows of bound values (`{prefix}_{column}_{row}`), typed as the columns: a union of
    one-row selects, which SQLAlchemy can cache (a VALUES list or a multi-row INSERT it cannot)."""
    selects = [
        select(*(bindparam(f"{prefix}_{c.name}_{row}", type_=c.type).label(c.name) for c in columns))
        for row in range(count)
    ]
    return selects[0] if count == 1 else union_all(*selects)


@lru_cache(maxsize=16)
def _statement(count: int) -> Any:
    """Writes `count` events and their outbox rows; answers (outbox id, event id, event seq) each."""
    written = (
        insert(_events)
        .from_select(list(EVENT_COLUMNS), _rows("event", [_events.c[n] for n in EVENT_COLUMNS], count))
        .returning(_events.c.id, _events.c.seq)
        .cte("written")
    )
    keyed = [Column("event_seq", BigInteger), *(_outbox.c[n] for n in _MESSAGE_COLUMNS)]
    rows = _rows("message", keyed, count).subquery("messages")
    messages = (
        insert(_outbox)
        .from_select(
            ["event_id", *_MESSAGE_COLUMNS],
            select(written.c.id, *(rows.c[name] for name in _MESSAGE_COLUMNS)).join_from(
                written, rows, written.c.seq == rows.c.event_seq
            ),
        )
        .returning(_outbox.c.id, _outbox.c.event_id)
        .cte("queued")
    )
    return select(messages.c.id, messages.c.event_id, written.c.seq).join_from(
        messages, written, written.c.id == messages.c.event_id
    )


def _values(pairs: list[tuple[AuditEvent, OutboxMessage]]) -> dict[str, Any]:
    bound: dict[str, Any] = {}
    for row, (item, message) in enumerate(pairs):
        bound.update({f"event_{name}_{row}": getattr(item, name) for name in EVENT_COLUMNS})
        bound.update({f"message_{name}_{row}": _message_value(message, name) for name in _MESSAGE_COLUMNS})
        bound[f"message_event_seq_{row}"] = item.seq
    return bound


def _message_value(message: OutboxMessage, name: str) -> Any:
    value = getattr(message, name)
    return 0 if name == "attempts" and value is None else value  # the column's default


def _write_pairs(session: Session, _context: Any, _instances: Any) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    pairs = _new_pairs(session)
    if not pairs or len(pairs) > MOST_PAIRS:
        return
    rows = session.connection().execute(_statement(len(pairs)), _values(pairs))
    written = {seq: (message_id, event_id) for message_id, event_id, seq in rows}
    for item, message in pairs:
        message_id, event_id = written[item.seq]
        session.expunge(message)
        session.expunge(item)
        item.id = event_id
        message.id, message.event_id, message.attempts = message_id, event_id, message.attempts or 0
        for written_object in (item, message):
            make_transient_to_detached(written_object)
            session.add(written_object)


event.listen(Session, "before_flush", _write_pairs)
