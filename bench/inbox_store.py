"""The store the inbox bench reads: one approver with 1,000 requests waiting for them.

Two integrations of tables (owners tagged on some), 400 requesters with managers, and three flows:
`dba-review` (approved by the `dbas` group, then after an hour by the resource owner), `manager-ok`
(approved by the requester's manager) and `other-team` (approved by a group the approver is not in).
The requests are made through the submit service, as the API makes them, so the rows are the real
ones. The approver is `dba0@example.com`: the `dba-review` requests, and the `manager-ok` requests
of their reports, wait for them; the `other-team` ones do not.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.flows import FlowSpec
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_session_factory, transaction
from sluice.store.tables import AccessFlow, Base, Group, GroupMember, Identity, Integration, Resource
from sluice.store.targeting_tables import ResourceTag

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
APPROVER = "dba0@example.com"
REQUESTERS = 400
TABLES = 300
WAITING = 1_000  # requests the approver may decide on
ELSEWHERE = 300  # requests waiting for someone else


def _flows() -> list[FlowSpec]:
    target = {"integration": "inbox-pg", "type": "table", "select": {}, "permissions": ["read", "write"]}
    return [
        FlowSpec.model_validate(
            {
                "name": "dba-review",
                "requesters": [{"group": "engineers"}],
                "targets": [target],
                "max_duration": "8h",
                "approval": {
                    "groups": [{"approvers": [{"group": "dbas"}]}],
                    "escalation": [{"after": "1h", "groups": [{"approvers": [{"resource_owner": True}]}]}],
                    "distinct_from": ["direct_reports"],
                },
            }
        ),
        FlowSpec.model_validate(
            {
                "name": "manager-ok",
                "requesters": [{"group": "engineers"}],
                "targets": [{**target, "integration": "inbox-mysql"}],
                "max_duration": "4h",
                "approvers": [{"manager": True}],
            }
        ),
        FlowSpec.model_validate(
            {
                "name": "other-team",
                "requesters": [{"group": "engineers"}],
                "targets": [{**target, "integration": "inbox-other"}],
                "max_duration": "4h",
                "approvers": [{"group": "finance"}],
            }
        ),
    ]


def build(engine: Engine, rng: random.Random) -> sessionmaker[Session]:
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    stamp = {"created_at": NOW, "updated_at": NOW}
    with transaction(factory) as session:
        integrations = ["inbox-pg", "inbox-mysql", "inbox-other"]
        session.execute(
            insert(Integration),
            [
                {"id": f"int_{n}", "name": n, "kind": "postgresql", "config": {}, "owner": "dbas", **stamp}
                for n in integrations
            ],
        )
        resources: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        for integration in integrations:
            resources.append(_resource(f"{integration}-db", integration, "database", "app", None))
            resources.append(
                _resource(f"{integration}-s", integration, "schema", "public", f"{integration}-db")
            )
            for t in range(TABLES):
                rid = f"{integration}-t{t}"
                resources.append(_resource(rid, integration, "table", f"t{t}", f"{integration}-s"))
                if t % 3 == 0:
                    owner = f"dba{t % 5}@example.com"
                    tags.append(
                        {
                            "resource_id": rid,
                            "key": "owner",
                            "value": owner,
                            "source": "discovered",
                            "updated_at": NOW,
                        }
                    )
        session.execute(insert(Resource), resources)
        session.execute(insert(ResourceTag), tags)
        groups = ["engineers", "dbas", "finance"]
        session.execute(
            insert(Group),
            [{"id": f"g_{g}", "name": g, "description": "", "source": "config"} for g in groups],
        )
        people = [_person(f"dba{n}", manager=None) for n in range(5)]
        people += [_person(f"fin{n}", manager=None) for n in range(3)]
        people += [_person(f"eng{n}", manager=f"dba{n % 5}@example.com") for n in range(REQUESTERS)]
        session.execute(insert(Identity), people)
        members = [("g_dbas", f"id_dba{n}") for n in range(5)]
        members += [("g_finance", f"id_fin{n}") for n in range(3)]
        members += [("g_engineers", f"id_eng{n}") for n in range(REQUESTERS)]
        session.execute(
            insert(GroupMember), [{"group_id": g, "identity_id": i, "source": "config"} for g, i in members]
        )
        session.execute(
            insert(AccessFlow),
            [
                {
                    "id": f"f_{f.name}",
                    "name": f.name,
                    "spec": f.model_dump(mode="json"),
                    "source": "config",
                    **stamp,
                }
                for f in _flows()
            ],
        )
    _ask(factory, rng)
    return factory


def _resource(rid: str, integration: str, type_: str, name: str, parent: str | None) -> dict[str, Any]:
    path = {"database": f"{integration}/app", "schema": f"{integration}/app/public"}.get(
        type_, f"{integration}/app/public/{name}"
    )
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


def _person(name: str, manager: str | None) -> dict[str, Any]:
    return {
        "id": f"id_{name}",
        "email": f"{name}@example.com",
        "name": name,
        "active": True,
        "attributes": {},
        "manager_email": manager,
        "source": "config",
        "created_at": NOW,
        "updated_at": NOW,
    }


def _ask(factory: sessionmaker[Session], rng: random.Random) -> None:
    """WAITING requests the approver may decide on (dba-review by anyone but their own reports, or
    manager-ok by their reports) and ELSEWHERE for the finance group, spread over the last hours."""
    hub = ConnectorHub(factory)
    plan: list[tuple[str, str]] = []
    own_reports = [n for n in range(REQUESTERS) if n % 5 == 0]
    others = [n for n in range(REQUESTERS) if n % 5]
    for i in range(WAITING):
        plan.append(
            ("manager-ok", f"eng{rng.choice(own_reports)}")
            if i % 4 == 0
            else ("dba-review", f"eng{rng.choice(others)}")
        )
    plan += [("other-team", f"eng{rng.randrange(REQUESTERS)}") for _ in range(ELSEWHERE)]
    rng.shuffle(plan)
    integration = {"dba-review": "inbox-pg", "manager-ok": "inbox-mysql", "other-team": "inbox-other"}
    asked: set[tuple[str, int]] = set()  # one live request per person and table
    for n, (flow, who) in enumerate(plan):
        at = NOW - timedelta(hours=2) + timedelta(seconds=5 * n)
        free = [t for t in range(TABLES) if (f"{flow}:{who}", t) not in asked]
        tables = rng.sample(free, rng.randint(1, 3))
        asked.update((f"{flow}:{who}", t) for t in tables)
        with transaction(factory) as session:
            requester = session.get(Identity, f"id_{who}")
            assert requester is not None
            submit_request(
                session,
                hub=hub,
                requester=requester,
                units=[UnitAsked(f"{integration[flow]}/app/public/t{t}", "read") for t in tables],
                duration=timedelta(hours=1),
                reason=f"ticket {n}",
                now=at,
                flow_name=flow,
            )
