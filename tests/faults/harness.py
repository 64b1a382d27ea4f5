"""What the fault tests share: a store on the local PostgreSQL, a PostgreSQL integration on a scratch
target database with its own role prefix, grant rows written straight into the store (the worker is
what these tests exercise), and looks into the target."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Engine
from sqlalchemy.orm import Session, joinedload, sessionmaker

from sluice.domain.states import Actual, Desired
from sluice.runtime.tuning import Tuning
from sluice.services.grants.secrets import SecretBox
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import Grant, Identity, Integration
from sluice.store.types import new_id
from sluice.worker.loop import Worker
from tests.migrated import migrate_new_store

TABLE = "orders"


def admin_params(url: str) -> dict[str, Any]:
    params = conninfo_to_dict(url)
    return {k: params[k] for k in ("host", "port", "user", "dbname", "password") if params.get(k)}


def make_target_database(admin_url: str, name: str) -> None:
    """A database with one table the grants are on."""
    params = admin_params(admin_url)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(**{**params, "dbname": name}, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (id serial PRIMARY KEY, item text)")
        conn.execute(f"INSERT INTO {TABLE} (item) VALUES ('tea')")


def drop_roles(admin_url: str, prefix: str, databases: Iterable[str] = ()) -> None:
    """Drop every role under the prefix; what they own or were granted in `databases` goes first."""
    with psycopg.connect(**admin_params(admin_url), autocommit=True) as conn:
        roles = [
            r[0]
            for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [prefix])
        ]
    if not roles:
        return
    for db in [admin_params(admin_url).get("dbname", "postgres"), *databases]:
        try:
            with psycopg.connect(**{**admin_params(admin_url), "dbname": db}, autocommit=True) as conn:
                for role in roles:
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        except psycopg.Error:
            continue  # a database already dropped
    with psycopg.connect(**admin_params(admin_url), autocommit=True) as conn:
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def login_roles(admin_url: str, prefix: str) -> set[str]:
    """Login roles Sluice made under this prefix (the shared privilege roles are not access)."""
    with psycopg.connect(**admin_params(admin_url), autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) AND NOT starts_with(rolname, %s)",
            [prefix, prefix + "p_"],
        )
        return {r[0] for r in rows}


def can_read(admin_url: str, database: str, role: str, password: str) -> bool:
    params = admin_params(admin_url)
    try:
        with psycopg.connect(
            host=params.get("host", "127.0.0.1"),
            port=params.get("port", 5432),
            dbname=database,
            user=role,
            password=password,
            connect_timeout=5,
        ) as conn:
            return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() is not None
    except psycopg.Error:
        return False


@dataclass
class Setup:
    """One store and one (or more) PostgreSQL integrations, each on its own target database."""

    store_url: str
    engine: Engine
    factory: sessionmaker[Session]
    box: SecretBox
    home: Path
    secret_key: str
    prefixes: dict[str, str] = field(default_factory=dict)  # integration name -> role prefix
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (admin url, database)

    @classmethod
    def create(cls, store_url: str, home: Path) -> Setup:
        migrate_new_store(store_url)
        engine = make_engine(store_url)
        factory = make_session_factory(engine)
        key = Fernet.generate_key().decode()
        setup = cls(store_url, engine, factory, SecretBox.load(home, key), home, key)
        with transaction(factory) as session:
            now = datetime.now().astimezone()
            session.add(
                Identity(
                    id="id_ada",
                    email="ada@example.com",
                    name="Ada",
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
            )
        return setup

    def add_postgres(self, name: str, admin_url: str, database: str, **config: Any) -> str:
        prefix = f"f{secrets.token_hex(3)}_"
        params = admin_params(admin_url)
        with transaction(self.factory) as session:
            now = datetime.now().astimezone()
            session.add(
                Integration(
                    id=new_id("int"),
                    name=name,
                    kind="postgresql",
                    config={
                        "host": params.get("host", "127.0.0.1"),
                        "port": int(params.get("port", 5432)),
                        "user": params.get("user", "postgres"),
                        "dbname": params.get("dbname", "postgres"),
                        "databases": [database],
                        "role_prefix": prefix,
                        "connect_timeout_seconds": 2,
                        **config,
                    },
                    sync_interval_seconds=10**8,
                    last_sync_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        self.prefixes[name] = prefix
        self.targets[name] = (admin_url, database)
        return prefix

    def hub(self) -> ConnectorHub:
        return ConnectorHub(self.factory, timeout_seconds=5)

    def add_grants(
        self, integration: str, ends: Iterable[datetime], *, now: datetime, hub: ConnectorHub | None = None
    ) -> list[str]:
        """Active grants (approved, not yet made in the target) ending at the given times."""
        hub = hub or self.hub()
        ids = []
        with transaction(self.factory) as session:
            row = session.query(Integration).filter_by(name=integration).one()
            connector = hub.for_integration(row)
            _, database = self.targets[integration]
            for ends_at in ends:
                grant_id = new_id("gr")
                session.add(
                    Grant(
                        id=grant_id,
                        identity_id="id_ada",
                        integration_id=row.id,
                        resource_path=f"{integration}/{database}/public/{TABLE}",
                        resource_type="table",
                        permission="read",
                        desired=Desired.ACTIVE,
                        actual=Actual.NONE,
                        duration_seconds=max(1, int((ends_at - now).total_seconds())),
                        starts_at=now,
                        ends_at=ends_at,
                        principal=connector.principal_for(grant_id, "ada@example.com"),
                        created_at=now,
                        updated_at=now,
                    )
                )
                ids.append(grant_id)
        return ids

    def grants(self) -> list[Grant]:
        with transaction(self.factory) as session:
            return list(session.query(Grant).options(joinedload(Grant.integration)).order_by(Grant.id))

    def worker(
        self, clock: Any, *, worker_id: str = "w1", hub: ConnectorHub | None = None, **tuning: Any
    ) -> Worker:
        return Worker(
            self.factory,
            hub=hub or self.hub(),
            box=self.box,
            clock=clock,
            worker_id=worker_id,
            sync_inventory=False,
            tuning=Tuning(**tuning),
        )


def expires(now: datetime, seconds: Iterable[float]) -> list[datetime]:
    return [now + timedelta(seconds=s) for s in seconds]
