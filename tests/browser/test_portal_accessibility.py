"""Accessibility of the portal against `sluice up --demo`: axe-core (npm, tests/browser/package.json)
finds no serious or critical violation on any page, and the request flow works with the keyboard
alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_portal_journey import searched, sign_in
from tests.e2e.test_demo_end_to_end import ORDERS, Sluice, running_demo

pytestmark = pytest.mark.e2e

INVOICES = ORDERS.replace("orders", "invoices")  # the keyboard test asks for orders
AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
MAX_TABS = 60


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str) -> Iterator[Sluice]:
    with running_demo(tmp_path_factory.mktemp("portal-a11y"), postgres_admin_url) as server:
        yield server


def _violations(page: Page) -> list[dict[str, object]]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, object]] = page.evaluate(
        """async () => (await axe.run(document)).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, where: v.nodes.map(n => n.target.join(' '))}))"""
    )
    return found


def _tab_to(page: Page, selector: str) -> None:
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} cannot be reached with the Tab key")


def test_no_serious_violation_on_any_page(chromium: Browser, demo: Sluice) -> None:
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("axe-core is missing: npm ci --prefix tests/browser")
        pytest.skip("axe-core is missing: npm ci --prefix tests/browser")
    # The test injects axe as a script of its own, which the portal's CSP (rightly) refuses.
    context = chromium.new_context(base_url=demo.url, bypass_csp=True)
    page = context.new_page()
    page.goto("/signin")
    pages = {"/signin": _violations(page)}
    form = page.locator("form", has=page.get_by_role("button", name="Sign in as Alice"))
    form.get_by_label("with admin rights").check()
    form.get_by_role("button").click()
    expect(page.get_by_role("heading", name="My access")).to_be_visible()
    for path in (
        "/access",
        "/request?q=ord",
        f"/request/review?unit=read+{INVOICES}",
        "/approvals",
        "/history",
        "/admin",
        "/admin/audit",
    ):
        page.goto(path)
        pages[path] = _violations(page)
    page.goto(f"/request/review?unit=read+{INVOICES}")
    page.get_by_label("Why").fill("accessibility check")
    page.get_by_role("button", name="Ask for access").click()
    pages["/requests/{id}"] = _violations(page)
    page.goto("/access")  # now with a grant waiting for approval, to withdraw
    pages["/access (waiting)"] = _violations(page)
    page.goto(f"/request/review?unit=read+{INVOICES}")
    page.get_by_label("Or save it as a favourite named").fill("invoices")
    page.get_by_role("button", name="Save as favourite").click()
    expect(page.get_by_role("heading", name="Your favourites")).to_be_visible()
    pages["/request (favourites)"] = _violations(page)
    assert {path: found for path, found in pages.items() if found} == {}
    context.close()


def test_the_request_flow_with_the_keyboard_alone(chromium: Browser, demo: Sluice) -> None:
    page = sign_in(chromium, demo.url, "Alice")
    page.goto("/request")
    _tab_to(page, "#q")
    searched(page, "ord", lambda: page.keyboard.type("ord", delay=50))
    option = f'input[name="unit"][value="read {ORDERS}"]'
    expect(page.locator(option).first).to_be_visible()
    _tab_to(page, option)
    page.keyboard.press("Space")
    expect(page.locator(option).first).to_be_checked()
    _tab_to(page, 'form[action="/request/review"] button[type="submit"]')
    page.keyboard.press("Enter")
    page.wait_for_url("**/request/review?**")
    _tab_to(page, "#duration")
    page.keyboard.press("Control+A")
    page.keyboard.type("30m")
    _tab_to(page, "#reason")
    page.keyboard.type("keyboard only")
    _tab_to(page, 'form[action="/request"][method="post"] button[type="submit"]')
    page.keyboard.press("Enter")
    expect(page.locator('[data-field="state"]')).to_have_text("pending")
