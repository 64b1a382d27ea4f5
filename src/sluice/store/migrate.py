"""Schema migrations, run from code: the Alembic environment ships inside the package, so this works
from an installed wheel without an alembic.ini.

On PostgreSQL an upgrade or downgrade holds an advisory lock for its whole run, so several servers or
workers starting at once migrate one after the other; the later ones find the schema at head and do
nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from sluice.store.db import make_engine
from sluice.store.tables import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# pg_advisory_lock key for "a migration is running" (the bytes of "sluice:m").
_LOCK_KEY = 0x736C756963653A6D


def make_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations. Pass the connection to run on, or a URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.set_main_option("truncate_slug_length", "40")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    if importlib.util.find_spec("ruff") is not None:
        # New revision files come out formatted.
        config.set_section_option("post_write_hooks", "hooks", "ruff")
        config.set_section_option("post_write_hooks", "ruff.type", "module")
        config.set_section_option("post_write_hooks", "ruff.module", "ruff")
        config.set_section_option("post_write_hooks", "ruff.options", "format REVISION_SCRIPT_FILENAME")
    return config


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Bring the database up to `revision` (default: the newest). Safe to call when already there."""
    with _engine(url_or_engine) as engine:
        _ensure_sqlite_folder(engine)
        with _locked_connection(engine) as connection:
            command.upgrade(make_config(connection), revision)


def downgrade(url_or_engine: str | Engine, revision: str) -> None:
    """Step the database back to `revision` (e.g. `-1`, or `base` to drop everything)."""
    with _engine(url_or_engine) as engine, _locked_connection(engine) as connection:
        command.downgrade(make_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def heads() -> list[str]:
    """The newest revision(s) of the packaged migrations. More than one means two branches need a merge."""
    return list(ScriptDirectory.from_config(make_config()).get_heads())


def pending_differences(engine: Engine) -> list[Any]:
    """What autogenerate would put in a new migration: differences between the database and the
    models. Empty when the migrations (applied to this database) match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def new_revision(url_or_engine: str | Engine, message: str) -> None:
    """Autogenerate a new migration file from the models against a database at head (for developers;
    read and tidy the file before committing it)."""
    with _engine(url_or_engine) as engine, engine.connect() as connection:
        command.revision(make_config(connection), message=message, autogenerate=True)


@contextmanager
def _engine(url_or_engine: str | Engine) -> Iterator[Engine]:
    """The caller's engine as is, or an engine for a URL that is disposed of afterwards."""
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = make_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _ensure_sqlite_folder(engine: Engine) -> None:
    database = engine.url.database
    if (
        engine.dialect.name == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
    ):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def _locked_connection(engine: Engine) -> Iterator[Connection]:
    """A connection, outside any transaction, holding the migration lock on PostgreSQL. Alembic then
    runs each migration in its own transaction on it."""
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            connection.commit()
        try:
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if postgres:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                connection.commit()
