"""The migrations: one head, they build exactly the models' schema, and they step down and back up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text

from sluice.store import migrate
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import Base, Identity


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def _model_tables() -> set[str]:
    return set(Base.metadata.tables)


def test_exactly_one_head() -> None:
    assert len(migrate.heads()) == 1, "two migration branches: add a merge revision"


def test_migration_files_stand_alone_and_set_timeouts() -> None:
    """Migrations must not import sluice code (the models move on, old migrations must not), and each
    one sets its PostgreSQL lock and statement timeouts."""
    files = sorted((migrate.MIGRATIONS_DIR / "versions").glob("*.py"))
    assert files
    for path in files:
        text = path.read_text()
        assert "import sluice" not in text and "from sluice" not in text, path.name
        assert "lock_timeout" in text and "statement_timeout" in text, path.name


def test_upgrade_to_head_matches_models(store_url: str, engine: Engine) -> None:
    assert migrate.current_revision(engine) is None

    migrate.upgrade(store_url)

    assert migrate.current_revision(engine) == migrate.heads()[0]
    assert _model_tables() <= set(inspect(engine).get_table_names())
    assert migrate.pending_differences(engine) == []


def test_downgrade_newest_then_upgrade_again(store_url: str, engine: Engine) -> None:
    migrate.upgrade(store_url)
    head = migrate.heads()[0]
    previous = ScriptDirectory.from_config(migrate.make_config()).get_revision(head).down_revision

    migrate.downgrade(store_url, "-1")

    assert migrate.current_revision(engine) == previous
    if previous is None:  # the newest migration is the first one: nothing of ours is left
        assert not _model_tables() & set(inspect(engine).get_table_names())

    migrate.upgrade(store_url)

    assert migrate.current_revision(engine) == head
    assert migrate.pending_differences(engine) == []


def test_downgrade_to_base_drops_everything(store_url: str, engine: Engine) -> None:
    migrate.upgrade(store_url)
    migrate.downgrade(store_url, "base")

    assert migrate.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}


def test_upgrading_twice_is_a_no_op(store_url: str, engine: Engine) -> None:
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    with transaction(make_session_factory(engine)) as session:
        session.add(Identity(id="id_1", email="a@example.com", name="A", created_at=now, updated_at=now))

    migrate.upgrade(engine)

    assert migrate.current_revision(engine) == migrate.heads()[0]
    assert migrate.pending_differences(engine) == []
    with make_session_factory(engine)() as session:
        assert session.scalars(select(Identity.email)).all() == ["a@example.com"]


def test_sqlite_folder_is_created(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "not" / "yet" / "there" / "store.db"
    url = f"sqlite:///{path}"

    migrate.upgrade(url)

    engine = make_engine(url)
    try:
        assert migrate.current_revision(engine) == migrate.heads()[0]
    finally:
        engine.dispose()


def test_concurrent_upgrades_on_postgresql(make_pg_database: Callable[[str], str]) -> None:
    """Several processes starting at once: the advisory lock makes them take turns; none fails."""
    url = make_pg_database("sluice_mig")
    code = "import sys; from sluice.store.migrate import upgrade; upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), errors

    engine = make_engine(url)
    try:
        assert migrate.current_revision(engine) == migrate.heads()[0]
        assert migrate.pending_differences(engine) == []
    finally:
        engine.dispose()


def test_offline_sql_for_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    """`--sql` mode renders the whole upgrade for a DBA to read, timeouts included."""
    config = migrate.make_config(url="postgresql://nobody@127.0.0.1:1/none")
    command.upgrade(config, "head", sql=True)

    out = capsys.readouterr().out
    assert "SET LOCAL lock_timeout = '5s'" in out
    assert "SET LOCAL statement_timeout = '60s'" in out
    assert "CREATE TABLE grants" in out
    assert "TIMESTAMP WITH TIME ZONE" in out


def test_pending_differences_sees_a_schema_that_drifted(store_url: str, engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_grants_principal"))

    differences = migrate.pending_differences(engine)

    assert [(d[0], d[1].name) for d in differences] == [("add_index", "ix_grants_principal")]
