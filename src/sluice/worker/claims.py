"""Claims die with their worker. A claim is a short lease that the worker holding it renews from a
heartbeat thread for as long as it lives, however long its target calls take; a worker that dies stops
renewing, and another worker takes its rows over within one lease. Each takeover is logged, counted and
written as an audit event, so an operator sees that a worker vanished mid-work. The writes are
`services/grants/claims.py`'s; this module keeps the thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from sluice.services.grants.claims import renew_claims

log = logging.getLogger("sluice.worker")


class ClaimHeartbeat:
    """A thread that renews this worker's claims every third of the lease until stopped. A failed
    renewal (the store is away) is logged and tried again at the next beat."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        worker_id: str,
        clock: Callable[[], datetime],
        lease: timedelta,
    ) -> None:
        self.factory = factory
        self.worker_id = worker_id
        self.clock = clock
        self.lease = lease
        self.interval = lease.total_seconds() / 3
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> int:
        return renew_claims(self.factory, worker_id=self.worker_id, now=self.clock(), lease=self.lease)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sluice-claim-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # the store may be away for a moment; the next beat tries again
                log.warning("could not renew the claims of worker %s", self.worker_id, exc_info=True)
