"""The portal in a real browser against `sluice up --demo`: alice finds `orders` by typing and asks
for it; carol, in her own browser, approves it from her inbox; alice's page turns active without a
reload; she reveals the credentials, psycopg logs in with them; she ends it early and the login is
gone from PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_demo_end_to_end import ORDERS, Sluice, _wait_for, running_demo

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo(tmp_path: Path, postgres_admin_url: str) -> Iterator[Sluice]:
    with running_demo(tmp_path, postgres_admin_url) as server:
        yield server


def sign_in(browser: Browser, url: str, name: str) -> Page:
    page = browser.new_context(base_url=url).new_page()
    page.goto("/signin")
    page.get_by_role("button", name=f"Sign in as {name}").click()
    expect(page.get_by_role("heading", name="My access")).to_be_visible()
    return page


def searched(page: Page, text: str, type_it: Callable[[], None]) -> None:
    """Type into the type-ahead (`type_it`) and wait until the results for `text` are swapped in: on a
    busy machine the answer can come after the test has moved on to the list already on the page, and
    the swap then replaces the very checkbox the test focused or checked."""
    with page.expect_response(lambda r: "/request/search" in r.url and f"q={text}" in r.url):
        type_it()
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def _role_exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def test_request_approve_use_and_end_in_the_browser(
    chromium: Browser, demo: Sluice, postgres_admin_url: str
) -> None:
    assert f"portal: {demo.url}/" in demo.logs()  # what `make up` prints
    alice = sign_in(chromium, demo.url, "Alice")
    alice.get_by_role("link", name="Request access").first.click()
    field = alice.get_by_label("Find what you may request")
    searched(alice, "ord", lambda: field.press_sequentially("ord", delay=50))
    option = alice.locator(f'input[name="unit"][value="read {ORDERS}"]')
    expect(option).to_be_visible()  # swapped in by the type-ahead, no submit
    option.check()
    expect(option).to_be_checked()
    alice.get_by_role("button", name="Review: who will approve").click()
    expect(alice.get_by_text("carol@example.com").first).to_be_visible()
    alice.get_by_label("For how long").select_option("1h")
    alice.get_by_label("Why").fill("investigate order 42")
    alice.get_by_role("button", name="Ask for access").click()
    expect(alice.locator('[data-field="state"]')).to_have_text("pending")
    request_id = alice.url.rsplit("/", 1)[1]

    carol = sign_in(chromium, demo.url, "Carol")
    carol.get_by_role("link", name="Approvals").click()
    carol.get_by_label(f"Pick request {request_id} from alice@example.com").check()
    carol.get_by_role("button", name="Approve picked").click()
    expect(carol.get_by_text(f"{request_id}: approved")).to_be_visible()

    # No reload: the request page polls its status.
    expect(alice.locator('[data-field="state"]')).to_have_text("active", timeout=30_000)
    alice.get_by_role("link", name="My access").click()
    alice.get_by_role("button", name="Show credentials").click()
    fields: dict[str, Any] = {}
    for name in ("host", "port", "database", "username", "password"):
        fields[name] = alice.locator(f'[data-field="{name}"]').inner_text()
    expect(alice.locator('[data-field="command"]')).to_contain_text("psql")
    with psycopg.connect(
        host=fields["host"],
        port=int(fields["port"]),
        dbname=fields["database"],
        user=fields["username"],
        password=fields["password"],
        connect_timeout=5,
    ) as conn:
        assert conn.execute("SELECT count(*) FROM public.orders").fetchone()[0] >= 1  # type: ignore[index]
    assert _role_exists(postgres_admin_url, fields["username"])

    alice.get_by_role("button", name="End now").click()
    expect(alice.get_by_text("You hold no access right now.")).to_be_visible(timeout=30_000)

    def gone() -> bool:
        return not _role_exists(postgres_admin_url, fields["username"])

    _wait_for("the login to be gone from PostgreSQL", gone, 30)
