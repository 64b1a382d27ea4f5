"""The inventory sync streams: what a connector lists is staged a chunk at a time and compared with the
store in path order. With a chunk of three resources, every case below crosses chunk borders: added,
changed, removed and returning resources, tags (discovered and injected), a parent listed after its
child, a path listed twice, an unchanged inventory (which writes nothing and records no audit event)
and a listing that fails half-way. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import DiscoveredResource
from sluice.domain.errors import TargetError
from sluice.events.audit import Action
from sluice.services.targeting import inventory_apply, inventory_staging
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import SyncResult, sync_integration
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import AuditEvent, Base, Integration, Resource
from sluice.store.targeting_tables import InventoryStaging, ResourceTag

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Listing:
    """A connector whose listing the test sets; it counts what the store had staged as it listed."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self.items: list[DiscoveredResource] = []
        self.fail_after: int | None = None
        self.staged_seen: list[int] = []

    def discover(self) -> Iterable[DiscoveredResource]:
        for n, item in enumerate(self.items):
            if self.fail_after is not None and n == self.fail_after:
                raise TargetError("the target went away", retryable=True)
            with transaction(self.factory) as session:
                self.staged_seen.append(
                    session.scalar(select(func.count()).select_from(InventoryStaging)) or 0
                )
            yield item


class Hub(ConnectorHub):
    def __init__(self, factory: sessionmaker[Session], listing: Listing) -> None:
        super().__init__(factory)
        self.listing = listing

    def for_integration(self, integration: Integration) -> Any:
        return self.listing


class Store:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self.factory = make_session_factory(self.engine)
        with transaction(self.factory) as session:
            session.add(
                Integration(
                    id="int_t", name="t", kind="postgresql", config={}, created_at=START, updated_at=START
                )
            )
        self.listing = Listing(self.factory)
        self.hub = Hub(self.factory, self.listing)
        self.now = START

    def sync(self, items: list[DiscoveredResource]) -> SyncResult:
        self.listing.items = items
        self.now += timedelta(hours=1)
        return sync_integration(self.factory, self.hub, "t", clock=lambda: self.now)

    def resources(self) -> dict[str, tuple[str, str, str | None, bool, datetime]]:
        """path -> (type, name, parent path, live, updated_at)"""
        with transaction(self.factory) as session:
            rows = list(session.scalars(select(Resource)))
            paths = {r.id: r.path for r in rows}
            return {
                r.path: (r.type, r.name, paths.get(r.parent_id or ""), r.deleted_at is None, r.updated_at)
                for r in rows
            }

    def tags(self) -> dict[tuple[str, str], tuple[str, str, str | None]]:
        """(path, key) -> (value, source, discovered value)"""
        with transaction(self.factory) as session:
            rows = session.execute(
                select(
                    Resource.path,
                    ResourceTag.key,
                    ResourceTag.value,
                    ResourceTag.source,
                    ResourceTag.discovered_value,
                ).join(Resource, Resource.id == ResourceTag.resource_id)
            )
            return {(p, k): (v, s, d) for p, k, v, s, d in rows}

    def synced_events(self) -> list[dict[str, Any]]:
        with transaction(self.factory) as session:
            return [
                e.details
                for e in session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action == Action.INVENTORY_SYNCED)
                    .order_by(AuditEvent.id)
                )
            ]

    def staged(self) -> int:
        with transaction(self.factory) as session:
            return session.scalar(select(func.count()).select_from(InventoryStaging)) or 0


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setattr(inventory_staging, "CHUNK", 3)
    made = Store(store_url)
    yield made
    made.engine.dispose()


def table(db: int, schema: int, n: int, **tags: str) -> DiscoveredResource:
    parent = f"t/db{db}/s{schema}"
    return DiscoveredResource("table", f"tab{n}", f"{parent}/tab{n}", parent, tags)


def tree(tables: int = 4) -> list[DiscoveredResource]:
    items = []
    for db in range(2):
        items.append(DiscoveredResource("database", f"db{db}", f"t/db{db}"))
        for schema in range(2):
            items.append(DiscoveredResource("schema", f"s{schema}", f"t/db{db}/s{schema}", f"t/db{db}"))
            items += [table(db, schema, n, env="prod", team=f"team{n}") for n in range(tables)]
    return items


