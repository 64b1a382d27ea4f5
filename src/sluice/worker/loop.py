"""The worker loop. It sleeps until the next row is due (an end time, a retry, a lapsed claim, a
pending request's deadline, an inventory sync) or until it is woken because something changed, then
expires what is due, reconciles what differs, and goes back to sleep."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from sluice import metrics
from sluice.domain.errors import SluiceError
from sluice.events.head_export import AuditHeadExport
from sluice.events.stream import AuditStream, Sink, sinks_from_env
from sluice.services.connector_hub import ConnectorHub
from sluice.services.decisions import expire_pending_requests
from sluice.services.inventory import integrations_due_for_sync, next_sync_at, sync_integration
from sluice.services.orphans import sweep_orphans
from sluice.services.revocation import expire_due_grants
from sluice.services.secrets import SecretBox
from sluice.services.target_reconcile import reconcile_targets
from sluice.store.db import transaction
from sluice.store.queries import next_wakeup
from sluice.tuning import Tuning
from sluice.worker.claims import ClaimHeartbeat
from sluice.worker.dispatch import Dispatcher
from sluice.worker.people import PeopleDuty
from sluice.worker.reconcile import Reconciler
from sluice.worker.webhooks import WebhookDuty

log = logging.getLogger("sluice.worker")

IDLE_CEILING = timedelta(seconds=30)  # a safety net; normal wake-ups come from due times and notices
EXPIRE_EVERY_SECONDS = 0.25  # while target calls run, newly due grants are ended this often


class Worker:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        hub: ConnectorHub,
        box: SecretBox,
        clock: Callable[[], datetime],
        worker_id: str,
        wake: threading.Event | None = None,
        sync_inventory: bool = True,
        tuning: Tuning | None = None,
        audit_sinks: list[Sink] | None = None,
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.clock = clock
        self.wake = wake or threading.Event()
        self.stop = threading.Event()
        self.sync_inventory = sync_inventory
        self.tuning = tuning or Tuning.from_env()
        self.reconciler = Reconciler(
            factory, hub=hub, box=box, clock=clock, worker_id=worker_id, tuning=self.tuning
        )
        self.dispatcher = Dispatcher(
            self.reconciler.run,
            threads=self.tuning.threads,
            per_integration=self.tuning.per_integration,
            claim_ahead=self.tuning.claim_per_integration,
        )
        self.heartbeat = ClaimHeartbeat(
            factory, worker_id=worker_id, clock=clock, lease=self.tuning.claim_lease
        )
        self._last_orphan_sweep: datetime | None = None
        self.people = PeopleDuty(factory, hub=hub, clock=clock)
        self.webhooks = WebhookDuty(factory, clock=clock)
        self.audit_head = AuditHeadExport(factory, clock=clock, every=self.tuning.audit_head_every)
        sinks = sinks_from_env() if audit_sinks is None else audit_sinks
        self.audit_stream = AuditStream(factory, sinks, clock=clock)

    def run_once(self) -> int:
        """One pass: expire, reconcile everything that needs work now, sync, sweep. Returns the number
        of target operations done. Target calls run in the dispatcher's pool; rows are claimed again
        as calls finish, so a slow target never holds up the others."""
        with transaction(self.factory) as session:
            expire_pending_requests(session, now=self.clock())
        self.people.run()
        self.audit_head.run()
        self.audit_stream.run()
        self.webhooks.run()
        self.expire_due()
        completed_before = self.dispatcher.completed
        last_expiry = time.monotonic()
        try:
            while not self.stop.is_set():
                if self.dispatcher.hungry:
                    self.dispatcher.add(self.reconciler.claim(room=self.dispatcher.room))
                if self.dispatcher.idle:
                    if self.expire_due():
                        continue  # grants came due while the last calls ran
                    break
                # Every outcome finished by now is recorded in one transaction.
                self.reconciler.record(self.dispatcher.wait(EXPIRE_EVERY_SECONDS))
                if time.monotonic() - last_expiry >= EXPIRE_EVERY_SECONDS:
                    self.expire_due()
                    last_expiry = time.monotonic()
        finally:
            self.reconciler.record(self.dispatcher.drain())
        done = self.dispatcher.completed - completed_before
        if self.sync_inventory:
            self.sync_due_integrations()
        last_sweep = self._last_orphan_sweep
        if last_sweep is None or self.clock() - last_sweep >= self.tuning.orphan_sweep_every:
            self.sweep_orphans()
        return done

    def expire_due(self) -> int:
        """End every grant whose end time has passed (in batches); returns how many were ended."""
        ended = 0
        while True:
            with transaction(self.factory) as session:
                batch = len(expire_due_grants(session, now=self.clock()))
            ended += batch
            if batch < 500:
                return ended

    def sync_due_integrations(self) -> None:
        with transaction(self.factory) as session:
            due = integrations_due_for_sync(session, self.clock())
        for name in due:
            try:
                result = sync_integration(self.factory, self.hub, name, clock=self.clock)
                log.info("synced %s: %s", name, result.as_dict())
            except SluiceError as exc:
                log.warning("sync of %s failed: %s", name, exc.detail)

    def sweep_orphans(self) -> int:
        """Remove from each target what this installation made there and no grant justifies (the
        rule lives in `services/orphans.py`; the worker only schedules it)."""
        self._last_orphan_sweep = self.clock()
        return sweep_orphans(self.factory, self.hub, clock=self.clock)

    def seconds_until_next(self) -> float:
        now = self.clock()
        with transaction(self.factory) as session:
            candidates = [
                next_wakeup(session, now),
                self.people.next_due(session, now),
                self.webhooks.next_due(session, now),
                self.audit_head.next_due(),
                self.audit_stream.next_due(),
            ]
            if self.sync_inventory:
                candidates.append(next_sync_at(session) or now)
        if self._last_orphan_sweep is not None:
            candidates.append(self._last_orphan_sweep + self.tuning.orphan_sweep_every)
        present = [c for c in candidates if c is not None]
        if not present:
            return IDLE_CEILING.total_seconds()
        return max(0.0, (min(present) - now).total_seconds())

    def run_forever(self) -> None:
        metrics.serve_from_env(self.factory, self.clock)
        if self.tuning.reconcile_on_start:
            for difference in reconcile_targets(self.factory, self.hub, clock=self.clock, dry_run=False):
                log.warning("reconciled at start: %s", difference.as_dict())
        self.heartbeat.start()
        log.info("worker started")
        while not self.stop.is_set():
            self.wake.clear()
            try:
                self.run_once()
                delay = self.seconds_until_next()
            except Exception:  # the loop must survive a store hiccup; it retries shortly
                log.exception("worker pass failed; retrying shortly")
                delay = 1.0
            if delay > 0:
                self.wake.wait(min(delay + 0.05, IDLE_CEILING.total_seconds()))
        self.dispatcher.shutdown()
        self.heartbeat.stop()
        self.audit_stream.close()
        log.info("worker stopped")
