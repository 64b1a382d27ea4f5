"""The worker loop. It sleeps until something is due (a duty's next moment, a retry, a lapsed claim) or
until it is woken because something changed; then it runs the duties that come before target work,
ends what expired and reconciles what differs, runs the duties that come after, and sleeps again.

The worker keeps threads, timing and dispatch only: each periodic duty is declared beside its domain
(`services/duties.Duty`) and every state change is made by a service."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from sluice.events import metrics
from sluice.events.head_export import AuditHeadExport
from sluice.events.stream import AuditStream, Sink, sinks_from_env
from sluice.runtime.tuning import Tuning
from sluice.services.audit.webhook_delivery import WebhookDuty
from sluice.services.directory.ldap_sync import DirectorySync
from sluice.services.directory.schedule_feeds import FeedRefresh
from sluice.services.duties import Duty
from sluice.services.grants import work as grant_work
from sluice.services.grants.claims import release_claims
from sluice.services.grants.orphans import OrphanSweep
from sluice.services.grants.people_pass import PeopleDuty
from sluice.services.grants.retirement import Retirement
from sluice.services.grants.revocation import GrantExpiry
from sluice.services.grants.scheduled import ScheduledGrants
from sluice.services.grants.secrets import SecretBox
from sluice.services.grants.target_reconcile import reconcile_targets
from sluice.services.notify.channels import Channel
from sluice.services.notify.delivery import NotificationDuty
from sluice.services.requests.escalation import Escalation
from sluice.services.requests.pending_expiry import PendingRequestExpiry
from sluice.services.requests.reminders import Reminders
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import InventorySync
from sluice.store.db import transaction
from sluice.store.planner_stats import PlannerStatistics
from sluice.worker.claims import ClaimHeartbeat
from sluice.worker.dispatch import Dispatcher
from sluice.worker.health import PassClock

log = logging.getLogger("sluice.worker")

IDLE_CEILING = timedelta(seconds=30)  # a safety net; normal wake-ups come from due times and notices
EXPIRE_EVERY_SECONDS = 0.25  # while target calls run, newly due grants are ended this often
# Outcomes finishing this close together are recorded in one store transaction: a transaction per
# finished call made the store, not the targets, the bound of an expiry storm.
GATHER_SECONDS = 0.01


class Beside:
    """Duties run in a thread beside the pass's target work; `join` waits for them and raises what
    stopped them, as if they had run in the pass's own thread."""

    def __init__(self, duties: list[Duty]) -> None:
        self._duties = duties
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="sluice-beside", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for duty in self._duties:
                duty.run()
        except Exception as exc:  # raised again in the pass's thread, which handles it
            self._error = exc

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


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
        channels: Mapping[str, Channel] | None = None,
        public_url: str | None = None,
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.clock = clock
        self.wake = wake or threading.Event()
        self.stop = threading.Event()
        self._claims_unrecorded = False  # a pass failed with outcomes unrecorded: release its claims
        self.passes = PassClock()  # read by the health endpoint's /readyz
        self.tuning = tuning or Tuning.from_env()
        self.reconciler = grant_work.GrantWork(
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
        self.people = PeopleDuty(factory, hub=hub, clock=clock)
        self.expiry = GrantExpiry(factory, clock=clock)
        self.orphans = OrphanSweep(factory, hub, clock=clock, every=self.tuning.orphan_sweep_every)
        sinks = sinks_from_env() if audit_sinks is None else audit_sinks
        self.audit_stream = AuditStream(factory, sinks, clock=clock)
        # Sends in one thread per channel, so a dead channel never holds up this loop.
        self.notifications = NotificationDuty(
            factory,
            clock=clock,
            channels=channels or {},
            public_url=public_url,
            background=True,
            wake=self.wake,
        )
        # In the order they run: before target work, what decides which grants should exist; in a
        # thread beside the pass's target calls, once the first have started, what the world hears
        # (its sends need not hold up a revoke, nor the recording of one); after target work, what
        # reads or cleans the targets (slow, and never urgent).
        self.before_target_work: list[Duty] = [
            PendingRequestExpiry(factory, clock=clock),
            FeedRefresh(factory, clock=clock),
            ScheduledGrants(factory, clock=clock),
            Escalation(factory, clock=clock),
            Reminders(factory, clock=clock),
            DirectorySync(factory, clock=clock),
            self.people,
        ]
        self.alongside_target_work: list[Duty] = [
            AuditHeadExport(factory, clock=clock, every=self.tuning.audit_head_every),
            self.audit_stream,
            WebhookDuty(factory, clock=clock),
            self.notifications,
        ]
        self.after_target_work: list[Duty] = [
            *([InventorySync(factory, hub, clock=clock)] if sync_inventory else []),
            self.orphans,
            Retirement(factory, hub, clock=clock),
            PlannerStatistics(factory, clock=clock),
        ]

    @property
    def duties(self) -> list[Duty]:
        return [*self.before_target_work, *self.alongside_target_work, self.expiry, *self.after_target_work]

    def run_once(self) -> int:
        """One pass: the duties before target work, expiry, every target call that is due now (with
        the duties alongside it run beside it once its first calls are under way), the duties after.
        Returns the number of target operations done. Target calls run in the dispatcher's pool; rows
        are claimed again as calls finish, so a slow target never holds up the others."""
        due = self._due_duties()
        for duty in self.before_target_work:
            if id(duty) in due:
                duty.run()
        if self._claims_unrecorded:
            release_claims(self.factory, worker_id=self.reconciler.worker_id)
            self._claims_unrecorded = False
        self.expire_due()
        try:
            done = self._target_work([d for d in self.alongside_target_work if id(d) in due])
        except Exception:
            # Outcomes that could not be recorded (the store went away) leave their rows claimed by this
            # worker, and its heartbeat would renew those claims for as long as it lives: no other
            # worker could take them over. The next pass releases them, and the calls are made again
            # (grants and revokes are idempotent).
            self._claims_unrecorded = True
            raise
        for duty in self.after_target_work:
            if id(duty) in due:
                duty.run()
        return done

    def _due_duties(self) -> set[int]:
        """The duties with work now (`id`s), asked in one transaction: most passes are woken by one
        change and find every other duty idle, and asking costs a statement or two where running a
        duty costs a transaction of its own. A duty's `next_due` says when it has work, including
        work that a change brings (new events, a changed flow): that is also when the loop wakes."""
        now = self.clock()
        scheduled = [d for d in self.duties if d is not self.expiry]  # expiry runs in every pass
        with transaction(self.factory) as session:
            return {id(d) for d in scheduled if (at := d.next_due(session, now)) is not None and at <= now}

    def _target_work(self, alongside: list[Duty]) -> int:
        """Every target call that is due now, and ends that come due meanwhile; returns how many. The
        `alongside` duties run once, in a thread of their own started with the first calls, so the
        outcomes of those calls are recorded without waiting for them."""
        completed_before = self.dispatcher.completed
        beside: Beside | None = None
        last_expiry = time.monotonic()
        completed_at_expiry = completed_before  # the pass ended what was due just before
        # A claim that took every row due now (an empty one, or one that filled no integration's share)
        # leaves none to find: claiming again before something new can be due (a grant ended, a notice
        # of new work, the next expiry tick) would only read the grants again.
        may_find_work = True
        try:
            while not self.stop.is_set():
                if may_find_work and self.dispatcher.hungry:
                    claim = self.reconciler.claim(room=self.dispatcher.room)
                    self.dispatcher.add(claim.jobs)
                    may_find_work = not claim.took_all
                if alongside:
                    beside, alongside = Beside(alongside), []
                if self.dispatcher.idle:
                    # Grants may have come due while calls ran; with no call since the last expiry,
                    # there was no time for that (the next pass is due at the next end time anyway).
                    if self.dispatcher.completed != completed_at_expiry:
                        completed_at_expiry = self.dispatcher.completed
                        if self.expire_due():
                            may_find_work = True
                            continue
                    break
                # Every outcome finished by now (and soon after) is recorded in one transaction.
                outcomes = self.dispatcher.wait(EXPIRE_EVERY_SECONDS, gather=GATHER_SECONDS)
                self.reconciler.record(outcomes)
                if any(outcome.error is not None for outcome in outcomes):
                    may_find_work = True  # a failed grant may have been ended: its revoke is due now
                if self.wake.is_set():
                    may_find_work = True
                if time.monotonic() - last_expiry >= EXPIRE_EVERY_SECONDS:
                    self.expire_due()
                    last_expiry, completed_at_expiry = time.monotonic(), self.dispatcher.completed
                    may_find_work = True  # retries whose backoff ended, and grants ended meanwhile
        finally:
            self.reconciler.record(self.dispatcher.drain())
            if beside is not None:
                beside.join()
        return self.dispatcher.completed - completed_before

    def expire_due(self) -> int:
        """End every grant whose end time has passed; returns how many were ended."""
        return self.expiry.run()

    def sweep_orphans(self) -> int:
        """Sweep orphans now (the rule is `services/grants/orphans.py`'s; the worker only schedules it)."""
        return self.orphans.sweep()

    def seconds_until_next(self) -> float:
        now = self.clock()
        with transaction(self.factory) as session:
            candidates = [grant_work.next_due(session, now), *(d.next_due(session, now) for d in self.duties)]
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
                self.passes.mark()
            except Exception:  # the loop must survive a store hiccup; it retries shortly
                log.exception("worker pass failed; retrying shortly")
                delay = 1.0
            if delay > 0:
                self.wake.wait(min(delay + 0.05, IDLE_CEILING.total_seconds()))
        self.dispatcher.shutdown()
        self.heartbeat.stop()
        self.notifications.wait(timeout=10)
        self.audit_stream.close()
        log.info("worker stopped")