def test_first_sync_adds_everything_across_chunks_with_parents_and_tags(store: Store) -> None:
    result = store.sync(tree())
    assert (result.added, result.updated, result.deleted, result.total) == (22, 0, 0, 22)
    rows = store.resources()
    assert len(rows) == 22
    assert rows["t/db1/s0/tab3"][:4] == ("table", "tab3", "t/db1/s0", True)
    assert rows["t/db1/s0"][2] == "t/db1"
    assert store.tags()[("t/db0/s1/tab2", "team")] == ("team2", "discovered", "team2")
    assert len(store.tags()) == 32
    assert store.synced_events() == [{"integration": "t", "counts": result.as_dict()}]
    assert store.staged() == 0
    with transaction(store.factory) as session:
        assert session.scalar(select(Integration.resource_count)) == 22


def test_an_unchanged_inventory_writes_nothing(store: Store) -> None:
    store.sync(tree())
    before_rows, before_tags = store.resources(), store.tags()
    result = store.sync(tree())
    assert (result.added, result.updated, result.deleted, result.total) == (0, 0, 0, 22)
    assert store.resources() == before_rows  # updated_at included: no row was written
    assert store.tags() == before_tags
    assert len(store.synced_events()) == 1  # only the first sync's
    assert store.staged() == 0
    with transaction(store.factory) as session:
        integration = session.scalar(select(Integration))
        assert integration is not None and integration.last_sync_at == store.now


def test_listing_is_staged_as_it_goes_not_held(store: Store) -> None:
    store.sync(tree(tables=6))
    seen = store.listing.staged_seen
    assert len(seen) == 30
    # Before the 10th resource is listed, the first three chunks are already in the store.
    assert seen[9] == 9
    assert seen[-1] == 27


def test_changes_across_chunk_borders(store: Store) -> None:
    store.sync(tree())
    with transaction(store.factory) as session:
        rid = session.scalar(select(Resource.id).where(Resource.path == "t/db0/s0/tab1"))
        injected = session.get(ResourceTag, (rid, "env"))
        assert injected is not None
        injected.value, injected.source = "staging", "api:ops@example.com"
    items = [i for i in tree() if i.path not in {"t/db0/s0/tab1", "t/db1/s1/tab0"}]  # two vanish
    items = [
        table(0, 1, 2, env="dev", team="team2") if i.path == "t/db0/s1/tab2" else i  # retagged
        for i in items
    ]
    items.append(table(0, 0, 9, env="prod"))  # new, between existing paths
    items.append(DiscoveredResource("schema", "renamed", "t/db1/s1", "t/db1"))  # listed twice: first wins
    result = store.sync(items)
    # A retag is a tag change, not a resource update (as before the sync streamed).
    assert (result.added, result.updated, result.deleted, result.total) == (1, 0, 2, 21)
    rows = store.resources()
    assert rows["t/db0/s0/tab1"][3] is False and rows["t/db1/s1/tab0"][3] is False
    assert rows["t/db0/s0/tab9"][:4] == ("table", "tab9", "t/db0/s0", True)
    assert rows["t/db1/s1"][1] == "s1"
    tags = store.tags()
    assert tags[("t/db0/s1/tab2", "env")] == ("dev", "discovered", "dev")
    assert ("t/db1/s1/tab0", "env") not in tags  # its discovered tags went with it
    assert tags[("t/db0/s0/tab1", "env")] == ("staging", "api:ops@example.com", None)  # injected stays
    assert ("t/db0/s0/tab1", "team") not in tags
    assert store.synced_events()[-1]["counts"] == result.as_dict()
    # It comes back: the same row, live again.
    result = store.sync(tree())
    assert (result.added, result.updated, result.deleted) == (0, 2, 1)  # two revived, tab9 gone
    rows = store.resources()
    assert rows["t/db0/s0/tab1"][3] is True and rows["t/db0/s0/tab9"][3] is False
    assert store.tags()[("t/db0/s0/tab1", "env")] == ("staging", "api:ops@example.com", "prod")


def test_a_parent_listed_after_its_child_is_found(store: Store) -> None:
    # Paths that do not nest: the parent's path sorts after the child's, in a later chunk.
    items = [
        DiscoveredResource("table", "a", "t/a", "t/z"),
        DiscoveredResource("table", "b", "t/b", "t/z"),
        DiscoveredResource("table", "c", "t/c", "t/z"),
        DiscoveredResource("table", "d", "t/d", "t/missing"),
        DiscoveredResource("schema", "z", "t/z"),
    ]
    result = store.sync(items)
    assert result.added == 5
    rows = store.resources()
    assert [rows[p][2] for p in ("t/a", "t/b", "t/c", "t/d")] == ["t/z", "t/z", "t/z", None]
    again = store.sync(items)
    assert (again.added, again.updated, again.deleted) == (0, 0, 0)
    moved = [*items[:3], DiscoveredResource("table", "d", "t/d", "t/z"), items[4]]
    result = store.sync(moved)
    assert (result.added, result.updated, result.deleted) == (0, 1, 0)
    assert store.resources()["t/d"][2] == "t/z"


