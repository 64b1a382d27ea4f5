"""Runs target calls in a small thread pool with a cap per integration, so a dead target's timeouts
hold at most its own slots while healthy targets keep theirs. Jobs wait in a queue per integration and
are started round-robin across integrations; a finished call starts the next queued one at once. The
calls' outcomes are handed back to the loop, which records them together."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from sluice.domain.errors import TargetError
from sluice.services.grants.work_outcomes import Job, Outcome

log = logging.getLogger("sluice.worker")


class Dispatcher:
    def __init__(
        self, run: Callable[[Job], Outcome], *, threads: int, per_integration: int, claim_ahead: int
    ) -> None:
        self._run = run
        self._claim_ahead = max(claim_ahead, per_integration)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sluice-target")
        self._cap = per_integration
        self._queues: dict[str, deque[Job]] = {}
        self._running: dict[str, int] = {}
        self._futures: dict[Future[Outcome], Job] = {}  # started and not yet handed back
        self._finished: list[Future[Outcome]] = []
        # Reentrant: a call that is over before its callback is added runs the callback at once, in the
        # thread that holds the lock while starting it.
        self._changed = threading.Condition(threading.RLock())
        self.completed = 0

    def room(self, integration_id: str) -> int:
        """How many more jobs of this integration may be claimed now (queued ones count)."""
        with self._changed:
            busy = self._running.get(integration_id, 0) + len(self._queues.get(integration_id, ()))
            return max(0, self._claim_ahead - busy)

    @property
    def hungry(self) -> bool:
        """Whether claiming now is worth a store round trip: some integration's queue is shorter than
        what its threads can start, so they would soon idle. A full queue everywhere means wait."""
        with self._changed:
            return not self._queues or any(len(q) < self._cap for q in self._queues.values())

    def add(self, jobs: list[Job]) -> None:
        with self._changed:
            for job in jobs:
                self._queues.setdefault(job.integration_id, deque()).append(job)
            self._pump()

    def _pump(self) -> None:
        started = True
        while started:  # one job per integration per round: round-robin
            started = False
            for integration_id, queue in self._queues.items():
                if queue and self._running.get(integration_id, 0) < self._cap:
                    job = queue.popleft()
                    self._running[integration_id] = self._running.get(integration_id, 0) + 1
                    future = self._pool.submit(self._run, job)
                    self._futures[future] = job
                    future.add_done_callback(self._on_finish)
                    started = True

    def _on_finish(self, future: Future[Outcome]) -> None:
        with self._changed:
            self._running[self._futures[future].integration_id] -= 1
            self._finished.append(future)
            self._pump()
            self._changed.notify_all()

    @property
    def idle(self) -> bool:
        with self._changed:
            return not self._futures and not any(self._queues.values())

    def wait(self, timeout: float | None, *, gather: float = 0.0) -> list[Outcome]:
        """Wait until a job finishes (or the timeout); returns the outcomes of every finished job,
        including those that finish within `gather` seconds of the first, so that they are recorded
        together."""
        with self._changed:
            if not self._futures:
                return []
            if not self._changed.wait_for(lambda: self._finished, timeout=timeout):
                return []
            deadline = time.monotonic() + gather
            while len(self._finished) < len(self._futures) and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            finished, self._finished = self._finished, []
            outcomes = [self._outcome(self._futures.pop(future), future) for future in finished]
            self.completed += len(finished)
        return outcomes

    @staticmethod
    def _outcome(job: Job, future: Future[Outcome]) -> Outcome:
        error = future.exception()
        if error is None:
            return future.result()
        # A target error is an outcome already; this is the store failing before the call. Recorded as
        # a failed attempt, the row is released (the heartbeat would otherwise renew its claim for as
        # long as this worker lives) and retried after a backoff.
        log.error("a target job failed: %r", error, exc_info=error)
        return Outcome(job, error=TargetError(f"the job failed: {type(error).__name__}"))

    def drain(self) -> list[Outcome]:
        outcomes = []
        while not self.idle:
            outcomes.extend(self.wait(None))
        return outcomes

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
