"""The machinery behind `sluice up`, `sluice server` and `sluice worker`: the worker thread, the
PostgreSQL notice listener or the SQLite work signal poller, uvicorn, logging and the banner.

Shutdown: uvicorn captures SIGINT/SIGTERM while it serves and re-raises them once it has stopped, so
the handlers installed here run last and stop the worker cleanly in every mode."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
from psycopg import sql
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from sluice.cli.errors import CliError
from sluice.cli.output import err_console
from sluice.cli.store_ops import check_secret_key, migrate_store, plan_file, store_label
from sluice.runtime.heap import settle_heap
from sluice.runtime.logs import JsonFormatter, wants_json
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import WORK_CHANNEL, Runtime, worker_id
from sluice.services.grants.secret_keys import require_configured_key
from sluice.services.signin.provider import OpenIdProvider
from sluice.services.signin.settings import SignInSettings
from sluice.store.db import normalise_url, transaction
from sluice.store.work_signal import work_signal_generation
from sluice.worker.health import HealthServer
from sluice.worker.loop import Worker

log = logging.getLogger("sluice.cli")

LISTEN_POLL_SECONDS = 1.0
LISTEN_RETRY_CAP_SECONDS = 30.0
SIGNAL_POLL_SECONDS = 1.0


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        force=True,
    )
    if wants_json():  # SLUICE_LOG_FORMAT=json: one JSON object per line, with grant/request ids
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def ensure_port_free(host: str, port: int) -> None:
    """Fail early with a clear line rather than after migrating and seeding."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror}; pick another with --port"
            ) from exc


class WorkNoticeListener:
    """LISTENs on the work channel over its own PostgreSQL connection and sets `wake` on every notice,
    so a worker reacts at once to approvals made by another process. Reconnects with backoff; while
    disconnected the worker still wakes for due times on its own."""

    def __init__(self, database_url: str, wake: threading.Event) -> None:
        url = make_url(normalise_url(database_url)).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=LISTEN_POLL_SECONDS * 3)

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(WORK_CHANNEL)))
                    log.info("listening for work notices on channel %s", WORK_CHANNEL)
                    self._wake.set()  # anything announced while we were not listening
                    delay = 1.0
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_POLL_SECONDS):
                            self._wake.set()
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                log.warning("work notice listener disconnected (%s); retrying in %.0fs", first, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, LISTEN_RETRY_CAP_SECONDS)


class WorkSignalPoller:
    """Reads the store's work signal every second and sets `wake` when it moved, so a worker on a
    SQLite store reacts within a second to a change another process made (`sluice apply`, a separate
    `sluice server`). A read that fails is logged and tried again at the next tick."""

    def __init__(self, factory: sessionmaker[Session], wake: threading.Event) -> None:
        self._factory = factory
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-signal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SIGNAL_POLL_SECONDS * 3)

    def _run(self) -> None:
        seen: int | None = None
        delay = 0.0  # the first read, at once, is what later ones are compared with
        while not self._stop.wait(delay):
            delay = SIGNAL_POLL_SECONDS
            try:
                with transaction(self._factory) as session:
                    generation = work_signal_generation(session)
            except SQLAlchemyError as exc:
                log.warning("could not read the work signal (%s); trying again", type(exc).__name__)
                continue
            if seen is not None and generation != seen:
                self._wake.set()
            seen = generation


