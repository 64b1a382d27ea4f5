"""The custom HTTP connector's conformance harness: the reference endpoint in examples/, over HTTPS."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote

import httpx

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext, SecretRef
from sluice.connectors.conformance import ConnectorHarness, Sample
from sluice.connectors.http import HttpConfig, HttpConnector
from sluice.connectors.paths import path_segment, split_path
from tests.target_servers import HttpEndpoint

NAME = "conf-http"
HOSTILE_TEAM, HOSTILE_DOC = 'o\'brien; "ops" team', 'run;book "v2"'


class HttpHarness(ConnectorHarness):
    has_sessions = True

    def __init__(self, endpoint: HttpEndpoint) -> None:
        self.endpoint = endpoint
        self.config = HttpConfig(
            url=endpoint.protocol_url,
            secret=SecretRef(file=endpoint.secret_file),
            ca_file=endpoint.ca_file,
            max_attempts=2,
        )
        self.connector = HttpConnector(NAME, self.config, ConnectorContext(installation="test-install"))
        self.sample = Sample("resource", f"{NAME}/billing/invoices", "read")
        self.hostile = Sample(
            "resource", f"{NAME}/{path_segment(HOSTILE_TEAM)}/{path_segment(HOSTILE_DOC)}", "write"
        )
        self.tagged = (f"{NAME}/billing", {"pii": "true"})

    def client(self) -> httpx.Client:
        verify = ssl.create_default_context(cafile=self.endpoint.ca_file)
        return httpx.Client(base_url=self.endpoint.base, verify=verify, timeout=5)

    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        names = split_path(NAME, unit.resource_path) or []
        url = "/app/docs/" + "/".join(quote(n, safe="") for n in names)
        auth = (details["username"], unit.secret or "")
        with self.client() as client:
            if client.get(url, auth=auth).status_code != 200:
                return False
            return (
                unit.permission == "read" or client.put(url, auth=auth, content=b"edited").status_code == 200
            )

    def open_session(self, unit: AccessUnit, details: dict[str, Any]) -> Any:
        with self.client() as client:
            answer = client.post("/app/login", auth=(details["username"], unit.secret or ""))
        return answer.json().get("token")

    def session_alive(self, session: Any) -> bool:
        with self.client() as client:
            return (
                client.get("/app/session", headers={"Authorization": f"Bearer {session}"}).status_code == 200
            )

    def remove_by_hand(self, unit: AccessUnit) -> None:
        with self.client() as client:
            headers = {"Authorization": f"Bearer {self.endpoint.admin_token}"}
            client.delete(
                f"/admin/accounts/{quote(unit.principal, safe='')}", headers=headers
            ).raise_for_status()

    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        config = self.config.model_copy(
            update={
                "url": f"https://127.0.0.1:{port}/sluice/v1",
                "connect_timeout_seconds": timeout_seconds,
                "timeout_seconds": timeout_seconds,
                "max_attempts": 1,  # the bounded retry itself is tested in test_http.py
            }
        )
        return HttpConnector(NAME, config, ConnectorContext(installation="test-install"))
