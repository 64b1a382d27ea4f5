"""The HTTP client for the Sluice API: bearer token, RFC 9457 problems turned into clear errors."""

from __future__ import annotations

import os
from typing import Any

import httpx

from sluice.cli.credentials import stored_token
from sluice.cli.errors import CliError
from sluice.cli.output import items_of

PAGE_SIZE = 500  # items per request when a command lists more than one page

DEFAULT_URL = "http://127.0.0.1:8080"
API_PREFIX = "/api/v1"
TIMEOUT_SECONDS = 30.0


def _reason_lines(reasons: Any) -> list[str]:
    if not reasons:
        return []
    if isinstance(reasons, str):
        parts = [r.strip() for r in reasons.split("; ") if r.strip()]
    elif isinstance(reasons, list):
        parts = [r if isinstance(r, str) else str(r) for r in reasons]
    else:
        parts = [str(reasons)]
    return ["reasons:", *(f"  - {p}" for p in parts)]


def problem_error(response: httpx.Response) -> CliError:
    """An error for a non-2xx answer, from its problem JSON when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("detail") or body.get("title")):
        detail = body.get("detail") or body.get("title")
        if not isinstance(detail, str):  # e.g. a validation error list
            detail = f"{body.get('title') or 'invalid request'}: {detail}"
        notes = _reason_lines(body.get("reasons"))
        return CliError(str(detail), notes=notes, status=response.status_code)
    reason = response.reason_phrase or "error"
    return CliError(f"the server answered {response.status_code} {reason}", status=response.status_code)


def server_url(url: str | None) -> str:
    """The server to talk to: --url, else $SLUICE_URL, else the local default."""
    url = (url or os.environ.get("SLUICE_URL") or DEFAULT_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the server URL {url!r} must start with http:// or https://")
    return url


class ApiClient:
    def __init__(self, url: str, token: str | None, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=TIMEOUT_SECONDS, transport=transport
        )

    @classmethod
    def from_options(cls, url: str | None, token: str | None) -> ApiClient:
        """A client with --token, else $SLUICE_TOKEN, else the session `sluice login` stored for
        this server."""
        url = server_url(url)
        token = token or os.environ.get("SLUICE_TOKEN") or stored_token(url)
        if not token:
            raise CliError(
                "not signed in and no API token: run `sluice login`, or set SLUICE_TOKEN / pass --token",
                notes=["an administrator creates tokens with: sluice token create --email you@example.com"],
            )
        return cls(url, token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        return self.send(method, API_PREFIX + path, params=params, body=body)

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """Any path of the server: the API's own are under /api/v1, sign-in's under /auth."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=clean, json=body)
        except httpx.ConnectError as exc:
            raise CliError(
                f"cannot reach the Sluice server at {self.url} ({exc})",
                notes=["start it with `sluice up`, or point --url / SLUICE_URL at a running server"],
            ) from exc
        except httpx.TimeoutException as exc:
            raise CliError(f"the Sluice server at {self.url} did not answer in time") from exc
        if response.status_code >= 400:
            raise problem_error(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(
                f"the server at {self.url} did not answer with JSON; is it a Sluice server?"
            ) from exc

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def get_pages(self, path: str, *, limit: int, **params: Any) -> tuple[list[dict[str, Any]], int]:
        """Up to `limit` items of an offset-paged listing, fetched a page at a time, and its total."""
        items: list[dict[str, Any]] = []
        total = 0
        while len(items) < limit:
            page = self.get(path, limit=min(PAGE_SIZE, limit - len(items)), offset=len(items), **params)
            batch = items_of(page)
            total = int(page.get("total", len(batch))) if isinstance(page, dict) else len(batch)
            items.extend(batch)
            if not batch or len(items) >= total:
                break
        return items, total

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body or {})

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PUT", path, body=body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, body=body)
