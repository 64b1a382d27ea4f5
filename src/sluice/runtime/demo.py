"""The demo: three people, an on-call group, a local PostgreSQL database with a few tables, and two
access flows, so `sluice up --demo` shows the whole loop within a minute.

Seeding is idempotent. The demo is written as a config document and applied exactly like a config
file; the demo database and its tables are created only where missing."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import psycopg
import yaml
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict

from sluice.domain.errors import SluiceError
from sluice.runtime.wiring import Runtime
from sluice.services.config.apply import Plan, apply_config
from sluice.services.config.document import ConfigDocument
from sluice.services.config.file import parse_config
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import transaction

log = logging.getLogger("sluice.demo")

DEMO_ACTOR = "sluice-demo"
POSTGRES_URL_ENV = "SLUICE_DEMO_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_DATABASE = "sluice_demo"
PG_INTEGRATION = "local-pg"
GROUPS_INTEGRATION = "groups"
CONNECT_TIMEOUT_SECONDS = 3

_TABLES = (
    """CREATE TABLE IF NOT EXISTS public.customers (
        id integer PRIMARY KEY,
        name text NOT NULL,
        email text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS public.orders (
        id integer PRIMARY KEY,
        customer_id integer NOT NULL REFERENCES public.customers (id),
        total numeric(10, 2) NOT NULL,
        status text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS public.invoices (
        id integer PRIMARY KEY,
        order_id integer NOT NULL REFERENCES public.orders (id),
        amount numeric(10, 2) NOT NULL,
        paid boolean NOT NULL DEFAULT false
    )""",
    "COMMENT ON TABLE public.customers IS 'sluice: pii=true'",
)
_ROWS: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
    "customers": (
        "INSERT INTO public.customers (id, name, email) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
        [
            (1, "Ada Lovelace", "ada@example.org"),
            (2, "Grace Hopper", "grace@example.org"),
            (3, "Alan Turing", "alan@example.org"),
        ],
    ),
    "orders": (
        "INSERT INTO public.orders (id, customer_id, total, status) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (id) DO NOTHING",
        [
            (40, 1, "19.90", "shipped"),
            (41, 2, "250.00", "paid"),
            (42, 3, "73.50", "stuck"),
            (43, 1, "5.00", "new"),
        ],
    ),
    "invoices": (
        "INSERT INTO public.invoices (id, order_id, amount, paid) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (id) DO NOTHING",
        [(900, 40, "19.90", True), (901, 41, "250.00", True), (902, 42, "73.50", False)],
    ),
}


def _say_to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _where(url: str) -> str:
    """host:port/dbname of a libpq URL, for messages (never the password)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured server"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def prepare_demo_database(admin_url: str) -> str | None:
    """Create the demo database and its tables where missing. Returns None when done, or why not."""
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,)
            ).fetchone()
            if not exists:
                with suppress(errors.DuplicateDatabase):  # another process made it first
                    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
        with (
            psycopg.connect(admin_url, dbname=DEMO_DATABASE, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn,
            conn.transaction(),
        ):
            for statement in _TABLES:
                conn.execute(statement)  # fixed text, no names from outside
            for insert, rows in _ROWS.values():
                with conn.cursor() as cursor:
                    cursor.executemany(insert, rows)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return first
    return None


def demo_config(*, with_postgres: bool) -> dict[str, Any]:
    """The demo as a config document (the same shape as a config file)."""
    integrations: list[dict[str, Any]] = [
        {
            "name": GROUPS_INTEGRATION,
            "kind": "builtin_groups",
            "config": {"groups": [{"name": "oncall", "description": "Who may act as on-call responder"}]},
        }
    ]
    flows: list[dict[str, Any]] = []
    if with_postgres:
        integrations.append(
            {
                "name": PG_INTEGRATION,
                "kind": "postgresql",
                "sync_interval": "10m",
                "config": {"url": {"env": POSTGRES_URL_ENV}, "databases": [DEMO_DATABASE]},
            }
        )
        flows.append(
            {
                "name": "engineering-read-tables",
                "description": "Engineers may read any table of the demo database once their manager agrees.",
                "requesters": [{"group": "engineering"}],
                "targets": [{"integration": PG_INTEGRATION, "type": "table", "permissions": ["read"]}],
                "approvers": [{"manager": True}],
                "max_duration": "8h",
                "justification_required": True,
            }
        )
    flows.append(
        {
            "name": "oncall-membership",
            "description": "SRE and engineering may join the on-call group; an engineering manager approves.",
            "requesters": [{"group": "sre"}, {"group": "engineering"}],
            "targets": [
                {
                    "integration": GROUPS_INTEGRATION,
                    "type": "group",
                    "select": {"names": ["oncall"]},
                    "permissions": ["member"],
                }
            ],
            "approvers": [{"group": "engineering-managers"}],
            "max_duration": "12h",
        }
    )
    return {
        "identities": [
            {
                "email": "alice@example.com",
                "name": "Alice",
                "groups": ["engineering"],
                "manager": "carol@example.com",
            },
            {"email": "bob@example.com", "name": "Bob", "groups": ["sre"]},
            {"email": "carol@example.com", "name": "Carol", "groups": ["engineering-managers"]},
        ],
        "groups": [
            {"name": "engineering", "description": "Software engineers"},
            {"name": "sre", "description": "Site reliability engineers"},
            {"name": "engineering-managers", "description": "Engineering managers"},
        ],
        "integrations": integrations,
        "flows": flows,
    }


def seed_demo(runtime: Runtime, *, say: Callable[[str], None] = _say_to_stderr) -> Plan:
    """Seed (or re-seed) the demo and sync every integration's inventory."""
    url = os.environ.setdefault(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    problem = prepare_demo_database(url)
    if problem is not None:
        say(
            f"demo: PostgreSQL at {_where(url)} is not reachable ({problem}); seeding without "
            f"{PG_INTEGRATION} (set {POSTGRES_URL_ENV} to use another server)"
        )
    document_text = yaml.safe_dump(demo_config(with_postgres=problem is None), sort_keys=False)
    with transaction(runtime.factory) as session:
        document: ConfigDocument = parse_config(document_text, "<demo>", session=session)
        plan = apply_config(session, document, actor=DEMO_ACTOR, now=runtime.clock())
        runtime.notify_work(session)
    log.info("demo seeded: %s", plan.counts())
    for integration in document.integrations:
        try:
            result = sync_integration(runtime.factory, runtime.hub, integration.name, clock=runtime.clock)
        except SluiceError as exc:
            log.warning("demo: inventory sync of %s failed: %s", integration.name, exc.detail)
            continue
        log.info("demo: synced %s (%d resources)", integration.name, result.total)
    return plan
