"""Shared fixtures: real PostgreSQL (a fresh database per use), SQLite files, a movable clock."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from tests.event_payloads import Watched, watch_outbox
from tests.webhook_receiver import SIGNING_KEY, SIGNING_KEY_ENV, Receiver, running_receiver

POSTGRES_ADMIN_URL = os.environ.get(
    "SLUICE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Session fixtures: the MariaDB, Redis, OpenLDAP and SSH targets of the connector tests, the OpenID
# Provider, the AWS emulator.
pytest_plugins = ["tests.target_servers", "tests.oidc_provider", "tests.aws_emulator"]


def _need_service(name: str, error: Exception) -> None:
    message = f"{name} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message + " (under CI a missing service fails the run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        _need_service("PostgreSQL", exc)
    return POSTGRES_ADMIN_URL


def _with_database(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def make_pg_database(postgres_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Creates uniquely named databases on the test server; drops them all at the end."""
    created: list[str] = []

    def make(stem: str = "sluice_t") -> str:
        name = f"{stem}_{secrets.token_hex(4)}"
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return _with_database(postgres_admin_url, name)

    yield make
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty store database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    make = request.getfixturevalue("make_pg_database")
    return make("sluice_store")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a run that executed no test, or skipped any, fails: a green run must mean tested."""
    if not IN_CI or hasattr(session.config, "workerinput"):
        return  # a parallel worker reports to the controller, which counts for the whole run
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if session.testscollected == 0 or skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(
                f"CI: {session.testscollected} tests collected, {skipped} skipped; "
                "under CI nothing may be skipped and something must run",
                red=True,
            )


@pytest.fixture(autouse=True)
def events_match_their_schemas() -> Iterator[Watched]:
    """Every event any test records must match its JSON Schema (docs/events.md): a payload a real flow
    produces that the documented schema does not describe fails the test that produced it."""
    with watch_outbox() as watched:
        yield watched
    assert not watched.errors, "webhook bodies that do not match their schema:\n" + "\n".join(
        dict.fromkeys(watched.errors)
    )


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A real HTTP receiver of webhooks, with the signing key set in the variable webhooks name."""
    monkeypatch.setenv(SIGNING_KEY_ENV, SIGNING_KEY)
    with running_receiver() as running:
        yield running
