"""How `requestable` and `explain` scale with the inventory.

Builds a store with N resources (several PostgreSQL-kind integrations, database > schema > table,
10 tag keys), 2,000 identities in groups, 300 flows (any / under a parent / by tag / exclusions /
queries / saved scopes / bundles) and 50 bundles; then times, for random identities, the first page
of `requestable` and an `explain`, at 100,000 and at 10,000 resources. It prints p50/p99 of each, the
100k/10k ratio of `requestable` (goal <= 2: cost must not grow with the inventory as a scan does), and
the ratio of `requestable` to the bare SQL that returns the same page (the same WHERE clause, sent as
text through the DB-API cursor; goal <= 3). The last line is `ratio=N.NN`, the 100k/10k ratio.

    .venv/bin/python bench/policy_scale.py [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.bundles import BundleSpec, ScopeSpec
from sluice.domain.flows import FlowSpec
from sluice.services.requests.explain import explain
from sluice.services.targeting.bundles import current_flows
from sluice.services.targeting.requestable import RequestableFilter, requestable, requesting_flows
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


def build(engine: Engine, resources: int, rng: random.Random) -> sessionmaker[Session]:
    """The same directory and policy whatever `resources`; only tables per schema vary."""
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    tables = max(1, (resources // len(INTEGRATIONS) - DATABASES * (SCHEMAS + 1)) // (DATABASES * SCHEMAS))
    with transaction(factory) as session:
        stamp = {"created_at": NOW, "updated_at": NOW}
        session.execute(
            insert(Integration),
            [
                {"id": f"int_{i}", "name": i, "kind": "postgresql", "config": {}, **stamp}
                for i in INTEGRATIONS
            ],
        )
        resource_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        for integration in INTEGRATIONS:
            for d in range(DATABASES):
                db_id, db_path = f"r_{integration}_{d}", f"{integration}/db{d}"
                resource_rows.append(_resource(db_id, integration, "database", f"db{d}", db_path, None))
                for s in range(SCHEMAS):
                    sc_id, sc_path = f"{db_id}_{s}", f"{db_path}/s{s}"
                    resource_rows.append(_resource(sc_id, integration, "schema", f"s{s}", sc_path, db_id))
                    for t in range(tables):
                        t_id = f"{sc_id}_{t}"
                        name = f"t{t}" if t % 17 else "secrets"
                        resource_rows.append(
                            _resource(t_id, integration, "table", name, f"{sc_path}/{name}{t}", sc_id)
                        )
                        for key in rng.sample(sorted(TAG_VALUES), 4):
                            tag_rows.append(
                                {
                                    "resource_id": t_id,
                                    "key": key,
                                    "value": rng.choice(TAG_VALUES[key]),
                                    "source": "discovered",
                                    "updated_at": NOW,
                                }
                            )
        for start in range(0, len(resource_rows), 5000):
            session.execute(insert(Resource), resource_rows[start : start + 5000])
        for start in range(0, len(tag_rows), 5000):
            session.execute(insert(ResourceTag), tag_rows[start : start + 5000])
        _directory(session, rng)
        _policy(session, rng)
    if engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum would give a live store
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return factory


def _resource(
    rid: str, integration: str, type_: str, name: str, path: str, parent: str | None
) -> dict[str, Any]:
    return {
        "id": rid,
        "integration_id": f"int_{integration}",
        "type": type_,
        "name": name,
        "path": path,
        "parent_id": parent,
        "discovered_at": NOW,
        "updated_at": NOW,
    }


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


def run(url_for: Callable[[str], str], samples: int) -> float:
    results = {}
    for size in (100_000, 10_000):
        rng = random.Random(7)
        engine = make_engine(url_for(f"bench_{size}"))
        started = time.perf_counter()
        factory = build(engine, size, rng)
        with transaction(factory) as session:
            count = session.query(Resource).count()
        print(f"built {count} resources in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        times = measure(factory, samples, random.Random(11))
        engine.dispose()
        results[size] = times
        print(
            f"{count:>7} resources: requestable p50={_pct(times['requestable'], 0.5):.2f}ms "
            f"p99={_pct(times['requestable'], 0.99):.2f}ms | explain p50={_pct(times['explain'], 0.5):.2f}ms "
            f"p99={_pct(times['explain'], 0.99):.2f}ms | bare SQL p50={_pct(times['raw'], 0.5):.2f}ms"
        )
    scale = statistics.median(results[100_000]["requestable"]) / statistics.median(
        results[10_000]["requestable"]
    )
    explain_scale = statistics.median(results[100_000]["explain"]) / statistics.median(
        results[10_000]["explain"]
    )
    vs_raw = statistics.median(results[100_000]["requestable"]) / statistics.median(results[100_000]["raw"])
    print(f"requestable 100k/10k (p50): {scale:.2f}  (goal <= 2)")
    print(f"explain 100k/10k (p50): {explain_scale:.2f}")
    print(f"requestable / bare SQL of the same page at 100k (p50): {vs_raw:.2f}  (goal <= 3)")
    return scale


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to build the stores on")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
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
            ratio = run(url_for, args.samples)
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