class WorkerRunner:
    """The worker loop in a thread (or the calling thread), plus what wakes it for changes made by
    other processes: the notice listener on PostgreSQL, the work signal poller on SQLite."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.worker = Worker(
            runtime.factory,
            hub=runtime.hub,
            box=runtime.box,
            clock=runtime.clock,
            worker_id=worker_id(),
            wake=runtime.wake,
            channels=runtime.channels,
            public_url=runtime.settings.public_url,
        )
        self.listener: WorkNoticeListener | WorkSignalPoller = (
            WorkNoticeListener(runtime.settings.database_url, runtime.wake)
            if runtime.engine.dialect.name == "postgresql"
            else WorkSignalPoller(runtime.factory, runtime.wake)
        )
        self._thread: threading.Thread | None = None

    def start_in_thread(self) -> None:
        self.listener.start()
        self._thread = threading.Thread(target=self.worker.run_forever, name="sluice-worker", daemon=True)
        self._thread.start()

    def run_here(self) -> None:
        self.listener.start()
        try:
            self.worker.run_forever()
        finally:
            self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        self.worker.stop.set()
        self.runtime.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("the worker did not stop within %.0fs; leaving it", timeout)
        self.listener.stop()


def on_stop_signals(callback: Callable[[], None]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        callback()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@dataclass(frozen=True)
class Listen:
    """Where and how the API listens: address, optional TLS files, and the reverse proxies whose
    forwarded client address and scheme are believed (none by default)."""

    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: str | None = None

    @property
    def url(self) -> str:
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls_cert else 'http'}://{shown_host}:{self.port}"


def serve_api(runtime: Runtime, listen: Listen) -> None:
    # Imported here: `sluice worker` never serves HTTP and starts faster without the web stack.
    import uvicorn

    from sluice.api.app import create_app

    app = create_app(runtime)
    settle_heap()
    config = uvicorn.Config(
        app,
        host=listen.host,
        port=listen.port,
        log_config=None,
        server_header=False,
        proxy_headers=listen.trusted_proxies is not None,
        forwarded_allow_ips=listen.trusted_proxies or "",
        ssl_certfile=str(listen.tls_cert) if listen.tls_cert else None,
        ssl_keyfile=str(listen.tls_key) if listen.tls_key else None,
    )
    uvicorn.Server(config).run()


def signin_from_env() -> OpenIdProvider | None:
    """The identity provider of `SLUICE_OIDC_*`, checked before anything starts (a mistake in the
    settings stops the server with the variable's name); None when sign-in is not configured."""
    settings = SignInSettings.from_env()
    return OpenIdProvider(settings) if settings else None


def banner(runtime: Runtime, listen: Listen, *, worker: bool, demo: bool = False) -> None:
    """Where Sluice listens: a log record in JSON log mode (for the log pipeline), else lines for a
    person. Only a demo suggests a token for one of its people."""
    parts = "API and worker" if worker else "API"
    store = store_label(runtime.settings)
    if wants_json():
        log.info(
            "Sluice %s on %s",
            parts,
            listen.url,
            extra={"url": listen.url, "portal": f"{listen.url}/", "store": store},
        )
        return
    lines = [
        f"[bold]Sluice[/bold] {parts} on {listen.url}",
        f"  portal: {listen.url}/" + ("  (demo sign-in: alice asks, carol approves)" if demo else ""),
        f"  store: {escape(store)}",
    ]
    if runtime.signin is not None:
        lines.append(f"  sign-in: {escape(runtime.signin.settings.issuer)} (sluice login)")
    if demo:
        lines.append("  token: export SLUICE_TOKEN=$(sluice token create --email alice@example.com)")
    lines.append("  stop:  Ctrl-C")
    for line in lines:
        err_console.print(line, soft_wrap=True)


def apply_file(runtime: Runtime, path: Path) -> None:
    plan = plan_file(runtime, path, apply=True)
    log.info("applied %s: %s", path, plan.counts())


def run_up(*, demo: bool, listen: Listen, config: Path | None) -> None:
    configure_logging()
    ensure_port_free(listen.host, listen.port)
    signin = signin_from_env()
    runtime = Runtime.from_settings(Settings.from_env())
    runtime.signin = signin
    migrate_store(runtime)
    check_secret_key(runtime)
    if config is not None:
        apply_file(runtime, config)
    if demo:
        from sluice.runtime.demo import seed_demo  # the demo's config: only `sluice up --demo` loads it

        seed_demo(runtime)
        runtime.demo = True
    runner = WorkerRunner(runtime)
    on_stop_signals(runner.stop)
    runner.start_in_thread()
    banner(runtime, listen, worker=True, demo=demo)
    try:
        serve_api(runtime, listen)
    finally:
        runner.stop()
        runtime.engine.dispose()


def run_server(*, listen: Listen) -> None:
    configure_logging()
    settings = Settings.from_env()
    if settings.is_sqlite:
        log.warning("the store is SQLite: one process serves best; `sluice up` runs the API and the worker")
    require_configured_key(is_sqlite=settings.is_sqlite, secret_key=settings.secret_key, command="server")
    ensure_port_free(listen.host, listen.port)
    signin = signin_from_env()
    runtime = Runtime.from_settings(settings)
    runtime.signin = signin
    migrate_store(runtime)
    check_secret_key(runtime)
    on_stop_signals(lambda: None)  # uvicorn has stopped by the time a signal reaches this handler
    banner(runtime, listen, worker=False)
    try:
        serve_api(runtime, listen)
    finally:
        runtime.engine.dispose()


def run_worker(*, health_host: str = "127.0.0.1", health_port: int | None = None) -> None:
    configure_logging()
    settings = Settings.from_env()
    require_configured_key(is_sqlite=settings.is_sqlite, secret_key=settings.secret_key, command="worker")
    runtime = Runtime.from_settings(settings)
    migrate_store(runtime)
    check_secret_key(runtime)
    runner = WorkerRunner(runtime)
    health = None
    if health_port is not None:
        health = HealthServer(
            engine=runtime.engine,
            factory=runtime.factory,
            clock=runtime.clock,
            passes=runner.worker.passes,
            host=health_host,
            port=health_port,
        )
        health.start()
    on_stop_signals(runner.stop)
    log.info("worker %s on store %s", worker_id(), store_label(settings))
    settle_heap()
    try:
        runner.run_here()
    finally:
        if health is not None:
            health.stop()
        runtime.engine.dispose()
