"""The worker's audit duty: now and then, write the audit chain's head where the store cannot rewrite
it — the log and, as an `audit.head` event, every webhook receiver — so that even a rewrite of the whole
chain (every hash recomputed) no longer matches what was exported."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from sluice.events.audit import Action, record
from sluice.events.chain import Head, chain_head
from sluice.store.db import transaction

log = logging.getLogger("sluice.audit")


class AuditHeadExport:
    def __init__(
        self, factory: sessionmaker[Session], *, clock: Callable[[], datetime], every: timedelta
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.every = every
        self._due = clock() + every  # the first export one period after start, then every period
        self._exported: Head | None = None  # the head right after our own last export event

    def run(self) -> Head | None:
        """Export the head when due and it moved since the last export; returns what was exported."""
        now = self.clock()
        if now < self._due:
            return None
        self._due = now + self.every
        with transaction(self.factory) as session:
            head = chain_head(session)
            if head == self._exported:
                return None
            record(
                session,
                now=now,
                actor="sluice",
                action=Action.AUDIT_HEAD,
                subject_type="audit",
                subject_id="chain",
                head=str(head),
            )
            session.flush()
            self._exported = chain_head(session)
        log.info("audit chain head %s", head, extra={"audit_head": str(head)})
        return head

    def next_due(self, session: Session, now: datetime) -> datetime:
        return self._due
