"""How long `sluice plan`'s access diff takes for a change to one flow, against `requestable` itself.

Builds the store of `policy_scale.py` (2,000 identities in groups, 300 flows over tags, hierarchies,
queries, scopes and bundles, 100,000 resources) and adds 20,000 live grants, each on a resource that
one of its holder's flows covers. The change: one flow's requesters gain a group (the config as
`sluice config export` writes it, with that one edit). After a warm-up that reads a few
affected people's catalogues (parsed flows and compiled statements are cached then), it times:

* the access diff of the change (`access_diff`: apply in a savepoint, `requestable` after and before
  for the affected people, re-evaluation of their live grants and pending requests, approvers of what
  is pending or live through the changed flow, roll back), once, as `sluice plan` runs it: the flows
  as the change leaves them are parsed inside the timed run;
* the floor: two full `requestable` computations (every page, walked by path as the diff walks it)
  for each affected person, with no change applied, on the same store in the same run.

Prints the figures and, last, `ratio=N.NN` (diff / floor; goal <= 2).

    .venv/bin/python bench/plan_diff.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                        [--people 2000] [--resources 100000] [--grants 20000]
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import policy_scale
import psycopg
import yaml
from psycopg import sql
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.flows import FlowSpec
from sluice.domain.policy import ResourceRef, covers, is_requester
from sluice.domain.states import Actual, Desired
from sluice.services.config.access_diff import access_diff, access_of
from sluice.services.config.affected import PolicyState, affected_people
from sluice.services.config.apply import apply_config
from sluice.services.config.document import ConfigDocument
from sluice.services.config.export import export_config
from sluice.services.config.file import parse_config
from sluice.services.targeting.bundles import current_flows
from sluice.services.targeting.tags import resource_refs
from sluice.services.targeting.target_queries import integration_kinds, selection_clause
from sluice.store.db import make_engine, transaction
from sluice.store.people_queries import people_snapshot
from sluice.store.tables import AccessRequest, Grant, Identity, Integration, Resource

NOW = policy_scale.NOW
CHANGED_FLOW = "flow002"  # schemas and tables under one database
WARM_UP = 5  # affected people whose catalogue is read once, untimed, before either side is timed


def add_grants(factory: sessionmaker[Session], count: int, rng: random.Random) -> None:
    """`count` active grants, each through a flow its holder may request under, on a table it covers.
    The tables a flow covers come from the same SQL `requestable` walks, once per flow."""
    with transaction(factory) as session:
        for row in session.scalars(select(Integration)):  # a config that `sluice plan` accepts
            row.config = {"host": "127.0.0.1", "user": "sluice", "databases": ["db0"]}
        flows = current_flows(session)
        people = people_snapshot(session, NOW)
        kinds = integration_kinds(session)
        dialect = session.get_bind().dialect.name
        requests: list[dict[str, Any]] = []
        grants: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        ids = sorted(people)
        usable_of: dict[str, list[FlowSpec]] = {}  # each person's flows, worked out once
        tables_of: dict[str, list[str]] = {}  # flow -> ids of the tables its targets select
        refs: dict[str, ResourceRef] = {}
        while len(grants) < count:
            identity_id = rng.choice(ids)
            if identity_id not in usable_of:
                usable_of[identity_id] = [f for f in flows if is_requester(f, people[identity_id])]
            usable = usable_of[identity_id]
            if not usable:
                continue
            flow = rng.choice(usable)
            if flow.name not in tables_of:
                clause = selection_clause([flow], kinds, dialect)
                query = select(Resource.id).where(Resource.type == "table", clause).order_by(Resource.id)
                tables_of[flow.name] = list(session.scalars(query))
            if not tables_of[flow.name]:
                continue
            resource_id = rng.choice(tables_of[flow.name])
            if resource_id not in refs:
                resource = session.get_one(Resource, resource_id)
                refs[resource_id] = resource_refs(session, [resource])[0]
            ref = refs[resource_id]
            if (identity_id, ref.path) not in seen and any(covers(t, ref, "read") for t in flow.targets):
                seen.add((identity_id, ref.path))
                _grant(requests, grants, identity_id, flow.name, ref)
        for start in range(0, len(requests), 5000):
            session.execute(insert(AccessRequest), requests[start : start + 5000])
            session.execute(insert(Grant), grants[start : start + 5000])


def _grant(
    requests: list[dict[str, Any]],
    grants: list[dict[str, Any]],
    identity_id: str,
    flow: str,
    ref: ResourceRef,
) -> None:
    request_id = f"req_{len(requests)}"
    stamp = {"created_at": NOW, "updated_at": NOW}
    requests.append(
        {
            "id": request_id,
            "requester_id": identity_id,
            "flow_name": flow,
            "reason": "bench",
            "duration_seconds": 28800,
            "status": "approved",
            "created_at": NOW,
            "decided_at": NOW,
            "decided_by": "sluice",
            "escalation_tier": 0,
        }
    )
    grant_id = f"gr_{secrets.token_hex(8)}"
    grants.append(
        {
            "id": grant_id,
            "request_id": request_id,
            "identity_id": identity_id,
            "integration_id": f"int_{ref.integration}",
            "resource_id": ref.id,
            "resource_path": ref.path,
            "resource_type": ref.type,
            "permission": "read",
            "desired": Desired.ACTIVE,
            "actual": Actual.ACTIVE,
            "duration_seconds": 28800,
            "starts_at": NOW,
            "ends_at": NOW + timedelta(hours=8),
            "principal": "bench_" + grant_id[3:],
            "attempts": 0,
            "extensions": 0,
            **stamp,
        }
    )


def changed_document(session: Session) -> ConfigDocument:
    """The store's config with one flow's requesters widened by a group."""
    document = export_config(session)
    flow = next(f for f in document["flows"] if f["name"] == CHANGED_FLOW)
    flow["requesters"] = [*flow["requesters"], {"group": "team99"}]
    return parse_config(yaml.safe_dump(document, sort_keys=False), "sluice.yaml", session=session)


def affected_identities(session: Session, document: ConfigDocument) -> list[Identity]:
    before = PolicyState.read(session, NOW)
    savepoint = session.begin_nested()
    plan = apply_config(session, document, actor="bench", now=NOW)
    after = PolicyState.read(session, NOW)
    savepoint.rollback()
    ids = affected_people(plan, before, after)
    if ids is None:
        raise SystemExit("the change reached everyone: the bench's config is not what it should be")
    return list(session.scalars(select(Identity).where(Identity.id.in_(sorted(ids)))))


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    spent, cpu_spent = time.perf_counter() - start, time.process_time() - cpu
    print(f"  ({spent:.2f}s wall, {cpu_spent:.2f}s of this process's CPU)", file=sys.stderr)
    return spent, result


def run(factory: sessionmaker[Session]) -> float:
    with transaction(factory) as session:
        document = changed_document(session)
        people = affected_identities(session, document)

        def floor(who: list[Identity]) -> int:
            return sum(len(access_of(session, p, NOW)) + len(access_of(session, p, NOW)) for p in who)

        floor(people[:WARM_UP])  # caches of parsed flows and compiled statements
        diff_time, result = _timed(lambda: access_diff(session, document, now=NOW))
        floor_time, units = _timed(lambda: floor(people))
    counts = result.counts()
    print(
        f"{len(people)} affected people, {units // 2:,} requestable units; diff: {counts['people']} people, "
        f"+{counts['may_newly']:,} -{counts['no_longer']:,}, {counts['grants_ended']} grants end"
    )
    print(f"access diff {diff_time:.2f}s, two requestable computations {floor_time:.2f}s")
    return diff_time / floor_time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to build the store on")
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--grants", type=int, default=20_000)
    args = parser.parse_args()
    policy_scale.IDENTITIES = args.people
    created: str | None = None
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'plan.db'}"
        if args.postgres:
            created = f"bench_plan_{secrets.token_hex(3)}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(created)))
            url = args.postgres.rsplit("/", 1)[0] + "/" + created
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            factory = policy_scale.build(engine, args.resources, random.Random(7))
            add_grants(factory, args.grants, random.Random(13))
            print(f"built in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            ratio = run(factory)
        finally:
            engine.dispose()
            if created:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(created))
                    )
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
