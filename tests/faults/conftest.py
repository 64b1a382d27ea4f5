"""Fixtures of the fault suite: a store plus PostgreSQL targets on the local server, and a throwaway
PostgreSQL cluster (`initdb` + `pg_ctl` on a free port) that a test may stop and start."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis  # noqa: F401  (imported now: a lazy import after the thread races trips CPython 3.11's AST check)
import psycopg
import pytest
from psycopg import sql

from tests.conftest import _need_service
from tests.faults.harness import Setup, admin_params, drop_roles, make_target_database

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pg_binary(name: str) -> str | None:
    for candidate in (
        shutil.which(name),
        *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own, trusting local TCP logins; `stop()` is a crash (immediate)."""

    def __init__(self, workdir: Path) -> None:
        initdb, self.pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        if not initdb or not self.pg_ctl:
            _need_service("initdb/pg_ctl for a throwaway PostgreSQL", FileNotFoundError("initdb"))
        self.workdir, self.data, self.port = workdir, workdir / "data", _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(workdir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*self.as_user, str(initdb), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"],
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=60 -c shared_buffers=16MB"
        )
        subprocess.run(
            [*self.as_user, str(self.pg_ctl), "-D", str(self.data), "-o", options, "-l",
             str(self.workdir / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.pg_ctl), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )


@pytest.fixture
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    workdir = Path(tempfile.mkdtemp(prefix="sluice-fault-pg-"))
    try:
        try:
            server = ThrowawayPostgres(workdir)
            server.start()
        except (subprocess.CalledProcessError, OSError) as exc:
            _need_service("a throwaway PostgreSQL", exc)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def target_database(postgres_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Makes scratch target databases on an admin URL (the local server by default); drops them, and
    every role of the prefixes the test registered, at the end."""
    made: list[tuple[str, str]] = []

    def make(admin_url: str = postgres_admin_url) -> str:
        name = f"sluice_ft_{secrets.token_hex(4)}"
        make_target_database(admin_url, name)
        made.append((admin_url, name))
        return name

    yield make
    for admin_url, name in made:
        try:
            with psycopg.connect(**admin_params(admin_url), autocommit=True, connect_timeout=3) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.OperationalError:
            pass  # a throwaway server that is gone already


@pytest.fixture
def setup(make_pg_database: Callable[[str], str], tmp_path: Path, postgres_admin_url: str) -> Iterator[Setup]:
    made = Setup.create(make_pg_database("sluice_fs"), tmp_path / "home")
    try:
        yield made
    finally:
        made.engine.dispose()
        for name, prefix in made.prefixes.items():
            admin_url, database = made.targets[name]
            with contextlib.suppress(psycopg.OperationalError):
                drop_roles(admin_url, prefix, [database])
