"""How `requestable`, `explain` and the inventory sync scale with the inventory.

Builds a store with N resources (four PostgreSQL-kind integrations, database > schema > table, four
of 10 tag keys on each table), 2,000 identities in groups, 300 flows (any / under a parent / by tag /
exclusions / queries / saved scopes / bundles) and 50 bundles, at two sizes: 10,000 and 100,000, or
100,000 and 1,000,000 with `--million`. The inventory is loaded in bulk (COPY on PostgreSQL,
executemany on SQLite), streamed, so the build holds no size-sized list.

At each size it times, for random identities, the first page of `requestable` (p50/p95/p99), the bare
SQL that returns the same page (the same WHERE clauses, one statement sent as text through the DB-API
cursor), and an `explain`. At the larger size it then syncs the unchanged inventory of every
integration through the real sync service (`sync_integration`), with a connector that streams the
same resources the build wrote, and prints the wall time, the rows the sync wrote (none are expected)
and the process's peak RSS before and after the sync.

It prints the larger/smaller ratio of `requestable` p50 (goal <= 2: cost must not grow with the
inventory as a scan does) and `requestable` / bare SQL at the larger size (goal <= 3). The last line
is `ratio=N.NN`, the larger/smaller ratio of `requestable`.

    .venv/bin/python bench/policy_scale.py [--million] [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import DiscoveredResource
from sluice.domain.bundles import BundleSpec, ScopeSpec
from sluice.domain.flows import FlowSpec
from sluice.services.requests.explain import explain
from sluice.services.targeting.bundles import current_flows
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.services.targeting.requestable import RequestableFilter, requestable, requesting_flows
from sluice.services.targeting.tags import encode_discovered
from sluice.services.targeting.target_queries import (
    integration_kinds,
    page_parts,
    page_statement,
    target_slices,
)
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.queries import person_of
from sluice.store.tables import AccessFlow, Base, Group, GroupMember, Identity, Integration, Resource
from sluice.store.targeting_tables import Bundle, ResourceTag, Scope

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INTEGRATIONS = [f"pg{n}" for n in range(4)]
DATABASES, SCHEMAS = 10, 25
TAG_VALUES = {
    "pii": ["true", "false"],
    "env": ["prod", "staging", "dev"],
    "owner": [f"team{n}" for n in range(20)],
    "tier": ["gold", "silver", "bronze"],
    "region": ["eu", "us", "ap"],
    "cost": [str(n) for n in range(50)],
    "class": ["public", "internal", "secret"],
    "retention": ["30d", "1y", "7y"],
    "source": ["app", "etl", "manual"],
    "domain": ["sales", "billing", "hr", "ops"],
}
IDENTITIES, GROUPS, FLOWS, BUNDLES, SCOPES = 2000, 100, 300, 50, 20
PAGE = 50
STAMP_COLUMNS = "discovered_at, updated_at"
RESOURCE_COLUMNS = f"id, integration_id, type, name, path, parent_id, discovered_tags, {STAMP_COLUMNS}"
TAG_COLUMNS = "resource_id, key, value, source, discovered_value, updated_at"


def tables_per_schema(resources: int) -> int:
    return max(1, (resources // len(INTEGRATIONS) - DATABASES * (SCHEMAS + 1)) // (DATABASES * SCHEMAS))


def _tags(n: int) -> dict[str, str]:
    """Four of the ten tag keys for the n-th table, the same every time (a sync must list what the
    build wrote), spread like random draws."""
    h = (n * 2654435761) & 0xFFFFFFFF
    keys = sorted(TAG_VALUES)
    start = h % len(keys)
    chosen = [keys[(start + 3 * i) % len(keys)] for i in range(4)]
    return {k: TAG_VALUES[k][(h >> (5 + 4 * i)) % len(TAG_VALUES[k])] for i, k in enumerate(chosen)}


Listed = tuple[str, str, str, str, str | None, dict[str, str]]


def inventory(integration: str, tables: int) -> Iterator[Listed]:
    """One integration's resources, parents first: (id, type, name, path, parent path, tags)."""
    n = INTEGRATIONS.index(integration) * DATABASES * SCHEMAS * tables
    for d in range(DATABASES):
        db_id, db_path = f"r_{integration}_{d}", f"{integration}/db{d}"
        yield db_id, "database", f"db{d}", db_path, None, {}
        for s in range(SCHEMAS):
            sc_id, sc_path = f"{db_id}_{s}", f"{db_path}/s{s}"
            yield sc_id, "schema", f"s{s}", sc_path, db_path, {}
            for t in range(tables):
                name = f"t{t}" if t % 17 else "secrets"
                yield f"{sc_id}_{t}", "table", name, f"{sc_path}/{name}{t}", sc_path, _tags(n)
                n += 1


