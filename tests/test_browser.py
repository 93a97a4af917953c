"""What a person sees: ``runlog serve`` in a subprocess, pages in headless Chromium.

Uses Debian's /usr/bin/chromium through Playwright; skips only when that
browser is not installed.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loopback import free_port
from test_datasette import FAILED_RUN, build_index

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
)


@pytest.fixture
def server(tmp_path, fixture_store):
    """``runlog serve`` on a free loopback port; yields its base URL and the index path."""
    db = build_index(fixture_store, tmp_path / "runlog.db")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    script = shutil.which("runlog", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "runlog.cli"]
    process = subprocess.Popen(
        [*command, "serve", "--db", str(db), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"runlog serve exited with {process.returncode}: {(tmp_path / 'serve.log').read_text()}")
            try:
                if httpx.get(base + "/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("runlog serve did not answer within 60 s")
            time.sleep(0.2)
        yield base, db
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, url):
    """A page at ``url`` and the list its console errors and page errors go to."""
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(url)
    assert response.status == 200, url
    return page, errors


def finite_points(db: Path, run_id: str) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("select key, value from metrics where run_id = ? and kind = 'numeric'", [run_id]).fetchall()
    finally:
        conn.close()
    counts: dict[str, int] = {}
    for key, value in rows:
        counts[key] = counts.get(key, 0) + (value is not None and math.isfinite(value))
    return counts


def drawn_charts(page) -> dict[str, int]:
    """key -> number of <circle> marks the browser laid out with a size, per chart."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('svg.rl-chart')].map(svg => {
            const marks = [...svg.querySelectorAll('circle.rl-point')]
                .filter(c => c.getBBox().width > 0 && c.getBoundingClientRect().width > 0);
            if (marks.length !== Number(svg.dataset.points)) throw new Error('chart ' + svg.dataset.key);
            return [svg.dataset.key, marks.length];
        }))"""
    )


def test_run_page_draws_its_charts(server, browser, tmp_path):
    base, db = server
    page, errors = open_page(browser, f"{base}/-/runlog/run/case2-metrics")
    assert drawn_charts(page) == finite_points(db, "case2-metrics")
    assert page.locator("svg.rl-chart[data-key='loss_curve'] polyline").count() == 1
    stroke = page.locator("svg.rl-chart[data-key='loss_curve'] polyline").evaluate("e => getComputedStyle(e).stroke")
    assert stroke == "rgb(31, 119, 180)"  # runlog.css was served and applied
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))  # the first screenful: facts, steps, the curve
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RUNLOG_SCREENSHOT"):  # RUNLOG_SCREENSHOT=docs/screenshot.png refreshes the README's
        shutil.copy(shot, os.environ["RUNLOG_SCREENSHOT"])
    assert errors == []


def test_failed_run_and_compare_pages(server, browser):
    base, db = server
    page, errors = open_page(browser, f"{base}/-/runlog/run/{FAILED_RUN}")
    assert drawn_charts(page) == finite_points(db, FAILED_RUN)
    assert page.locator(".rl-skipped").inner_text() == "1 point not drawn (NaN or infinite)"
    page.locator("svg.rl-chart[data-key='loss_curve']").locator("xpath=../..").get_by_role("link").click()
    page.wait_for_load_state()
    assert "/-/runlog/compare?key=loss_curve" in page.url
    page.locator("input[name=run][value='case2-metrics']").check()
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert drawn_charts(page) == {"loss_curve": 6}
    assert errors == []


def test_runs_table_links_run_ids_and_leaderboard_offers_a_direction(server, browser):
    base, _ = server
    page, errors = open_page(browser, f"{base}/runlog/runs?_sort=run_id")
    link = page.locator("table.rows-and-columns td.type-pk a").first
    assert link.get_attribute("href") == "/-/runlog/run/case1-simple?db=runlog"
    link.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("Run case1-simple")
    page, more_errors = open_page(browser, f"{base}/runlog/leaderboard?key=accuracy")
    direction = page.locator("select[name=direction]")
    direction.select_option("asc")
    page.get_by_role("button", name="Run SQL").click()
    page.wait_for_load_state()
    assert page.locator("td.col-run_id").all_inner_texts() == [FAILED_RUN, "case2-metrics"]
    assert errors == more_errors == []
