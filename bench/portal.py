"""The portal's catalogue search at 100,000 resources.

Builds the store of `policy_scale.py` (100,000 resources, 2,000 people, 300 flows) on a SQLite file,
signs one requester in, then replays 200 typed queries (each name typed a character at a time, as the
type-ahead box sends them) two ways in the same run: the `/request/search` page through the portal
(in-process ASGI client: routing, session check, the service, the template), and the `requestable`
service call alone with the same filter and page size. It prints p50/p95 of each and their ratios
(goal <= 1.5); the last line is `ratio=N.NN`, the worse of the p50 and p95 ratios.

    .venv/bin/python bench/portal.py [--queries 200]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

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
from sluice.store.tables import Identity, Resource
from sluice.web.routes.asking import RESULTS_SHOWN

RESOURCES = 100_000


def typed_queries(names: list[str], count: int, rng: random.Random) -> list[str]:
    queries: list[str] = []
    while len(queries) < count:
        name = rng.choice(names)
        queries += [name[:n] for n in range(1, len(name) + 1)]
    return queries[:count]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'portal.db'}"
        started = time.perf_counter()
        build(make_engine(url), RESOURCES, rng)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        print(f"built {RESOURCES} resources in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        runtime = Runtime(
            settings=Settings(home=Path(tmp), database_url=url, secret_key=None),
            engine=engine,
            factory=factory,
            hub=ConnectorHub(factory),
            box=SecretBox(Fernet.generate_key()),
            clock=lambda: NOW,
        )
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
        queries = typed_queries(names, args.queries, rng)
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
    p50 = percentile(page_times, 50) / percentile(service_times, 50)
    p95 = percentile(page_times, 95) / percentile(service_times, 95)
    print(
        f"search page p50={percentile(page_times, 50):.2f}ms p95={percentile(page_times, 95):.2f}ms | "
        f"requestable alone p50={percentile(service_times, 50):.2f}ms "
        f"p95={percentile(service_times, 95):.2f}ms"
    )
    print(f"page / service: p50 {p50:.2f}, p95 {p95:.2f}  (goal <= 1.5)")
    print(f"ratio={max(p50, p95):.2f}")


if __name__ == "__main__":
    main()
