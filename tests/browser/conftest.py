"""One headless Debian Chromium for the whole test session, driven by Playwright; never a downloaded
browser (`playwright install` is not used). Each person gets a browser context of their own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import _need_service


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        _need_service("Chromium (run scripts/ensure-services.sh)", FileNotFoundError(CHROMIUM))
    from playwright.sync_api import expect, sync_playwright

    # The machine is shared: a page may take longer than Playwright's 5 s default under load.
    expect.set_options(timeout=20_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
