"""Reading on-call schedules published as iCalendar feeds (a file or an http(s) URL, as on-call
services export them). The text last read is kept on the schedule row, so "who is on call" is answered
from the store and a feed that cannot be read keeps its last known shifts (the error is shown)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.shifts import ScheduleSpec
from sluice.store.db import transaction
from sluice.store.people_tables import Schedule

log = logging.getLogger("sluice.schedules")

REFRESH_EVERY = timedelta(minutes=10)
MAX_FEED_BYTES = 5 * 1024 * 1024
TIMEOUT_SECONDS = 10.0


def read_feed(location: str) -> str:
    """The text of a feed at a file path or an http(s) URL. Raises OSError or httpx.HTTPError."""
    if location.startswith(("http://", "https://")):
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=True) as client:
            response = client.get(location)
            response.raise_for_status()
            if len(response.content) > MAX_FEED_BYTES:
                raise OSError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
            return response.text
    path = Path(location.removeprefix("file://"))
    if path.stat().st_size > MAX_FEED_BYTES:
        raise OSError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
    return path.read_text(encoding="utf-8")


def due_feeds(session: Session, now: datetime) -> list[tuple[str, str]]:
    found = []
    for row in session.scalars(select(Schedule)):
        location = ScheduleSpec.model_validate(row.spec).ical
        if location and (row.feed_read_at is None or now - row.feed_read_at >= REFRESH_EVERY):
            found.append((row.name, location))
    return found


def refresh_feeds(
    factory: sessionmaker[Session], *, clock: Callable[[], datetime], read: Callable[[str], str] = read_feed
) -> int:
    """Read every feed that is due; network and disk reads happen outside any transaction."""
    with transaction(factory) as session:
        due = due_feeds(session, clock())
    refreshed = 0
    for name, location in due:
        text, error = None, None
        try:
            text = read(location)
        except (OSError, httpx.HTTPError, UnicodeDecodeError) as exc:
            error = f"cannot read the feed: {exc}"
            log.warning("schedule %s: %s", name, error)
        with transaction(factory) as session:
            row = session.scalar(select(Schedule).where(Schedule.name == name))
            if row is None:
                continue
            row.feed_read_at = clock()
            row.feed_error = error
            if text is not None:
                row.feed_text = text
                refreshed += 1
    return refreshed


class FeedRefresh:
    """The worker's duty: read the iCalendar feeds of on-call schedules every REFRESH_EVERY."""

    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def run(self) -> int:
        return refresh_feeds(self.factory, clock=self.clock)

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        moments = [
            now if row.feed_read_at is None else row.feed_read_at + REFRESH_EVERY
            for row in session.scalars(select(Schedule))
            if ScheduleSpec.model_validate(row.spec).ical
        ]
        return min(moments) if moments else None
