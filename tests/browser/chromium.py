"""How the browser tests and `scripts/portal_screenshots.py` start Debian's Chromium through Playwright:
the system binary (no browser is downloaded) with the flags a closed network and a root user need."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
