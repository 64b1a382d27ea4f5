"""The audit log as a hash chain, so that an edited, deleted or reordered event is detected.

Every audit event gets a place in one chain per store (`seq`, 1, 2, 3 …), the hash of the event before
it (`prev_hash`) and its own `hash` over its content and both. The chain's head (last `seq` and `hash`)
lives in a one-row table, `audit_chain`. Events are chained when they are flushed: the flush moves the
head with an `UPDATE`, which takes the head row's lock until the transaction ends, so any number of
servers and workers writing at once build one chain in commit order.

Each process remembers the head it last wrote to each store. A flush chains its events onto that head
and moves the head in one statement, which writes the new hash only if the remembered head is still
there. When another process (or a rolled-back transaction) moved it meanwhile, the statement has still
taken the lock and the events' places and returned the hash they follow; a second statement writes the
hash of the events chained onto it.

`verify_chain` walks the chain and names the first event that does not fit. A rewrite of the *whole*
chain from some point on (every later hash recomputed) is caught by comparing with a head exported
earlier (`export_head` writes it to the log and, as an `audit.head` event, to webhooks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    String,
    bindparam,
    case,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from sluice.store.tables import AuditChain, AuditEvent

log = logging.getLogger("sluice.audit")

GENESIS = "0" * 64  # the `prev_hash` of the first event in a chain
CHAIN_ROW = 1


def _canonical_time(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


class Chainable(Protocol):
    """What the chain reads of an event (an `AuditEvent`, or a row written in bulk) and writes on it."""

    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    reason: str | None
    details: dict[str, Any]
    seq: int | None
    prev_hash: str | None
    hash: str | None


# An event row's columns that a writer sets (its id is the store's), in this order: what `Chainable` names.
EVENT_COLUMNS = tuple(Chainable.__annotations__)


def event_hash(item: Chainable, *, seq: int, prev_hash: str) -> str:
    """The hash of one event: its place, the hash before it and everything it says."""
    body = [
        seq,
        prev_hash,
        _canonical_time(item.at),
        item.actor,
        item.action,
        item.subject_type,
        item.subject_id,
        item.reason,
        item.details or {},
    ]
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq, _, digest = text.strip().partition(":")
        if not re.fullmatch(r"[0-9]{1,18}", seq) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError("a chain head is written SEQ:HASH, e.g. 1042:3f9a… (64 hex digits)")
        return cls(int(seq), digest)


def _chain_onto(new: Sequence[Chainable], seq: int, prev_hash: str) -> str:
    """Give each new event its place after (`seq`, `prev_hash`); returns the hash of the last one."""
    for item in new:
        seq += 1
        item.seq = seq
        item.prev_hash = prev_hash
        item.hash = prev_hash = event_hash(item, seq=seq, prev_hash=prev_hash)
    return prev_hash


# The head this process last wrote to each store (its engine): where the next flush most likely chains.
_last_heads: weakref.WeakKeyDictionary[Engine, Head] = weakref.WeakKeyDictionary()
_last_heads_lock = threading.Lock()


def _remember(engine: Engine, head: Head) -> None:
    with _last_heads_lock:
        _last_heads[engine] = head


# The head's two writes, built once (values bound at execution): a flush that writes events runs
# the first, and building it per flush cost about as much as sending it.
# One statement takes the head's lock and the places of the new events. Its hash becomes the one
# chained onto the remembered head if that head is still there; otherwise it stays, and is the hash
# the new events follow. (SET expressions read the row as it was before the UPDATE.)
_MOVE_HEAD = (
    update(AuditChain)
    .where(AuditChain.id == CHAIN_ROW)
    .values(
        seq=AuditChain.seq + bindparam("added", type_=BigInteger),
        hash=case(
            (
                (AuditChain.seq == bindparam("known_seq", type_=BigInteger))
                & (AuditChain.hash == bindparam("known_hash", type_=String)),
                bindparam("hoped", type_=String),
            ),
            else_=AuditChain.hash,
        ),
    )
    .returning(AuditChain.seq, AuditChain.hash)
)
_SET_HASH = update(AuditChain).where(AuditChain.id == CHAIN_ROW).values(hash=bindparam("last_hash"))


def seal(connection: Connection, new: Sequence[Chainable]) -> None:
    """Give each new event its place in the chain, in the given order, and move the head past them:
    the events must then be written in the same transaction."""
    if not new:
        return
    engine = connection.engine
    with _last_heads_lock:
        known = _last_heads.get(engine) or Head(-1, "")  # -1: no head remembered, none matches
    hoped = _chain_onto(new, known.seq, known.hash)
    moved = {"added": len(new), "known_seq": known.seq, "known_hash": known.hash, "hoped": hoped}
    head = connection.execute(_MOVE_HEAD, moved).one_or_none()
    if head is None:  # a store whose tables were made without the migrations, which add the row
        connection.execute(insert(AuditChain).values(id=CHAIN_ROW, seq=0, hash=GENESIS))
        head = connection.execute(_MOVE_HEAD, moved).one()
    if head.seq == known.seq + len(new) and head.hash == hoped:
        _remember(engine, Head(head.seq, hoped))
        return
    last_hash = _chain_onto(new, head.seq - len(new), head.hash)
    connection.execute(_SET_HASH, {"last_hash": last_hash})
    _remember(engine, Head(head.seq, last_hash))


def _seal_new_events(session: Session, _context: Any, _instances: Any) -> None:
    """Before a flush writes new audit events, give each its place in the chain, in the order the
    events were recorded."""
    new = sorted(
        (obj for obj in session.new if isinstance(obj, AuditEvent) and obj.seq is None),
        key=lambda obj: getattr(obj, "_recorded_order", 0),
    )
    if new:
        seal(session.connection(), new)


event.listen(Session, "before_flush", _seal_new_events)


def chain_head(session: Session) -> Head:
    row = session.get(AuditChain, CHAIN_ROW)
    if row is None:
        return Head(0, GENESIS)
    return Head(row.seq, row.hash)


@dataclass
class ChainReport:
    checked: int = 0
    unchained: int = 0  # events written before the store kept a chain
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problem: str | None = None
    problem_event_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "unchained": self.unchained,
            "head": str(self.head),
            "problem": self.problem,
            "event_id": self.problem_event_id,
        }


def _chained(session: Session, batch: int) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq.is_not(None), AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq or after
        session.expunge_all()


def verify_chain(session: Session, *, expect: Head | None = None, batch: int = 2000) -> ChainReport:
    """Walk the chain from its start; stop at the first event that does not fit. `expect` is a head
    exported earlier: the chain must still pass through it."""
    report = ChainReport(head=chain_head(session))
    report.unchained = session.scalar(select(func.count()).where(AuditEvent.seq.is_(None))) or 0
    expected_seq, prev_hash = 1, GENESIS
    for item in _chained(session, batch):
        seq = item.seq or 0
        if seq != expected_seq:
            return _broken(report, item, f"event(s) deleted: seq {expected_seq} to {seq - 1} are missing")
        if item.prev_hash != prev_hash:
            return _broken(report, item, f"event seq {seq} is out of place: it does not follow seq {seq - 1}")
        if event_hash(item, seq=seq, prev_hash=prev_hash) != item.hash:
            return _broken(report, item, f"event seq {seq} was altered: its content does not match its hash")
        if expect is not None and seq == expect.seq and item.hash != expect.hash:
            return _broken(report, item, f"event seq {seq} differs from the exported head {expect}")
        report.checked += 1
        expected_seq, prev_hash = seq + 1, item.hash or ""
    last = expected_seq - 1
    if report.head.seq != last or report.head.hash != prev_hash:
        report.problem = (
            f"the chain ends at seq {last} but its head is {report.head}: the newest event(s) were deleted"
            if report.head.seq > last
            else f"the chain's head {report.head} does not match its last event (seq {last})"
        )
    elif expect is not None and expect.seq > last:
        report.problem = f"the exported head {expect} is beyond the chain's end (seq {last})"
    return report


def _broken(report: ChainReport, item: AuditEvent, problem: str) -> ChainReport:
    report.problem = problem
    report.problem_event_id = item.id
    return report
