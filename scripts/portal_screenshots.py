"""Screenshots of the portal's main pages for docs/portal.md, taken from a fresh `sluice up --demo`
by the system Chromium (Playwright drives it; no browser is downloaded).

    .venv/bin/python scripts/portal_screenshots.py [OUT_DIR]      # default: docs/portal

Needs the demo's PostgreSQL (SLUICE_DEMO_POSTGRES_URL, default the local server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
SLUICE = str(Path(sys.executable).with_name("sluice"))
sys.path.insert(0, str(ROOT))  # the Chromium settings the browser tests use
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

ORDERS = "local-pg/sluice_demo/public/orders"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_demo(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_") or k.endswith("POSTGRES_URL")}
    env["SLUICE_HOME"] = str(home)
    process = subprocess.Popen(  # noqa: S603 (our own executable, fixed arguments)
        [SLUICE, "up", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("sluice up --demo did not start within 90 s")


def sign_in(browser: Browser, url: str, name: str, *, admin: bool = False) -> Page:
    page = browser.new_context(base_url=url, viewport={"width": 1200, "height": 800}).new_page()
    page.goto("/signin")
    form = page.locator("form", has=page.get_by_role("button", name=f"Sign in as {name}"))
    if admin:
        form.get_by_label("with admin rights").check()
    form.get_by_role("button").click()
    expect(page.get_by_role("heading", name="My access")).to_be_visible()
    return page


def shoot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print(f"wrote {out / name}.png")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "portal"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        process, url = start_demo(Path(home))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                first = browser.new_page(base_url=url)
                first.goto("/signin")
                shoot(first, out, "signin")
                alice = sign_in(browser, url, "Alice")
                alice.goto("/request")
                alice.get_by_label("Find what you may request").press_sequentially("ord", delay=40)
                expect(alice.locator(f'input[value="read {ORDERS}"]')).to_be_visible()
                shoot(alice, out, "request-search")
                alice.locator(f'input[value="read {ORDERS}"]').check()
                expect(alice.locator(f'input[value="read {ORDERS}"]')).to_be_checked()
                alice.get_by_role("button", name="Review: who will approve").click()
                if not alice.get_by_label("Why").count():
                    raise SystemExit(alice.locator("main").inner_text())
                alice.get_by_label("Why").fill("investigate order 42")
                shoot(alice, out, "request-review")
                alice.get_by_label("Or save it as a favourite named").fill("orders, for incidents")
                alice.get_by_role("button", name="Save as favourite").click()
                expect(alice.get_by_text("orders, for incidents").first).to_be_visible()
                shoot(alice, out, "favourites")
                alice.go_back()
                alice.get_by_label("Why").fill("investigate order 42")
                alice.get_by_role("button", name="Ask for access").click()
                carol = sign_in(browser, url, "Carol")
                carol.goto("/approvals")
                shoot(carol, out, "approvals")
                carol.locator('input[name="request"]').first.check()
                carol.get_by_role("button", name="Approve picked").click()
                expect(alice.locator('[data-field="state"]')).to_have_text("active", timeout=30_000)
                shoot(alice, out, "request-page")
                alice.goto("/access")
                alice.get_by_role("button", name="Show credentials").click()
                expect(alice.locator('[data-field="command"]')).to_be_visible()
                alice.locator('[data-field="password"]').evaluate("e => e.textContent = '••••••••'")
                alice.locator('[data-field="command"]').evaluate(
                    "e => e.textContent = e.textContent.replace(/PGPASSWORD=\\S+/, 'PGPASSWORD=••••••••')"
                )
                shoot(alice, out, "my-access")
                admin = sign_in(browser, url, "Bob", admin=True)
                admin.goto(f"/admin?who=alice@example.com&resource={ORDERS}&permission=read")
                shoot(admin, out, "admin")
                admin.goto("/history?scope=all")
                shoot(admin, out, "history")
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