def test_a_listing_that_fails_half_way_changes_nothing_and_leaves_no_staging(store: Store) -> None:
    store.sync(tree())
    before = store.resources()
    store.listing.fail_after = 10
    with pytest.raises(TargetError):
        store.sync(tree())
    assert store.resources() == before
    assert store.staged() == 0
    with transaction(store.factory) as session:
        integration = session.scalar(select(Integration))
        assert integration is not None and integration.last_sync_error == "the target went away"


def test_tags_with_odd_characters_are_unchanged_when_listed_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unchanged resource is recognised by comparing its listed tags with the store's as text: the
    # two must agree on escaping whatever the characters, or every sync would rewrite these tags.
    odd = {
        "quote": 'say "hi"',
        "slash": "a\\b/c",
        "accent": "café ☕",
        "line": "a\nb\tc",
        "ctl": "\x1f|\u2028",
    }
    items = [*tree(), DiscoveredResource("table", "odd", "t/db0/s0/odd", "t/db0/s0", odd)]
    store.sync(items)
    before = store.tags()
    assert before[("t/db0/s0/odd", "accent")] == ("café ☕", "discovered", "café ☕")
    with transaction(store.factory) as session:
        stamps = sorted(session.scalars(select(ResourceTag.updated_at)))
    read: list[str] = []
    tag_rows = inventory_apply._tag_rows
    monkeypatch.setattr(
        inventory_apply, "_tag_rows", lambda session, ids: tag_rows(session, read.extend(ids) or ids)
    )
    result = store.sync(items)
    assert (result.added, result.updated, result.deleted) == (0, 0, 0)
    assert read == []  # no resource needed its tag rows read
    assert store.tags() == before
    with transaction(store.factory) as session:
        assert sorted(session.scalars(select(ResourceTag.updated_at))) == stamps
    assert len(store.synced_events()) == 1


def test_a_discovered_tag_that_lost_its_discovered_value_is_still_compared(store: Store) -> None:
    # A discovered value in effect with no `discovered_value` (written before that column) must not
    # pass for "not discovered": when the target stops listing the key, the tag goes.
    store.sync(tree())
    with transaction(store.factory) as session:
        rid = session.scalar(select(Resource.id).where(Resource.path == "t/db1/s0/tab2"))
        stale = session.get(ResourceTag, (rid, "team"))
        assert stale is not None
        stale.discovered_value = None
    items = [table(1, 0, 2, env="prod") if i.path == "t/db1/s0/tab2" else i for i in tree()]
    result = store.sync(items)
    assert (result.added, result.updated, result.deleted) == (0, 0, 0)
    tags = store.tags()
    assert ("t/db1/s0/tab2", "team") not in tags
    assert tags[("t/db1/s0/tab2", "env")] == ("prod", "discovered", "prod")
    assert store.synced_events()[-1]["counts"] == result.as_dict()


def test_resources_without_kept_tag_text_are_compared_through_their_tag_rows_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows from before `resources.discovered_tags` have none: the sync builds the text from their tag
    # rows, finds them unchanged, and keeps the text, without a write a reader would see.
    store.sync(tree())
    with transaction(store.factory) as session:
        session.execute(update(Resource).values(discovered_tags=None))
        retagged = session.scalar(select(Resource.id).where(Resource.path == "t/db1/s1/tab3"))
        changed = session.get(ResourceTag, (retagged, "team"))
        assert changed is not None
        changed.value = changed.discovered_value = "elsewhere"  # changed while no text was kept
    before_rows = store.resources()
    read: list[str] = []
    tag_rows = inventory_apply._tag_rows
    monkeypatch.setattr(
        inventory_apply, "_tag_rows", lambda session, ids: tag_rows(session, read.extend(ids) or ids)
    )
    result = store.sync(tree())
    assert (result.added, result.updated, result.deleted) == (0, 0, 0)
    assert read == [retagged]  # only the resource whose tag rows differ from the listing
    assert store.tags()[("t/db1/s1/tab3", "team")] == ("team3", "discovered", "team3")
    assert store.resources() == before_rows  # updated_at included
    with transaction(store.factory) as session:
        kept = {path: text for path, text in session.execute(select(Resource.path, Resource.discovered_tags))}
    assert kept["t/db0/s1/tab2"] == '{"env":"prod","team":"team2"}'
    assert kept["t/db0/s1"] == "{}"
    store.sync(tree())
    assert read == [retagged]  # the kept text answers from now on
