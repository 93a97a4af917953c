"""Headless Chromium for the tests that look at pages as a person would: Debian's
/usr/bin/chromium driven by Playwright, one browser per test module.

A module imports the ``browser`` fixture; the tests that use it skip, saying why, where
Chromium or Playwright is missing:

>>> from browser import browser  # noqa: F401  (fixture)   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

@pytest.fixture(scope="module")
def browser():
    """Chromium, launched once for the module that uses it."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium, or make setup-test)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser tests need playwright: pip install -e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
