"""Stores at the newest schema for tests, made by copying: each test process runs the migrations once
per kind of store, into a template, and every later store is a copy of it (a SQLite file copied, a
PostgreSQL database cloned with `CREATE DATABASE … TEMPLATE`). Running the twenty migrations costs
0.3 s on SQLite and 0.9 s on PostgreSQL; a copy costs a few milliseconds. Each copy gets an
installation id of its own, as a store migrated from nothing would. The migrations themselves are
tested from an empty store in `tests/store/test_migrations.py`."""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sluice.store.db import make_engine, normalise_url
from sluice.store.migrate import upgrade
from sluice.store.types import new_installation_id

_templates: dict[str, str] = {}  # "sqlite" -> a file path; "postgresql" -> a database name


def _sqlite_template() -> str:
    if "sqlite" not in _templates:
        folder = Path(tempfile.mkdtemp(prefix="sluice-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        engine = make_engine(f"sqlite:///{folder / 'store.db'}")
        upgrade(engine)
        with engine.begin() as conn:  # a copy must hold everything: no pages left in the write-ahead log
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        engine.dispose()
        _templates["sqlite"] = str(folder / "store.db")
    return _templates["sqlite"]


def _admin(url: str) -> str:
    """A libpq URL to the server's `postgres` database, from a store's URL."""
    parsed = make_url(normalise_url(url)).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


def _postgres_template(url: str) -> str:
    if "postgresql" not in _templates:
        name = f"sluice_template_{secrets.token_hex(4)}"
        admin = _admin(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        atexit.register(_drop, admin, name)
        engine = make_engine(make_url(normalise_url(url)).set(database=name).render_as_string(False))
        upgrade(engine)
        engine.dispose()  # a template may have no connection while it is copied
        _templates["postgresql"] = name
    return _templates["postgresql"]


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate_new_store(url: str) -> None:
    """Make the new, empty store at `url` a store at the newest schema, as `sluice db upgrade` would.
    A PostgreSQL store's database must exist and have no connection yet; it is made again as a copy."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database))
        if path.exists() and path.stat().st_size:
            raise ValueError(f"{path} is a store already; only a new one is made a copy")
        path.parent.mkdir(parents=True, exist_ok=True)  # as `sluice db upgrade` makes it
        shutil.copyfile(_sqlite_template(), path)
    else:
        template = _postgres_template(url)
        with psycopg.connect(_admin(url), autocommit=True) as conn:
            database = sql.Identifier(str(parsed.database))
            conn.execute(sql.SQL("DROP DATABASE {}").format(database))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(database, sql.Identifier(template)))
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE installation SET id = :id"), {"id": new_installation_id()})
    engine.dispose()
