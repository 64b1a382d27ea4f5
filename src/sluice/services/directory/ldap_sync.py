"""Syncing an LDAP directory source: read the directory outside any transaction, then write what
changed in one transaction as the source `ldap:<name>` (`ldap_people.py`, `ldap_groups_sync.py`),
with a `directory.synced` audit event and the result kept on the source. The worker's duty syncs each
source every `sync_interval`; `sluice directory sync` and `POST /api/v1/directory/sources/{name}/sync`
sync at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.errors import NotFound
from sluice.events.audit import Action, record
from sluice.services.directory.ldap_config import LdapSourceConfig
from sluice.services.directory.ldap_groups_sync import sync_groups, wanted_groups
from sluice.services.directory.ldap_people import SyncContext, SyncResult, sync_people
from sluice.services.directory.ldap_reader import DirectoryReadError, DirectorySnapshot, read_directory
from sluice.services.directory.sources import LDAP_PREFIX
from sluice.store.db import transaction
from sluice.store.directory_tables import DirectorySource

log = logging.getLogger("sluice.directory")

Notify = Callable[[Session], None]


@dataclass(frozen=True)
class SyncOutcome:
    name: str
    ok: bool
    error: str | None
    result: SyncResult | None


def apply_snapshot(
    session: Session,
    *,
    source: str,
    snapshot: DirectorySnapshot,
    now: datetime,
    known_conflicts: frozenset[str],
) -> SyncResult:
    """Make the rows `source` owns match `snapshot`. Does not commit."""
    ctx = SyncContext(session, source, now, SyncResult(source=source), known_conflicts)
    owned = sync_people(ctx, snapshot)
    sync_groups(ctx, wanted_groups(snapshot, owned))
    return ctx.result


def sync_source(
    factory: sessionmaker[Session], name: str, *, clock: Callable[[], datetime], notify: Notify | None = None
) -> SyncOutcome:
    """Sync one source now. A directory that cannot be read changes nothing (the error is kept on the
    source, logged and audited). Raises NotFound for a name no source has."""
    with transaction(factory) as session:
        row = session.scalar(select(DirectorySource).where(DirectorySource.name == name))
        if row is None:
            names = ", ".join(session.scalars(select(DirectorySource.name).order_by(DirectorySource.name)))
            listed = names or "none (declare one under directory_sources: and apply)"
            raise NotFound(f"no directory source {name!r}; sources: {listed}")
        config = LdapSourceConfig.model_validate(row.spec)
    try:
        snapshot, error = read_directory(name, config), None
    except DirectoryReadError as exc:
        snapshot, error = None, exc.detail
        log.warning("directory sync failed: %s", error)
    source = LDAP_PREFIX + name
    with transaction(factory) as session:
        row = session.scalar(select(DirectorySource).where(DirectorySource.name == name).with_for_update())
        if row is None:
            raise NotFound(f"directory source {name!r} was removed meanwhile")
        now = clock()
        row.last_sync_at, row.last_error = now, error
        row.next_sync_at = now + timedelta(seconds=row.sync_interval_seconds)
        if snapshot is None:
            record(
                session,
                now=now,
                actor=source,
                action=Action.DIRECTORY_SYNC_FAILED,
                subject_type="directory_source",
                subject_id=name,
                reason=error,
                source=source,
            )
            return SyncOutcome(name, False, error, None)
        known = frozenset((row.last_result or {}).get("conflicts") or [])
        result = apply_snapshot(session, source=source, snapshot=snapshot, now=now, known_conflicts=known)
        row.last_result = result.as_dict()
        record(
            session,
            now=now,
            actor=source,
            action=Action.DIRECTORY_SYNCED,
            subject_type="directory_source",
            subject_id=name,
            source=source,
            counts=result.counts(),
        )
        if notify is not None and any(result.counts().values()):
            notify(session)
    log.info("directory source %s synced: %s", name, result.counts())
    return SyncOutcome(name, True, None, result)


def sync_sources(
    factory: sessionmaker[Session],
    names: list[str] | None,
    *,
    clock: Callable[[], datetime],
    notify: Notify | None = None,
) -> list[SyncOutcome]:
    """Sync the named sources (every source when None), one after the other."""
    if names is None:
        with transaction(factory) as session:
            names = list(session.scalars(select(DirectorySource.name).order_by(DirectorySource.name)))
    return [sync_source(factory, name, clock=clock, notify=notify) for name in names]


def claim_due_sources(factory: sessionmaker[Session], now: datetime) -> list[str]:
    """The sources due now, each claimed by moving its next sync on (compare-and-set), so that two
    workers never read one directory at the same time."""
    claimed = []
    with transaction(factory) as session:
        due = session.execute(
            select(
                DirectorySource.id,
                DirectorySource.name,
                DirectorySource.next_sync_at,
                DirectorySource.sync_interval_seconds,
            ).where(or_(DirectorySource.next_sync_at.is_(None), DirectorySource.next_sync_at <= now))
        ).all()
        for source_id, name, due_at, interval in due:
            moved = session.execute(
                update(DirectorySource)
                .where(DirectorySource.id == source_id, _same_due(due_at))
                .values(next_sync_at=now + timedelta(seconds=interval))
            )
            if moved.rowcount:  # type: ignore[attr-defined]
                claimed.append(name)
    return claimed


def _same_due(due_at: datetime | None):  # type: ignore[no-untyped-def]
    column = DirectorySource.next_sync_at
    return column.is_(None) if due_at is None else column == due_at


class DirectorySync:
    """The worker's duty: sync each directory source when its interval has passed. It runs before the
    people pass, so what a sync changed is re-evaluated in the same pass."""

    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def run(self) -> list[SyncOutcome]:
        outcomes = []
        for name in claim_due_sources(self.factory, self.clock()):
            try:
                outcomes.append(sync_source(self.factory, name, clock=self.clock))
            except NotFound:
                log.info("directory source %s was removed before its sync", name)
            except Exception:  # one broken source must not hold up the people pass and target work
                log.exception("directory source %s: sync failed; tried again at its next interval", name)
        return outcomes

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        moments = [now if at is None else at for at in session.scalars(select(DirectorySource.next_sync_at))]
        return min(moments) if moments else None
