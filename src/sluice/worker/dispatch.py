"""Runs target calls in a small thread pool with a cap per integration, so a dead target's timeouts
hold at most its own slots while healthy targets keep theirs. Jobs wait in a queue per integration and
are started round-robin across integrations."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sluice.worker.reconcile import Job

log = logging.getLogger("sluice.worker")


class Dispatcher:
    def __init__(
        self, run: Callable[[Job], None], *, threads: int, per_integration: int, claim_ahead: int
    ) -> None:
        self._run = run
        self._claim_ahead = max(claim_ahead, per_integration)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sluice-target")
        self._cap = per_integration
        self._queues: dict[str, deque[Job]] = {}
        self._running: dict[str, int] = {}
        self._futures: dict[Future[None], str] = {}
        self._lock = threading.Lock()
        self.completed = 0

    def room(self, integration_id: str) -> int:
        """How many more jobs of this integration may be claimed now (queued ones count)."""
        with self._lock:
            busy = self._running.get(integration_id, 0) + len(self._queues.get(integration_id, ()))
            return max(0, self._claim_ahead - busy)

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
                    self._futures[self._pool.submit(self._run, job)] = integration_id
                    started = True

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._futures and not any(self._queues.values())

    def wait(self, timeout: float | None) -> int:
        """Wait until a job finishes (or the timeout); returns how many finished."""
        with self._lock:
            futures = list(self._futures)
        if not futures:
            return 0
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        with self._lock:
            for future in done:
                integration_id = self._futures.pop(future)
                self._running[integration_id] -= 1
                error = future.exception()
                if error is not None:
                    # Target errors are recorded by the job itself; this is the store failing while
                    # recording. The row keeps its claim until the lease lapses, then it is done again.
                    log.error("recording a target outcome failed: %r", error, exc_info=error)
            self.completed += len(done)
            self._pump()
        return len(done)

    def drain(self) -> None:
        while not self.idle:
            self.wait(None)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
