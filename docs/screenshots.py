"""`make screenshots`: the web UI's pictures in docs/images/, from the demo's runs.

`make demo` has recorded the demo's runs into ``.run_log_store``; this ingests them,
with the real run logs of ``examples/real-logs``, into a temporary index, serves it with
``runlog serve`` on a free loopback port, shoots each page of ``PAGES`` in headless
Chromium (Debian's ``/usr/bin/chromium``, through Playwright) and stops the server::

    .venv/bin/python docs/screenshots.py docs/images

tests/test_browser.py shoots the same pages with ``shoot`` on its own server.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNLOG = Path(sys.executable).parent / "runlog"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}

# (file, page, whole page or the first screen): the sweep of examples/sweep.py filtered
# and sorted, one run of it with its branches, and the whole sweep compared.
PAGES = [
    ("runs-page.png", "/-/runlog/runs?where=param%3Alr+in+%280.1%2C+0.01%29+and+min%3Aloss+%3C+0.5"
                      "&sort=min%3Aloss&col=min%3Aloss", False),
    ("run-page.png", "/-/runlog/run/sweep-ensemble", False),
    ("compare-page.png", "/-/runlog/compare?where=tag+%3D+%27sweep%27&metric=loss", True),
]


def shoot(browser, base_url: str, folder: Path) -> list[Path]:
    """Each page of ``PAGES`` at ``base_url`` as a PNG in ``folder``; returns their paths.

    >>> shoot(playwright.chromium.launch(), "http://127.0.0.1:8001", Path("docs/images"))  # doctest: +SKIP
    """
    folder.mkdir(parents=True, exist_ok=True)
    taken = []
    for name, path, full_page in PAGES:
        page = browser.new_page(viewport=VIEWPORT)
        try:
            response = page.goto(base_url + path)
            if response is None or response.status != 200:
                raise SystemExit(f"screenshots: {path} answered {response and response.status}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / name), full_page=full_page)
            taken.append(folder / name)
        finally:
            page.close()
    return taken


def build_index(db: Path) -> None:
    """The demo's store and the real run logs, ingested into ``db``. A run page shows
    where its log is: as in a checkout at ``~/runlog``, not on the machine that shoots."""
    store = REPO / ".run_log_store"
    if not store.is_dir():
        raise SystemExit(f"screenshots: no {store}: run `make demo` first")
    real = [str(p) for p in sorted((REPO / "examples" / "real-logs").iterdir()) if p.is_dir()]
    subprocess.run([str(RUNLOG), "ingest", str(store), *real, "--db", str(db), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("update runs set source_path = replace(source_path, ?, '~/runlog')", (str(REPO),))


@contextlib.contextmanager
def serving(db: Path) -> Iterator[str]:
    """``runlog serve`` on a free loopback port, stopped afterwards; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([str(RUNLOG), "serve", "--db", str(db), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/-/versions.json", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("screenshots: runlog serve did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(folder: str) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="runlog-screenshots-") as scratch:
        db = Path(scratch) / "runlog.db"
        build_index(db)
        with serving(db) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                for path in shoot(browser, base, Path(folder)):
                    print(path)
            finally:
                browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(REPO / "docs" / "images"))
