"""Runs target calls in a small thread pool with a cap per integration, so a dead target's timeouts
hold at most its own slots while healthy targets keep theirs. Jobs wait in a queue per integration and
are started round-robin across integrations. The calls' outcomes are handed back to the loop, which
records them together."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

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
        self._futures: dict[Future[Outcome], Job] = {}
        self._lock = threading.Lock()
        self.completed = 0

    def room(self, integration_id: str) -> int:
        """How many more jobs of this integration may be claimed now (queued ones count)."""
        with self._lock:
            busy = self._running.get(integration_id, 0) + len(self._queues.get(integration_id, ()))
            return max(0, self._claim_ahead - busy)

    @property
    def hungry(self) -> bool:
        """Whether claiming now is worth a store round trip: some integration's queue is shorter than
        what its threads can start, so they would soon idle. A full queue everywhere means wait."""
        with self._lock:
            return not self._queues or any(len(q) < self._cap for q in self._queues.values())

    def add(self, jobs: list[Job]) -> None:
        with self._lock:
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
                    self._futures[self._pool.submit(self._run, job)] = job
                    started = True

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._futures and not any(self._queues.values())

    def wait(self, timeout: float | None) -> list[Outcome]:
        """Wait until a job finishes (or the timeout); returns the outcomes of every finished job."""
        with self._lock:
            futures = list(self._futures)
        if not futures:
            return []
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        outcomes = []
        with self._lock:
            for future in done:
                job = self._futures.pop(future)
                self._running[job.integration_id] -= 1
                error = future.exception()
                if error is None:
                    outcomes.append(future.result())
                else:
                    # A target error is an outcome already; this is the store failing before the call.
                    # Recorded as a failed attempt, the row is released (the heartbeat would otherwise
                    # renew its claim for as long as this worker lives) and retried after a backoff.
                    log.error("a target job failed: %r", error, exc_info=error)
                    failed = TargetError(f"the job failed: {type(error).__name__}")
                    outcomes.append(Outcome(job, error=failed))
            self.completed += len(done)
            self._pump()
        return outcomes

    def drain(self) -> list[Outcome]:
        outcomes = []
        while not self.idle:
            outcomes.extend(self.wait(None))
        return outcomes

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
