"""Alembic environment for the store. Run it through `sluice.store.migrate`, which builds the config in
code; there is no alembic.ini.

The connection comes from `config.attributes["connection"]` when the caller already holds one (the
migrate functions do, so they can keep a PostgreSQL advisory lock around the run); otherwise from the
configured `sqlalchemy.url`. Each migration runs in its own transaction, so a migration's lock and
statement timeouts (see script.py.mako) cover only its own statements.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from sluice.store.db import make_engine
from sluice.store.tables import Base
from sluice.store.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render sluice column types as the plain SQLAlchemy types they store, so migration files never
    import sluice code (a migration must keep working after the models move on)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        "render_item": render_item,
        # SQLite alters most things by copying the table; batch mode does that for us.
        "render_as_batch": dialect_name == "sqlite",
        "transaction_per_migration": True,
    }


def run_migrations_offline() -> None:
    """Write the SQL instead of running it (`alembic upgrade --sql`)."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url configured for offline migrations")
    engine = make_engine(url)
    context.configure(
        url=engine.url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(engine.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("pass a connection in config.attributes or set sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
