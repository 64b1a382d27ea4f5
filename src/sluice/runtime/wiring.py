"""Wiring: the engine, session factory, connector hub, secret box and wake-up signal that the API,
the CLI and the worker share within one process. Built once at start, passed explicitly."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from sluice.runtime.settings import Settings
from sluice.runtime.store_files import secure_store_files
from sluice.services.grants.secrets import SecretBox
from sluice.services.notify.channels import Channel
from sluice.services.notify.configured import channels_from_env
from sluice.services.signin.provider import OpenIdProvider
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import make_engine, make_session_factory
from sluice.store.work_signal import raise_work_signal

WORK_CHANNEL = "sluice_work"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    hub: ConnectorHub
    box: SecretBox
    wake: threading.Event = field(default_factory=threading.Event)
    # The time source every use case reads; tests put a clock they move by hand here.
    clock: Callable[[], datetime] = utc_now
    # The OpenID Provider people sign in with; None when sign-in is not configured (API tokens only).
    # Only processes that serve the API set it (see `cli/serving.py`): a worker needs no client secret.
    signin: OpenIdProvider | None = None
    # `sluice up --demo`: the portal offers its demo sign-in (pick a demo person); never set otherwise.
    demo: bool = False
    # The notification channels configured by the environment (email, Teams, Slack), by name.
    channels: dict[str, Channel] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        secure_store_files(settings)
        engine = make_engine(settings.database_url)
        factory = make_session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            factory=factory,
            hub=ConnectorHub(factory),
            box=SecretBox.load(settings.home, settings.secret_key, settings.old_secret_keys),
            channels=channels_from_env(settings),
        )

    def notify_work(self, session: Session) -> None:
        """Tell workers something changed: in this process at once; in other processes when the
        caller's transaction commits (on PostgreSQL by a notice, on SQLite by the work signal that a
        worker polls every second)."""
        if self.engine.dialect.name == "postgresql":
            session.execute(text(f"NOTIFY {WORK_CHANNEL}"))
        else:
            raise_work_signal(session)
        self.wake.set()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