def _rows(tables: int) -> Iterator[tuple[tuple[Any, ...], list[tuple[str, str, str]]]]:
    """Resource rows (id, integration id, type, name, path, parent id, the discovered tags as a sync
    keeps them), each with its tag rows."""
    for integration in INTEGRATIONS:
        ids: dict[str, str] = {}
        for rid, type_, name, path, parent, tags in inventory(integration, tables):
            if type_ != "table":
                ids[path] = rid
            parent_id = ids[parent] if parent else None
            row = (rid, f"int_{integration}", type_, name, path, parent_id, encode_discovered(tags))
            yield row, [(rid, k, v) for k, v in tags.items()]


def _bulk_load(engine: Engine, tables: int) -> None:
    """The inventory straight into the tables, streamed: COPY on PostgreSQL, executemany on SQLite."""
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            _copy(raw.driver_connection, tables)
        else:
            _executemany(raw.driver_connection, tables)
        raw.commit()
    finally:
        raw.close()


def _copy(conn: Any, tables: int) -> None:
    with conn.cursor() as cur:
        with cur.copy(f"COPY resources ({RESOURCE_COLUMNS}) FROM STDIN") as copy:
            for row, _ in _rows(tables):
                copy.write_row((*row, NOW, NOW))
        with cur.copy(f"COPY resource_tags ({TAG_COLUMNS}) FROM STDIN") as copy:
            for _, tags in _rows(tables):
                for rid, key, value in tags:
                    copy.write_row((rid, key, value, "discovered", value, NOW))


def _executemany(conn: Any, tables: int) -> None:
    bind = sqlite.DATETIME().bind_processor(sqlite.dialect())
    stamp = bind(NOW.replace(tzinfo=None)) if bind else NOW
    rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    for row, tags in _rows(tables):
        rows.append((*row, stamp, stamp))
        tag_rows.extend((rid, key, value, "discovered", value, stamp) for rid, key, value in tags)
        if len(rows) >= 20_000:
            _insert_batch(conn, rows, tag_rows)
    _insert_batch(conn, rows, tag_rows)


