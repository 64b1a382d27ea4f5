"""The edge of the server: body-size limit, rate limits and bad-token lockout with 429 and Retry-After,
security headers, answers never cached, and API docs that load nothing from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.api.edge import EdgeLimits
from tests.api.conftest import Api, build_runtime, problem, seed
from tests.conftest import Clock


def _client(tmp_path: Path, clock: Clock, limits: EdgeLimits) -> Iterator[tuple[TestClient, dict[str, str]]]:
    runtime = build_runtime(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, clock)
    tokens = seed(runtime)
    with TestClient(create_app(runtime, limits=limits)) as client:
        yield client, tokens
    runtime.engine.dispose()


@pytest.fixture
def strict(tmp_path: Path, clock: Clock) -> Iterator[tuple[TestClient, dict[str, str]]]:
    limits = EdgeLimits(
        max_body_bytes=4096, per_token_per_minute=12, per_address_per_minute=600, failed_auth_limit=5
    )
    yield from _client(tmp_path, clock, limits)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_answers_carry_security_headers_and_are_never_cached(api: Api) -> None:
    grant_request = api.ask()
    assert grant_request["status"] in ("pending", "approved")
    response = api.get("alice", "/requests")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    missing = api.client.get("/api/v1/nothing-here", headers=api.auth("alice"))
    assert missing.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers  # plain HTTP in this test


def test_docs_load_only_local_assets(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text and "https://" not in page.text.replace("https://swagger.io", "")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = api.client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert api.client.get("/docs-assets/swagger-ui.css").status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(strict) -> None:  # type: ignore[no-untyped-def]
    client, tokens = strict
    big = b'{"reason": "' + b"x" * 10_000 + b'"}'
    declared = client.post(
        "/api/v1/requests",
        content=big,
        headers={**_bearer(tokens["alice"]), "content-type": "application/json"},
    )
    body = problem(declared, 413)
    assert "larger than 4096 bytes" in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"reason": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    streamed = client.post(
        "/api/v1/requests",
        content=chunks(),
        headers={**_bearer(tokens["bob"]), "content-type": "application/json"},
    )
    problem(streamed, 413)


def test_a_token_over_its_rate_waits_with_retry_after(strict) -> None:  # type: ignore[no-untyped-def]
    client, tokens = strict
    statuses = [client.get("/api/v1/me", headers=_bearer(tokens["alice"])).status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and statuses[-1] == 429
    limited = client.get("/api/v1/me", headers=_bearer(tokens["alice"]))
    body = problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert "token sent too many requests" in body["detail"]
    # Another token from the same address is not held back by alice's.
    assert client.get("/api/v1/me", headers=_bearer(tokens["bob"])).status_code == 200


def test_repeated_bad_tokens_lock_the_address_out(strict) -> None:  # type: ignore[no-untyped-def]
    client, tokens = strict
    for number in range(5):
        assert client.get("/api/v1/me", headers=_bearer(f"wrong-{number}")).status_code == 401
    locked = client.get("/api/v1/me", headers=_bearer(tokens["carol"]))
    body = problem(locked, 429)
    assert "bad token" in body["detail"]
    assert 1 <= int(locked.headers["retry-after"]) <= 300
    assert client.get("/healthz").status_code == 200  # health checks are not API calls


def test_sign_in_starts_are_rate_limited_by_address(tmp_path: Path, clock: Clock) -> None:
    """Each unauthenticated sign-in start writes a row: /auth/ shares the per-address limit."""
    limits = EdgeLimits(per_address_per_minute=6)
    for client, _tokens in _client(tmp_path, clock, limits):
        answers = [client.post("/auth/cli/start", json={}).status_code for _ in range(8)]
        assert 429 in answers and answers[0] != 429


def test_bad_scim_tokens_lock_the_address_out_too(strict) -> None:  # type: ignore[no-untyped-def]
    client, _tokens = strict
    for number in range(5):
        assert client.get("/scim/v2/Users", headers=_bearer(f"wrong-{number}")).status_code == 401
    locked = client.get("/scim/v2/Users", headers=_bearer("wrong-again"))
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert locked.headers["cache-control"] == "no-store"


def test_rate_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("SLUICE_RATE_PER_TOKEN", "30")
    limits = EdgeLimits.from_env()
    assert limits.max_body_bytes == 2048 and limits.per_token_per_minute == 30
    monkeypatch.setenv("SLUICE_RATE_PER_ADDRESS", "-1")
    with pytest.raises(ValueError, match="SLUICE_RATE_PER_ADDRESS must be a positive number"):
        EdgeLimits.from_env()
