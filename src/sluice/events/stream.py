"""Audit events streamed out of the store as they are chained: to a syslog collector (RFC 5424 over
TCP, or TLS per RFC 5425, octet-counted frames) and to a JSON-lines file, in chain order, at least once.

Each sink keeps a cursor in the store (`audit_stream_cursors`: the last `seq` it took), moved only after
a batch was written, so a crash or an unreachable collector repeats events rather than losing them. A
duty lock makes one worker at a time stream, so several workers do not send each event several times.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.store.db import transaction
from sluice.store.locks import Duty, try_duty_lock
from sluice.store.tables import AuditEvent, AuditStreamCursor

log = logging.getLogger("sluice.audit")

BATCH = 500
FACILITY_LOG_AUDIT = 13  # RFC 5424 facility 13, "log audit"
SEVERITY_NOTICE = 5
SD_ID = "sluice@32473"  # 32473 is the enterprise number RFC 5612 sets aside for examples
RETRY_AFTER = timedelta(seconds=10)


def event_record(item: AuditEvent) -> dict[str, Any]:
    """What a sink gets of an event: everything it says, its place in the chain and its hash."""
    return {
        "seq": item.seq,
        "hash": item.hash,
        "prev_hash": item.prev_hash,
        "id": item.id,
        "at": item.at.astimezone(UTC).isoformat(),
        "actor": item.actor,
        "action": item.action,
        "subject": {"type": item.subject_type, "id": item.subject_id},
        "reason": item.reason,
        "details": item.details or {},
    }


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printable(text: str, limit: int) -> str:
    """RFC 5424 header fields: printable US-ASCII, no spaces, bounded; '-' when empty."""
    cleaned = "".join(c for c in text if "!" <= c <= "~")[:limit]
    return cleaned or "-"


def syslog_message(record: dict[str, Any], *, hostname: str, procid: int) -> bytes:
    """One RFC 5424 message: header, a structured-data element naming the event, and the event as JSON."""
    pri = FACILITY_LOG_AUDIT * 8 + SEVERITY_NOTICE
    timestamp = datetime.fromisoformat(record["at"]).isoformat(timespec="microseconds").replace("+00:00", "Z")
    subject = f"{record['subject']['type']}:{record['subject']['id']}"
    params = {
        "seq": str(record["seq"]),
        "hash": record["hash"] or "",
        "actor": record["actor"],
        "subject": subject,
    }
    data = " ".join(f'{key}="{_sd_value(value)}"' for key, value in params.items())
    header = (
        f"<{pri}>1 {timestamp} {_printable(hostname, 255)} sluice {procid} "
        f"{_printable(record['action'], 32)} [{SD_ID} {data}] "
    )
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return header.encode("utf-8") + b"\xef\xbb\xbf" + body.encode("utf-8", "surrogatepass")


class Sink(Protocol):
    name: str

    def write(self, records: Sequence[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """Appends one JSON object a line to a file (made 0600), flushed and synced per batch."""

    def __init__(self, path: Path) -> None:
        self.name = f"jsonl:{path}"
        self.path = path

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def close(self) -> None:
        return None


class SyslogSink:
    """RFC 5424 messages over one TCP or TLS connection, octet-counted (RFC 6587 / RFC 5425)."""

    def __init__(self, url: str, *, ca_file: str | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("tcp", "tls") or not parts.hostname:
            raise ValueError(f"a syslog address is tcp://HOST:PORT or tls://HOST:PORT, not {url!r}")
        self.name = f"syslog:{parts.scheme}://{parts.hostname}:{parts.port or 0}"
        self.host = parts.hostname
        self.port = parts.port or (6514 if parts.scheme == "tls" else 514)
        self.tls = parts.scheme == "tls"
        self.ca_file = ca_file
        self.timeout = timeout
        self._socket: socket.socket | None = None
        self._hostname = socket.gethostname()

    def _connect(self) -> socket.socket:
        if self._socket is None:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.tls:
                context = ssl.create_default_context(cafile=self.ca_file)
                raw = context.wrap_socket(raw, server_hostname=self.host)
            self._socket = raw
        return self._socket

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        frames = b""
        for record in records:
            message = syslog_message(record, hostname=self._hostname, procid=os.getpid())
            frames += str(len(message)).encode() + b" " + message
        try:
            self._connect().sendall(frames)
        except OSError:
            self.close()  # the next pass connects again and repeats the batch
            raise

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None


def sinks_from_env() -> list[Sink]:
    sinks: list[Sink] = []
    if address := os.environ.get("SLUICE_AUDIT_SYSLOG", "").strip():
        sinks.append(SyslogSink(address, ca_file=os.environ.get("SLUICE_AUDIT_SYSLOG_CA") or None))
    if path := os.environ.get("SLUICE_AUDIT_JSONL", "").strip():
        sinks.append(JsonLinesSink(Path(path)))
    return sinks


# One chained event a sink has not taken yet, if any.
_UNSENT = (
    select(AuditEvent.seq)
    .where(
        AuditEvent.seq
        > func.coalesce(
            select(AuditStreamCursor.seq)
            .where(AuditStreamCursor.sink == bindparam("sink"))
            .scalar_subquery(),
            0,
        )
    )
    .limit(1)
)


@dataclass
class _SinkState:
    sink: Sink
    retry_at: datetime | None = None


class AuditStream:
    """The worker's duty: hand each sink the chained events it has not taken yet."""

    def __init__(
        self, factory: sessionmaker[Session], sinks: Sequence[Sink], *, clock: Callable[[], datetime]
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.states = [_SinkState(sink) for sink in sinks]

    def run(self) -> int:
        sent = 0
        for state in self.states:
            if state.retry_at is not None and self.clock() < state.retry_at:
                continue
            try:
                sent += self._drain(state.sink)
                state.retry_at = None
            except OSError as exc:
                state.retry_at = self.clock() + RETRY_AFTER
                log.warning("audit stream to %s failed, retrying: %s", state.sink.name, exc)
        return sent

    def _drain(self, sink: Sink) -> int:
        sent = 0
        while True:
            with transaction(self.factory) as session:
                if not try_duty_lock(session, Duty.AUDIT_STREAM):
                    return sent
                cursor = session.get(AuditStreamCursor, sink.name, with_for_update=True)
                if cursor is None:
                    cursor = AuditStreamCursor(sink=sink.name, seq=0)
                    session.add(cursor)
                events = session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.seq.is_not(None), AuditEvent.seq > cursor.seq)
                    .order_by(AuditEvent.seq)
                    .limit(BATCH)
                ).all()
                if not events:
                    return sent
                sink.write([event_record(e) for e in events])
                cursor.seq = events[-1].seq or cursor.seq
                sent += len(events)
            if len(events) < BATCH:
                return sent

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        """Now while a sink that is not resting has events to take; else when a resting one is tried
        again."""
        moments = []
        for state in self.states:
            if state.retry_at is not None and now < state.retry_at:
                moments.append(state.retry_at)
            elif session.scalar(_UNSENT, {"sink": state.sink.name}) is not None:
                moments.append(now)
        return min(moments) if moments else None

    def close(self) -> None:
        for state in self.states:
            state.sink.close()