def _insert_batch(conn: Any, rows: list[tuple[Any, ...]], tag_rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(f"INSERT INTO resources ({RESOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany(f"INSERT INTO resource_tags ({TAG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", tag_rows)
    rows.clear()
    tag_rows.clear()


def build(engine: Engine, resources: int, rng: random.Random) -> sessionmaker[Session]:
    """The same directory and policy whatever `resources`; only tables per schema vary."""
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        stamp = {"created_at": NOW, "updated_at": NOW}
        session.execute(
            insert(Integration),
            [
                {"id": f"int_{i}", "name": i, "kind": "postgresql", "config": {}, **stamp}
                for i in INTEGRATIONS
            ],
        )
    _bulk_load(engine, tables_per_schema(resources))
    with transaction(factory) as session:
        _directory(session, rng)
        _policy(session, rng)
    if engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum would give a live store
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return factory


def _directory(session: Session, rng: random.Random) -> None:
    groups = [
        {"id": f"g_{n}", "name": f"team{n}", "description": "", "source": "config"} for n in range(GROUPS)
    ]
    groups += [
        {"id": f"g_lead{n}", "name": f"leads{n}", "description": "", "source": "config"} for n in range(10)
    ]
    session.execute(insert(Group), groups)
    people = [
        {
            "id": f"id_{n}",
            "email": f"u{n}@example.com",
            "name": f"U{n}",
            "active": True,
            "attributes": {},
            "source": "config",
            "created_at": NOW,
            "updated_at": NOW,
        }
        for n in range(IDENTITIES)
    ]
    session.execute(insert(Identity), people)
    members = set()
    for n in range(IDENTITIES):
        for g in rng.sample(range(GROUPS), rng.randint(1, 3)):
            members.add((f"g_{g}", f"id_{n}"))
    for lead in range(10):
        for n in rng.sample(range(IDENTITIES), 5):
            members.add((f"g_lead{lead}", f"id_{n}"))
    session.execute(
        insert(GroupMember),
        [{"group_id": g, "identity_id": i, "source": "config"} for g, i in sorted(members)],
    )


def _selector(rng: random.Random, integration: str, type_: str) -> dict[str, Any]:
    db = f"{integration}/db{rng.randrange(DATABASES)}"
    kind = rng.randrange(7)
    if kind == 0:
        return {}
    if kind == 1:
        return {"under": [db]}
    if kind == 2:
        key = rng.choice(sorted(TAG_VALUES))
        return {"tags": [f"{key}={rng.choice(TAG_VALUES[key])}"]}
    if kind == 3:
        return {"under": [db], "exclude": {"names": ["secrets"]}}
    if kind == 4:
        return {"tags": ["pii=true"], "exclude": {"tags": ["env=prod"]}}
    if kind == 5:
        return {
            "query": f'name starts_with "t1" and tag.env != "prod" and parent = "{db}/s{rng.randrange(SCHEMAS)}"'  # noqa: E501
        }
    return {"scope": f"scope{rng.randrange(SCOPES)}"}


def _target(rng: random.Random) -> dict[str, Any]:
    integration = rng.choice(INTEGRATIONS)
    type_ = rng.choices(["table", "schema", "database"], [7, 2, 1])[0]
    permissions = ["connect"] if type_ == "database" else rng.choice([["read"], ["read", "write"]])
    return {
        "integration": integration,
        "type": type_,
        "select": _selector(rng, integration, type_),
        "permissions": permissions,
    }


def _policy(session: Session, rng: random.Random) -> None:
    stamp = {"created_at": NOW, "updated_at": NOW}
    scopes = []
    for n in range(SCOPES):
        key = rng.choice(sorted(TAG_VALUES))
        prefix = f"{rng.choice(INTEGRATIONS)}/db{n % DATABASES}/"
        query = f'tag.{key} = "{rng.choice(TAG_VALUES[key])}" and path starts_with "{prefix}"'
        spec = ScopeSpec(name=f"scope{n}", query=query)
        scopes.append(
            {
                "id": f"sc_{n}",
                "name": spec.name,
                "query": spec.query,
                "description": "",
                "source": "config",
                **stamp,
            }
        )
    session.execute(insert(Scope), scopes)
    bundles = []
    for n in range(BUNDLES):
        spec = BundleSpec.model_validate(
            {"name": f"bundle{n}", "targets": [_target(rng) for _ in range(rng.randint(1, 3))]}
        )
        bundles.append(
            {
                "id": f"b_{n}",
                "name": spec.name,
                "spec": spec.model_dump(mode="json", exclude_none=True),
                "source": "config",
                **stamp,
            }
        )
    session.execute(insert(Bundle), bundles)
    flows = []
    for n in range(FLOWS):
        targets: list[dict[str, Any]] = (
            [{"bundle": f"bundle{rng.randrange(BUNDLES)}"}]
            if rng.random() < 0.25
            else [_target(rng) for _ in range(rng.randint(1, 2))]
        )
        approvers = [{"group": f"leads{rng.randrange(10)}"}] if rng.random() < 0.5 else []
        spec = FlowSpec.model_validate(
            {
                "name": f"flow{n:03d}",
                "requesters": [{"group": f"team{g}"} for g in rng.sample(range(GROUPS), rng.randint(1, 2))],
                "targets": targets,
                "approvers": approvers,
                "max_duration": rng.choice(["1h", "4h", "8h"]),
            }
        )
        flows.append(
            {
                "id": f"f_{n}",
                "name": spec.name,
                "spec": spec.model_dump(mode="json"),
                "source": "config",
                **stamp,
            }
        )
    session.execute(insert(AccessFlow), flows)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(factory: sessionmaker[Session], samples: int, rng: random.Random) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"requestable": [], "explain": [], "raw": []}
    with transaction(factory) as session:
        tables = list(session.scalars(select(Resource.path).where(Resource.type == "table").limit(5000)))
    who = [f"id_{rng.randrange(IDENTITIES)}" for _ in range(samples)]
    for round_ in range(2):  # the first round warms caches and is not counted
        for identity_id in who:
            with transaction(factory) as session:
                identity = session.get(Identity, identity_id)
                assert identity is not None
                spent, page = _timed(
                    partial(
                        requestable,
                        session,
                        identity=identity,
                        where=RequestableFilter(),
                        limit=PAGE,
                        offset=0,
                        now=NOW,
                    )
                )
                raw_spent, raw_paths = _raw(session, identity)
                if raw_paths != [i.resource.path for i in page.items]:
                    raise SystemExit(f"the bare SQL and requestable disagree for {identity.email}")
                target = rng.choice(tables)
                explained, _ = _timed(
                    partial(
                        explain, session, email=identity.email, resource=target, permission="read", now=NOW
                    )
                )
            if round_:
                times["requestable"].append(spent)
                times["raw"].append(raw_spent)
                times["explain"].append(explained)
    return times


def _raw(session: Session, identity: Identity) -> tuple[float, list[str]]:
    """The floor: one SQL statement returning the same page (every distinct target's first page in
    path order, united, then the page), as literal text on the bare DB-API cursor: no ORM, no policy
    work, nothing in Python. Preparing the text is not timed."""
    flows = requesting_flows(current_flows(session), person_of(session, identity, NOW))
    dialect = session.get_bind().dialect
    parts = page_parts(target_slices(flows, integration_kinds(session)), [], dialect.name, PAGE + 1)
    query = page_statement(parts, PAGE + 1, 0)
    text = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    start = time.perf_counter()
    cursor.execute(text)
    paths = [row[0] for row in cursor.fetchall()]
    return time.perf_counter() - start, paths[:PAGE]


class _Listing:
    """A connector that lists one integration's resources as the build wrote them, one at a time."""

    def __init__(self, integration: str, tables: int) -> None:
        self.integration, self.tables = integration, tables

    def discover(self) -> Iterable[DiscoveredResource]:
        for _, type_, name, path, parent, tags in inventory(self.integration, self.tables):
            yield DiscoveredResource(type_, name, path, parent, tags)


class _ListingHub(ConnectorHub):
    def __init__(self, factory: sessionmaker[Session], tables: int) -> None:
        super().__init__(factory)
        self.tables = tables

    def for_integration(self, integration: Integration) -> Any:
        return _Listing(integration.name, self.tables)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _writes(factory: sessionmaker[Session]) -> tuple[Any, ...]:
    """What a sync could write: the newest resource and tag change times, and the row counts."""
    with transaction(factory) as session:
        return (
            session.scalar(select(func.max(Resource.updated_at))),
            session.scalar(select(func.count()).select_from(Resource)),
            session.scalar(select(func.max(ResourceTag.updated_at))),
            session.scalar(select(func.count()).select_from(ResourceTag)),
        )


def time_sync(factory: sessionmaker[Session], resources: int) -> float:
    """Sync every integration's unchanged inventory through the sync service; the wall time."""
    hub = _ListingHub(factory, tables_per_schema(resources))
    before, rss_before = _writes(factory), _peak_rss_mb()
    later = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    started = time.perf_counter()
    results = [sync_integration(factory, hub, name, clock=lambda: later) for name in INTEGRATIONS]
    spent = time.perf_counter() - started
    listed = sum(r.total for r in results)
    changed = sum(r.added + r.updated + r.deleted for r in results)
    unchanged = _writes(factory) == before
    print(
        f"sync of an unchanged inventory of {listed} resources: {spent:.1f}s | rows changed {changed}, "
        f"store untouched: {'yes' if unchanged else 'NO'} | peak RSS {rss_before:.0f} MB before, "
        f"{_peak_rss_mb():.0f} MB after"
    )
    return spent


def run(url_for: Callable[[str], str], samples: int, sizes: tuple[int, int]) -> float:
    small, large = sizes
    results = {}
    for size in (large, small):  # the large store first, while the process is small: its sync's RSS
        rng = random.Random(7)
        engine = make_engine(url_for(f"bench_{size}"))
        started = time.perf_counter()
        factory = build(engine, size, rng)
        with transaction(factory) as session:
            count = session.scalar(select(func.count()).select_from(Resource)) or 0
        print(f"built {count} resources in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        if size == large:
            time_sync(factory, size)
        times = measure(factory, samples, random.Random(11))
        engine.dispose()
        results[size] = times
        print(
            f"{count:>7} resources: requestable p50={_pct(times['requestable'], 0.5):.2f}ms "
            f"p95={_pct(times['requestable'], 0.95):.2f}ms p99={_pct(times['requestable'], 0.99):.2f}ms "
            f"| explain p50={_pct(times['explain'], 0.5):.2f}ms p95={_pct(times['explain'], 0.95):.2f}ms "
            f"| bare SQL p50={_pct(times['raw'], 0.5):.2f}ms p95={_pct(times['raw'], 0.95):.2f}ms"
        )
    label = f"{large // 1000}k/{small // 1000}k"

    def p50(size: int, key: str) -> float:
        return statistics.median(results[size][key])

    scale = p50(large, "requestable") / p50(small, "requestable")
    print(f"requestable {label} (p50): {scale:.2f}  (goal <= 2)")
    print(f"explain {label} (p50): {p50(large, 'explain') / p50(small, 'explain'):.2f}")
    vs_raw = p50(large, "requestable") / p50(large, "raw")
    print(f"requestable / bare SQL of the same page at {large // 1000}k (p50): {vs_raw:.2f}  (goal <= 3)")
    return scale


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to build the stores on")
    parser.add_argument("--million", action="store_true", help="100,000 and 1,000,000 resources")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    sizes = (100_000, 1_000_000) if args.million else (10_000, 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        created: list[str] = []

        def url_for(name: str) -> str:
            if not args.postgres:
                return f"sqlite:///{Path(tmp) / name}.db"
            db = f"{name}_{secrets.token_hex(3)}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            created.append(db)
            return args.postgres.rsplit("/", 1)[0] + "/" + db

        try:
            ratio = run(url_for, args.samples, sizes)
        finally:
            if created:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    for db in created:
                        conn.execute(
                            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                        )
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
