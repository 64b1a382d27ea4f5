"""Client commands: missing token, unreachable server, problem responses."""

from __future__ import annotations

import socket

import httpx
import pytest

from sluice.cli.client import ApiClient, problem_error
from sluice.cli.output import cell
from tests.cli.conftest import Invoke, assert_clean_failure


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "args",
    [
        ["request", "list"],
        ["request", "create", "-r", "pg/db/public/t", "-p", "read", "-d", "20s", "--reason", "x"],
        ["access", "list", "--json"],
        ["audit", "list"],
        ["inventory", "sync"],
    ],
)
def test_no_token_is_a_clear_error(invoke: Invoke, args: list[str]) -> None:
    result = invoke(*args)
    assert_clean_failure(result)
    assert "no API token" in result.stderr
    assert "SLUICE_TOKEN" in result.stderr


def test_unreachable_server_is_a_clear_error(invoke: Invoke) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = invoke("access", "list", "--url", url, "--token", "slt_x")
    assert_clean_failure(result)
    assert f"cannot reach the Sluice server at {url}" in result.stderr

    from_env = invoke("request", "show", "req_1", env={"SLUICE_URL": url, "SLUICE_TOKEN": "slt_x"})
    assert_clean_failure(from_env)
    assert url in from_env.stderr


def test_a_url_without_scheme_is_refused(invoke: Invoke) -> None:
    result = invoke("identities", "--url", "localhost:8080", "--token", "t")
    assert_clean_failure(result)
    assert "http://" in result.stderr


def _serving(status: int, body: object, content_type: str = "application/problem+json") -> ApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer slt_t"
        return httpx.Response(status, json=body, headers={"content-type": content_type})

    return ApiClient("http://sluice.test", "slt_t", transport=httpx.MockTransport(handler))


def test_problem_detail_and_reasons_become_the_error() -> None:
    api = _serving(
        403,
        {
            "type": "urn:sluice:problem:not-allowed",
            "title": "Not allowed",
            "status": 403,
            "detail": "no access flow lets alice request write on pg/db/public/t",
            "reasons": "read-flow: grants read, not write; other: not a requester",
        },
    )
    with pytest.raises(Exception) as caught:
        api.get("/requests")
    error = caught.value
    assert str(error) == "no access flow lets alice request write on pg/db/public/t"
    assert error.notes == ["reasons:", "  - read-flow: grants read, not write", "  - other: not a requester"]  # type: ignore[attr-defined]


def test_an_answer_without_problem_json_still_reads_well() -> None:
    response = httpx.Response(502, text="<html>bad gateway</html>")
    assert str(problem_error(response)) == "the server answered 502 Bad Gateway"


def test_cells_read_well() -> None:
    assert cell(None) == "-"
    assert cell(True) == "yes"
    assert cell("2026-01-05T09:00:00.123456Z") == "2026-01-05 09:00:00Z"
    assert cell(["a", "b"]) == "a, b"
