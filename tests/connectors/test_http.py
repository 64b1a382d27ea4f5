"""The custom HTTP connector beyond the conformance suite: signatures, idempotency keys, retries,
TLS and plain HTTP to localhost only, answers that break the protocol."""

from __future__ import annotations

import hmac
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from examples.http_connector.server import DEFAULT_INVENTORY, DocumentStore, Endpoint
from pydantic import ValidationError

from sluice.connectors.base import AccessUnit, ConnectorContext, SecretRef
from sluice.connectors.http import HttpConfig, HttpConnector, signature
from sluice.domain.errors import TargetError
from tests.target_servers import HttpEndpoint

NAME = "custom"
SECRET = "shared-" + secrets.token_hex(8)


def unit(connector: HttpConnector, path: str = f"{NAME}/billing/invoices") -> AccessUnit:
    grant_id = f"gr_{secrets.token_hex(6)}"
    principal = connector.principal_for(grant_id, "ada@example.com")
    return AccessUnit(
        grant_id, principal, "ada@example.com", "resource", path, "read", None, "pw-" + grant_id
    )


def connector_for(url: str, secret_file: Path, **extra: Any) -> HttpConnector:
    config = HttpConfig(url=url, secret=SecretRef(file=str(secret_file)), **extra)
    return HttpConnector(NAME, config, ConnectorContext(installation="test-install"))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    return path


@pytest.fixture
def plain_endpoint() -> Iterator[str]:
    """The reference endpoint in this process, over plain HTTP on 127.0.0.1."""
    server = Endpoint(
        ("127.0.0.1", 0), secret=SECRET, admin_token="t", store=DocumentStore(DEFAULT_INVENTORY)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/sluice/v1"
    server.shutdown()
    server.server_close()


class Scripted(BaseHTTPRequestHandler):
    """Answers with the scripted (status, body) pairs in turn and keeps what it was sent."""

    script: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Scripted.seen.append((dict(self.headers), body))
        status, answer = Scripted.script.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def scripted() -> Iterator[str]:
    Scripted.script, Scripted.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_https_is_required_except_to_localhost_when_allowed(secret_file: Path) -> None:
    secret = {"file": str(secret_file)}
    HttpConfig.model_validate({"url": "https://access.example.com/sluice", "secret": secret})
    HttpConfig.model_validate(
        {"url": "http://127.0.0.1:9/x", "secret": secret, "allow_insecure_localhost": True}
    )
    for bad in (
        {"url": "http://127.0.0.1:9/x"},
        {"url": "http://10.1.2.3/x", "allow_insecure_localhost": True},
        {"url": "http://evil.example.com/x", "allow_insecure_localhost": True},
        {"url": "ftp://127.0.0.1/x"},
    ):
        with pytest.raises(ValidationError):
            HttpConfig.model_validate({"secret": secret, **bad})
    with pytest.raises(ValidationError):
        HttpConfig.model_validate({"url": "https://x", "secret": "in-the-config-text"})


def test_plain_http_to_localhost_works_when_allowed(plain_endpoint: str, secret_file: Path) -> None:
    connector = connector_for(plain_endpoint, secret_file, allow_insecure_localhost=True)
    granted = unit(connector)
    assert connector.grant(granted)["username"] == granted.principal
    connector.revoke(granted)
    assert connector.check() == []


def test_a_wrong_secret_is_refused_and_never_shown(plain_endpoint: str, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-secret-" + secrets.token_hex(4))
    connector = connector_for(plain_endpoint, wrong, allow_insecure_localhost=True)
    with pytest.raises(TargetError, match="bad signature") as caught:
        connector.grant(unit(connector))
    assert caught.value.retryable is False
    assert wrong.read_text() not in str(caught.value)


def test_retries_keep_the_idempotency_key_and_secrets_stay_out_of_details(
    scripted: str, secret_file: Path
) -> None:
    connector = connector_for(scripted, secret_file, allow_insecure_localhost=True, max_attempts=3)
    granted = unit(connector)
    Scripted.script = [
        (503, {"error": "busy"}),
        (
            200,
            {"connection": {"url": "https://app", "password": "leak", "token": "t", "echo": granted.secret}},
        ),
    ]
    assert connector.grant(granted) == {"url": "https://app"}
    (first, body), (second, again) = Scripted.seen
    assert first["Idempotency-Key"] == second["Idempotency-Key"] == f"grant-{granted.grant_id}"
    assert body == again and json.loads(body)["secret"] == granted.secret
    for headers, sent in Scripted.seen:
        expected = signature(SECRET, headers["Sluice-Timestamp"], headers["Idempotency-Key"], "grant", sent)
        assert hmac.compare_digest(headers["Sluice-Signature"], expected)


def test_refusals_and_broken_answers(scripted: str, secret_file: Path) -> None:
    connector = connector_for(scripted, secret_file, allow_insecure_localhost=True, max_attempts=2)
    Scripted.script = [(409, {"error": "taken"}), (422, {"error": "later", "retryable": True})]
    with pytest.raises(TargetError, match="taken") as caught:
        connector.grant(unit(connector))
    assert caught.value.retryable is False
    with pytest.raises(TargetError) as caught:
        connector.grant(unit(connector))
    assert caught.value.retryable is True  # the endpoint says so
    Scripted.script = [(200, {"resources": [{"type": "spaceship", "name": "x", "path": ["x"]}]})]
    with pytest.raises(TargetError, match="unknown type") as caught:
        connector.discover()
    Scripted.script = [(200, {"principals": "not a list"})]
    with pytest.raises(TargetError, match="protocol") as caught:
        connector.list_managed()
    assert caught.value.retryable is False
    Scripted.script = [(500, {}), (500, {})]
    with pytest.raises(TargetError, match="after 2 attempts") as caught:
        connector.list_managed()
    assert caught.value.retryable is True


def test_the_reference_endpoint_replays_by_key_and_refuses_a_changed_body(
    http_endpoint: HttpEndpoint,
) -> None:
    secret = Path(http_endpoint.secret_file).read_text().strip()

    def post(key: str, body: dict[str, Any]) -> httpx.Response:
        data = json.dumps(body).encode()
        stamp = str(int(time.time()))
        headers = {"Idempotency-Key": key, "Sluice-Timestamp": stamp}
        headers["Sluice-Signature"] = signature(secret, stamp, key, "grant", data)
        return httpx.post(
            f"{http_endpoint.protocol_url}/grant",
            content=data,
            headers=headers,
            verify=ssl.create_default_context(cafile=http_endpoint.ca_file),
        )

    body = {
        "integration": "replay",
        "grant_id": "gr_aa",
        "principal": "replay_aa",
        "secret": "pw",
        "resource": {"type": "resource", "path": ["billing", "invoices"]},
        "permission": "read",
    }
    first, again = post("grant-gr_aa", body), post("grant-gr_aa", body)
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert post("grant-gr_aa", {**body, "permission": "write"}).status_code == 422


def test_a_certificate_from_another_ca_is_refused(http_endpoint: HttpEndpoint, secret_file: Path) -> None:
    trusted = connector_for(
        http_endpoint.protocol_url,
        Path(http_endpoint.secret_file),
        max_attempts=1,
        ca_file=http_endpoint.ca_file,
    )
    assert trusted.check() == []
    untrusted = connector_for(
        http_endpoint.protocol_url, Path(http_endpoint.secret_file), max_attempts=1, ca_file=None
    )
    problems = untrusted.check()
    assert problems and "CERTIFICATE_VERIFY_FAILED" in problems[0]
