"""The worker's store duty: keep the query planner's statistics current on SQLite.

SQLite chooses indexes from `sqlite_stat1`, which only `ANALYZE` writes; without it the planner guesses,
and guessed badly enough to read every active grant where an index names the few rows asked for (the
live automatic grants, `request_id IS NULL`). So the worker analyses the store when it starts and then
hourly, sampling at most `SAMPLE_ROWS` rows of each index so that a store of a million resources takes
a moment, not minutes. PostgreSQL's autovacuum keeps its own statistics; there this does nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from sluice.store.db import transaction

EVERY = timedelta(hours=1)
SAMPLE_ROWS = 1000


class PlannerStatistics:
    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock
        self._due: datetime | None = None  # at once, then every period

    def run(self) -> bool:
        """Analyse the store when due; returns whether it did."""
        now = self.clock()
        if self._due is not None and now < self._due:
            return False
        self._due = now + EVERY
        with transaction(self.factory) as session:
            if session.get_bind().dialect.name != "sqlite":
                return False
            connection = session.connection()
            connection.exec_driver_sql(f"PRAGMA analysis_limit={SAMPLE_ROWS}")
            connection.exec_driver_sql("ANALYZE")
        return True

    def next_due(self, session: Session, now: datetime) -> datetime:
        return self._due or now
