"""The worker's notification duty: audit events (through the outbox) become messages on the
configured channels (email, Slack, Teams).

Each pass:

1. *Fan out* (one short transaction per batch): outbox rows not notified yet become one
   `notifications` row per (event, recipient, channel) by the rules (`rules.py`), and get
   `notified_at`. The UNIQUE key on the three makes a repeated fan-out harmless.
2. For each channel, *claim* a batch of due notifications (`FOR UPDATE SKIP LOCKED`, a lease), *send*
   them outside any transaction and *record* the outcomes (`outcomes.py`). A channel that fails rests
   for the backoff of its failures in a row; while it rests nothing is sent on it.

In the worker the sending runs in one thread per channel, started by the pass and never waited for: a
dead or slow channel delays neither grant work nor the other channels. Delivery is at least once; the
notification's id, stable across retries, lets a receiver recognise a repeat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from sluice.services.notify.channels import Channel
from sluice.services.notify.outcomes import give_up, give_up_channel, record_outcomes
from sluice.services.notify.rules import recipients
from sluice.services.notify.sending import NotifyPolicy, claim, send_all
from sluice.services.notify.subjects import about
from sluice.services.requests.policy import load_flows
from sluice.store.db import transaction
from sluice.store.tables import Notification, OutboxMessage
from sluice.store.types import new_id

log = logging.getLogger("sluice.notify")

_UNHANDLED = select(OutboxMessage.id).where(OutboxMessage.notified_at.is_(None)).limit(1)  # built once


class NotificationDuty:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime],
        channels: Mapping[str, Channel],
        public_url: str | None = None,
        policy: NotifyPolicy | None = None,
        background: bool = False,
        wake: threading.Event | None = None,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.channels = dict(channels)
        self.public_url = public_url
        self.policy = policy or NotifyPolicy()
        self.background = background  # the worker sends in threads; tests may send in the pass
        self.wake = wake  # set when a background pass leaves work due, so the worker comes back
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._failures: dict[str, int] = {}  # per channel: failures in a row
        self._rest_until: dict[str, datetime] = {}

    def run(self) -> int:
        """Fan out, then send what is due on every awake channel. Returns how many were sent in this
        call (always 0 in background mode, where sending continues in the channels' threads)."""
        try:
            self.fan_out(self.clock())
        except Exception:
            log.exception("notification fan-out failed; retrying next pass")
            return 0
        sent = 0
        for name in sorted(self.channels):
            if self._resting(name, self.clock()):
                continue
            if not self.background:
                sent += self.send_pass(name)
                continue
            with self._lock:
                running = self._threads.get(name)
                if running is not None and running.is_alive():
                    continue
                thread = threading.Thread(target=self._background_pass, args=(name,), daemon=True)
                thread.name = f"sluice-notify-{name}"
                self._threads[name] = thread
            thread.start()
        return sent

    def fan_out(self, now: datetime) -> int:
        """Turn outbox rows not notified yet into notifications (one batch); returns how many rows."""
        with transaction(self.factory) as session:
            if not self.channels:  # nobody to tell: everything written so far is handled at once
                result = session.execute(
                    update(OutboxMessage).where(OutboxMessage.notified_at.is_(None)).values(notified_at=now)
                )
                return int(result.rowcount or 0)  # type: ignore[attr-defined]
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.notified_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(self.policy.fan_out_batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            flows = {f.name: f for f in load_flows(session)}
            configured = set(self.channels)
            for row in rows:
                found = about(session, row)
                for r in recipients(session, row, found, flows=flows, configured=configured, now=now):
                    if self._exists(session, row.id, r.recipient, r.channel):
                        continue
                    session.add(
                        Notification(
                            id=new_id("ntf"),
                            outbox_id=row.id,
                            topic=row.topic,
                            channel=r.channel,
                            recipient=r.recipient,
                            role=r.role,
                            request_id=found.request.id if found.request is not None else None,
                            grant_id=found.grant.id if found.grant is not None else None,
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                        )
                    )
                row.notified_at = now
                session.flush()
            return len(rows)

    @staticmethod
    def _exists(session: Session, outbox_id: int, recipient: str, channel: str) -> bool:
        return (
            session.scalar(
                select(Notification.id).where(
                    Notification.outbox_id == outbox_id,
                    Notification.recipient == recipient,
                    Notification.channel == channel,
                )
            )
            is not None
        )

    def send_pass(self, name: str) -> int:
        """Claim, send and record one batch of channel `name`; returns how many were delivered."""
        channel = self.channels[name]
        with transaction(self.factory) as session:
            jobs, lost = claim(session, name, self.clock(), self.policy, self.public_url)
            for row in lost:
                give_up(row, self.clock(), "what it was about, or whom it was for, no longer exists")
        if not jobs:
            return 0
        outcomes = send_all(channel, jobs)
        now = self.clock()
        tried = [o for o in outcomes if o.tried]
        if any(o.error is not None and o.retryable for o in tried):
            rest_until = self._rest(name, now)
        else:
            self._awake(name)
            rest_until = now
        with transaction(self.factory) as session:
            record_outcomes(session, outcomes, now, rest_until, self.policy)
            if self._failures.get(name, 0) >= self.policy.max_attempts:
                give_up_channel(session, name, now, self._failures[name])
        return sum(1 for o in tried if o.error is None)

    def _background_pass(self, name: str) -> None:
        try:
            delivered = self.send_pass(name)
        except Exception:
            log.exception("%s notifications: the pass failed; retrying next pass", name)
            return
        if delivered >= self.policy.batch and self.wake is not None:
            self.wake.set()  # a full batch: more may be due at once

    def _rest(self, name: str, now: datetime) -> datetime:
        with self._lock:
            failures = self._failures.get(name, 0) + 1
            self._failures[name] = failures
            until = now + self.policy.retry_after(failures)
            self._rest_until[name] = until
        log.warning("%s notifications failing (%d in a row): resting until %s", name, failures, until)
        return until

    def _awake(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)
            self._rest_until.pop(name, None)

    def _resting(self, name: str, now: datetime) -> bool:
        with self._lock:
            until = self._rest_until.get(name)
        return until is not None and until > now

    def wait(self, timeout: float = 30.0, *, channels: Iterable[str] | None = None) -> None:
        """Wait for the threads started so far of these channels, or of all (tests; the worker when
        it stops)."""
        with self._lock:
            names = set(self._threads) if channels is None else set(channels)
            threads = [t for n, t in self._threads.items() if n in names]
        for thread in threads:
            thread.join(timeout)

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        """Now while outbox rows wait to be fanned out; else the next due notification of each
        channel, no earlier than the end of its rest."""
        if session.scalar(_UNHANDLED) is not None:
            return now
        moments = []
        for name in self.channels:
            due = session.scalar(
                select(func.min(Notification.next_attempt_at)).where(Notification.channel == name)
            )
            if due is not None:
                with self._lock:
                    rest = self._rest_until.get(name)
                moments.append(max(due, rest) if rest is not None else due)
        return min(moments) if moments else None
