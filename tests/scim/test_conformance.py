"""scim2-tester's conformance checks against /scim/v2, through the in-process app: zero failures.

Checks that do not apply, with the reason (every other check must succeed; checks of the features the
server declares unsupported, bulk, sort, ETags and password change, are skipped by the tester itself):
* `search_with_attributes`: it POSTs to `/.search`; searching by POST is optional (RFC 7644 §3.4.3,
  "MAY"), identity providers query with GET, and Sluice answers GET only.
* `check_add_attribute` / `check_replace_attribute` on a group's `members`: the tester writes arbitrary
  `display` and `$ref` values and expects them back; Sluice derives both from the member (its userName
  and location), so what a group reads back is the truth about its members, not an echo.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from scim2_client.client import BaseSyncSCIMClient, RawResponse
from scim2_tester import Status, check_server

from tests.scim.conftest import Scim


class TestClientSCIM(BaseSyncSCIMClient):
    """scim2-client over the in-process test client (its own engines need httpx2 or a WSGI app)."""

    def __init__(self, client: TestClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url = self.client.build_request("GET", endpoint).url
        base = self.client.base_url
        return url.host == base.host and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: RawResponse) -> Any:
        return response.json()  # type: ignore[attr-defined]

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.client.request(method, url, **kwargs)


def _not_applicable(result: Any) -> bool:
    if result.title == "search_with_attributes":
        return True
    return result.title in ("check_add_attribute", "check_replace_attribute") and str(
        result.reason
    ).startswith("PATCH modify() returned unexpected value for 'members'")


def test_scim2_tester_finds_no_failure(scim: Scim) -> None:
    scim.client.headers["Authorization"] = f"Bearer {scim.token}"
    scim.client.base_url = scim.client.base_url.join("/scim/v2/")  # type: ignore[assignment]
    results = check_server(TestClientSCIM(scim.client), raise_exceptions=False)
    counts = Counter(r.status for r in results)
    failures = [
        f"{r.title}: {r.reason}" for r in results if r.status == Status.ERROR and not _not_applicable(r)
    ]
    assert not failures, "\n".join(failures)
    assert counts[Status.SUCCESS] > 20, counts
