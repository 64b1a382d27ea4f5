"""The Redis connector's conformance harness: namespaces of its own on the local server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext
from sluice.connectors.conformance import ConnectorHarness, Sample
from sluice.connectors.paths import path_segment
from sluice.connectors.redis_acl import RedisConfig, RedisConnector

NAME = "conf-redis"
HOSTILE = "we \"ird\"; ns 'x'"


class RedisHarness(ConnectorHarness):
    has_sessions = True

    def __init__(self, server: dict[str, Any], tag: str) -> None:
        self.server = server
        self.prefixes = {"orders": f"c{tag}:orders:", HOSTILE: f'c{tag}:w\'e;"ird"*:'}
        self.config = RedisConfig.model_validate(
            {
                "host": server["host"],
                "port": server["port"],
                "user_prefix": f"sc{tag}_",
                "namespaces": [
                    {"name": "orders", "prefix": self.prefixes["orders"], "tags": {"pii": "true"}},
                    {"name": HOSTILE, "prefix": self.prefixes[HOSTILE]},
                ],
            }
        )
        self.connector = RedisConnector(NAME, self.config, ConnectorContext(installation="test-install"))
        self.sample = Sample("namespace", f"{NAME}/orders", "read")
        self.hostile = Sample("namespace", f"{NAME}/{path_segment(HOSTILE)}", "write")
        self.tagged = (f"{NAME}/orders", {"pii": "true"})

    def admin(self) -> redis.Redis:
        return redis.Redis(host=self.server["host"], port=self.server["port"], socket_timeout=5)

    def _login(self, unit: AccessUnit, details: dict[str, Any]) -> redis.Redis:
        return redis.Redis(
            host=details["host"],
            port=details["port"],
            username=details["username"],
            password=unit.secret,
            socket_timeout=5,
            single_connection_client=True,
            retry=Retry(NoBackoff(), 0),
        )

    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        prefix = self.prefixes["orders" if unit.resource_path == self.sample.path else HOSTILE]
        try:
            client = self._login(unit, details)
            try:
                client.get(prefix + "1")
                if unit.permission == "write":
                    client.set(prefix + "2", "written")
            finally:
                client.close()
        except redis.RedisError:
            return False
        return True

    def open_session(self, unit: AccessUnit, details: dict[str, Any]) -> Any:
        client = self._login(unit, details)
        client.ping()
        return client

    def session_alive(self, session: Any) -> bool:
        try:
            return bool(session.ping())
        except redis.RedisError:
            return False

    def remove_by_hand(self, unit: AccessUnit) -> None:
        self.admin().execute_command("ACL", "DELUSER", unit.principal)

    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        config = self.config.model_copy(
            update={
                "port": port,
                "connect_timeout_seconds": timeout_seconds,
                "timeout_seconds": timeout_seconds,
            }
        )
        return RedisConnector(NAME, config, ConnectorContext(installation="test-install"))


def redis_harness(server: dict[str, Any]) -> Iterator[RedisHarness]:
    tag = secrets.token_hex(3)
    harness = RedisHarness(server, tag)
    admin = harness.admin()
    for prefix in harness.prefixes.values():
        admin.set(prefix + "1", "tea")
    try:
        yield harness
    finally:
        for key in admin.scan_iter(match=f"c{tag}:*", count=500):
            admin.delete(key)
        for user in admin.execute_command("ACL", "USERS"):
            name = user.decode() if isinstance(user, bytes) else str(user)
            if name.startswith(f"sc{tag}_"):
                admin.execute_command("ACL", "DELUSER", name)
        admin.close()
