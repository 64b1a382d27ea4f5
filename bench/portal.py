"""The portal's catalogue search at 100,000 resources, and its approvals inbox at 1,000 pending.

Search: builds the store of `policy_scale.py` (100,000 resources, 2,000 people, 300 flows) on a SQLite file,
signs one requester in, then replays 200 typed queries (each name typed a character at a time, as the
type-ahead box sends them) two ways in the same run: the `/request/search` page through the portal
(in-process ASGI client: routing, session check, the service, the template), and the `requestable`
service call alone with the same filter and page size. It prints p50/p95 of each and their ratios
(goal <= 1.5).

Inbox: builds the store of `inbox_store.py` (1,000 requests waiting for one approver, 300 waiting for
others), signs the approver in, and times the `/approvals` page against the API's
`GET /api/v1/requests?scope=to_approve` with the same page size (the inbox's 200 rows), alternately,
through the same in-process client. It prints p50/p95 of each and page/API at p95 (goal <= 2).

The last line is `ratio=N.NN`, the worse of all the ratios.

    .venv/bin/python bench/portal.py [--queries 200] [--inbox-rounds 30]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import inbox_store
from _support import BENCH_LIMITS, percentile
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from policy_scale import IDENTITIES, NOW, build
from sqlalchemy import select

from sluice.api.app import create_app
from sluice.api.auth import SESSION_COOKIE
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.services.grants.secrets import SecretBox
from sluice.services.signin.sessions import open_session
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.queries import identity_by_email
from sluice.store.tables import Identity, Resource
from sluice.web.routes.approvals import INBOX_SHOWN
from sluice.web.routes.asking import RESULTS_SHOWN

RESOURCES = 100_000


def typed_queries(names: list[str], count: int, rng: random.Random) -> list[str]:
    queries: list[str] = []
    while len(queries) < count:
        name = rng.choice(names)
        queries += [name[:n] for n in range(1, len(name) + 1)]
    return queries[:count]


def _runtime(tmp: str, url: str, clock_now: datetime) -> Runtime:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    return Runtime(
        settings=Settings(home=Path(tmp), database_url=url, secret_key=None),
        engine=engine,
        factory=factory,
        hub=ConnectorHub(factory),
        box=SecretBox(Fernet.generate_key()),
        clock=lambda: clock_now,
    )


def search(queries_wanted: int, rng: random.Random) -> tuple[list[float], list[float]]:
    """Page and service times (ms) of the type-ahead search."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'portal.db'}"
        started = time.perf_counter()
        build(make_engine(url), RESOURCES, rng)
        print(f"built {RESOURCES} resources in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        runtime = _runtime(tmp, url, NOW)
        engine, factory = runtime.engine, runtime.factory
        with transaction(factory) as session:
            names = sorted(set(session.scalars(select(Resource.name).where(Resource.type == "table"))))
            identity_id = next(
                f"id_{n}"
                for n in range(IDENTITIES)
                if requestable(
                    session,
                    identity=session.get(Identity, f"id_{n}"),  # type: ignore[arg-type]
                    where=RequestableFilter(),
                    limit=1,
                    offset=0,
                    now=NOW,
                ).items
            )
            identity = session.get(Identity, identity_id)
            assert identity is not None
            token, _ = open_session(session, identity=identity, admin=False, method="bench", hours=8, now=NOW)
        queries = typed_queries(names, queries_wanted, rng)
        page_times: list[float] = []
        service_times: list[float] = []
        with TestClient(create_app(runtime, limits=BENCH_LIMITS)) as client:
            client.cookies.set(SESSION_COOKIE, token)
            for round_ in range(2):  # the first round warms caches and is not counted
                for q in queries:
                    start = time.perf_counter()
                    answer = client.get("/request/search", params={"q": q}, headers={"HX-Request": "true"})
                    spent_page = time.perf_counter() - start
                    if answer.status_code != 200:
                        raise SystemExit(f"/request/search?q={q} answered {answer.status_code}")
                    with transaction(factory) as session:
                        start = time.perf_counter()
                        requestable(
                            session,
                            identity=session.get(Identity, identity_id),  # type: ignore[arg-type]
                            where=RequestableFilter(q=q),
                            limit=RESULTS_SHOWN,
                            offset=0,
                            now=NOW,
                        )
                        spent_service = time.perf_counter() - start
                    if round_:
                        page_times.append(spent_page * 1000)
                        service_times.append(spent_service * 1000)
        engine.dispose()
    return page_times, service_times


def inbox(rounds: int, rng: random.Random) -> tuple[list[float], list[float]]:
    """Page and API times (ms) of the approvals inbox with 1,000 requests waiting."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'inbox.db'}"
        started = time.perf_counter()
        inbox_store.build(make_engine(url), rng)
        print(f"built the inbox store in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        runtime = _runtime(tmp, url, inbox_store.NOW)
        with transaction(runtime.factory) as session:
            approver = identity_by_email(session, inbox_store.APPROVER)
            assert approver is not None
            token, _ = open_session(
                session, identity=approver, admin=False, method="bench", hours=8, now=inbox_store.NOW
            )
        page_times: list[float] = []
        api_times: list[float] = []
        with TestClient(create_app(runtime, limits=BENCH_LIMITS)) as client:
            client.cookies.set(SESSION_COOKIE, token)
            for round_ in range(rounds + 1):  # the first round warms caches and is not counted
                start = time.perf_counter()
                page = client.get("/approvals")
                spent_page = time.perf_counter() - start
                start = time.perf_counter()
                api = client.get(
                    "/api/v1/requests",
                    params={"scope": "to_approve", "limit": INBOX_SHOWN},
                    headers={"Authorization": f"Bearer {token}"},
                )
                spent_api = time.perf_counter() - start
                if page.status_code != 200 or api.status_code != 200:
                    raise SystemExit(f"/approvals answered {page.status_code}, the API {api.status_code}")
                total = api.json()["total"]
                if total != inbox_store.WAITING or f"({total})" not in page.text:
                    raise SystemExit(f"the approver should see {inbox_store.WAITING} waiting, saw {total}")
                if round_:
                    page_times.append(spent_page * 1000)
                    api_times.append(spent_api * 1000)
        runtime.engine.dispose()
    return page_times, api_times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--inbox-rounds", type=int, default=30)
    args = parser.parse_args()
    page_times, service_times = search(args.queries, random.Random(7))
    inbox_page, inbox_api = inbox(args.inbox_rounds, random.Random(11))
    p50 = percentile(page_times, 50) / percentile(service_times, 50)
    p95 = percentile(page_times, 95) / percentile(service_times, 95)
    inbox_p95 = percentile(inbox_page, 95) / percentile(inbox_api, 95)
    print(
        f"search page p50={percentile(page_times, 50):.2f}ms p95={percentile(page_times, 95):.2f}ms | "
        f"requestable alone p50={percentile(service_times, 50):.2f}ms "
        f"p95={percentile(service_times, 95):.2f}ms"
    )
    print(f"search page / service: p50 {p50:.2f}, p95 {p95:.2f}  (goal <= 1.5)")
    print(
        f"inbox page p50={percentile(inbox_page, 50):.2f}ms p95={percentile(inbox_page, 95):.2f}ms | "
        f"API to_approve p50={percentile(inbox_api, 50):.2f}ms p95={percentile(inbox_api, 95):.2f}ms "
        f"({inbox_store.WAITING} waiting, {INBOX_SHOWN} a page)"
    )
    print(f"inbox page / API: p95 {inbox_p95:.2f}  (goal <= 2)")
    print(f"ratio={max(p50, p95, inbox_p95):.2f}")


if __name__ == "__main__":
    main()
