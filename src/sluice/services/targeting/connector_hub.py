"""Builds and caches one connector per integration, with its narrow context. Shared by the services
(to name principals) and the worker (to act on targets). The context carries the store's
installation id, read once: every connector of every process on one store marks what it creates
with the same id."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import Connector, ConnectorContext
from sluice.connectors.registry import build_connector
from sluice.services.grants.memberships import StoreMemberships, wall_clock
from sluice.store.db import transaction
from sluice.store.queries import installation_id
from sluice.store.tables import Integration


class ConnectorHub:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        timeout_seconds: float = 10.0,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self._factory = factory
        self._timeout = timeout_seconds
        self._clock = clock
        self._cache: dict[str, tuple[str, Connector]] = {}
        self._lock = threading.Lock()
        self._installation: str | None = None

    @property
    def installation(self) -> str:
        """This store's installation id (read on first use; it never changes)."""
        if self._installation is None:
            with transaction(self._factory) as session:
                self._installation = installation_id(session)
        return self._installation

    def for_integration(self, integration: Integration) -> Connector:
        fingerprint = hashlib.sha256(
            json.dumps([integration.kind, integration.config], sort_keys=True, default=str).encode()
        ).hexdigest()
        with self._lock:
            cached = self._cache.get(integration.name)
            if cached and cached[0] == fingerprint:
                return cached[1]
            context = ConnectorContext(
                installation=self.installation,
                timeout_seconds=self._timeout,
                memberships=StoreMemberships(self._factory, integration.name, clock=self._clock),
            )
            connector = build_connector(integration.kind, integration.name, integration.config, context)
            self._cache[integration.name] = (fingerprint, connector)
            return connector
