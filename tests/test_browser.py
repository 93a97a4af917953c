"""What a person sees: ``runlog serve`` in a subprocess, pages in headless Chromium
(Debian's /usr/bin/chromium through Playwright; skipped only when it is missing).

One server and one browser serve the whole module, on the index of tests/web_index.py.
The docs' pictures are taken by docs/screenshots.py (`make screenshots`); a test here
takes them from this server, so the script keeps working.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("datasette", reason="runlog serve needs datasette: pip install 'runlog-store[datasette]'")
httpx = pytest.importorskip("httpx", reason="the browser tests need httpx: pip install -e '.[test]'")

from browser import browser  # noqa: E402, F401  (fixture)
from conftest import REPO, doc_blocks  # noqa: E402
from loopback import free_port  # noqa: E402
from web_index import FAILED_RUN, LONG_RUN, build_web_index  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``runlog serve`` on a free loopback port; yields its base URL."""
    root = tmp_path_factory.mktemp("browser")
    db = build_web_index(root)
    port = free_port()
    log_path = root / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "runlog.cli", "serve", "--db", str(db), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"runlog serve exited with {process.returncode}: {log_path.read_text()}")
                try:
                    if httpx.get(base + "/-/versions.json", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("runlog serve did not answer within 60 s")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def open_page(browser, server):
    """``open_page(path)``: a page at the server's ``path``; after the test, no page it
    opened logged a console error or threw."""
    errors: list[str] = []
    pages = []

    def open_(path: str, width: int = 1280):
        page = browser.new_page(viewport={"width": width, "height": 900})
        pages.append(page)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        response = page.goto(server + path)
        assert response.status == 200, path
        return page

    yield open_
    for page in pages:
        page.close()
    assert errors == []


def column(page, name: str) -> list[str]:
    """The texts of the runs table's column ``name``."""
    headers = page.locator("table.rl-runs thead th").all_inner_texts()
    index = [h.replace("▲", "").replace("▼", "").replace("×", "").strip() for h in headers].index(name)
    return page.locator(f"table.rl-runs tbody tr td:nth-child({index + 1})").all_inner_texts()


def path_of(page, css: str) -> str:
    return page.locator(css).first.get_attribute("points")


# -- the runs page -----------------------------------------------------------------


def test_sort_runs_by_a_metric_column(open_page):
    page = open_page("/-/runlog/runs")
    page.fill("#rl-col", "min:loss")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    page.get_by_role("link", name="min:loss", exact=True).click()
    page.wait_for_load_state()
    assert "sort=min%3Aloss" in page.url
    values = [float(v) for v in column(page, "min:loss") if v]
    assert values == sorted(values) and len(values) == 9
    page.get_by_role("link", name="min:loss", exact=True).click()  # again: the other way
    page.wait_for_load_state()
    values = [float(v) for v in column(page, "min:loss") if v]
    assert values == sorted(values, reverse=True)


def test_filter_runs_and_see_a_mistake_explained(open_page):
    page = open_page("/-/runlog/runs")
    page.fill("#rl-where", "param:lr in (0.1, 0.01) and min:loss < 0.5")
    page.press("#rl-where", "Enter")
    page.wait_for_load_state()
    assert sorted(column(page, "run_id")) == ["sweep-01", "sweep-02", "sweep-03", "sweep-04", "sweep-ensemble"]
    page.fill("#rl-where", "min:los < 0.5")
    page.press("#rl-where", "Enter")
    page.wait_for_load_state()
    assert page.get_by_role("alert").inner_text().startswith("no metric 'los' in any run; did you mean loss")


def test_run_links_work_without_javascript(browser, server):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(server + "/")
        page.get_by_role("link", name="Browse the runs").click()  # the front door
        page.get_by_role("link", name="sweep-03", exact=True).click()
        assert page.locator("h1").inner_text().startswith("Run sweep-03")
        page.goto(server + "/runlog/runs?_sort=run_id")  # Datasette's table: its row links open run pages
        page.get_by_role("link", name="case1-simple", exact=True).click()
        assert page.locator("h1").inner_text().startswith("Run case1-simple")
    finally:
        context.close()


def test_select_two_runs_and_compare(open_page):
    page = open_page("/-/runlog/runs?tag=sweep")
    page.check("input[name=run][value='sweep-01']")
    page.check("input[name=run][value='sweep-03']")
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_load_state()
    assert "run=sweep-01&run=sweep-03" in page.url
    assert page.locator("h1").inner_text() == "Compare 2 runs on accuracy, loss"
    for title in ("loss", "accuracy"):
        lines = page.locator(f"svg.rl-chart[data-title='{title}'] polyline.rl-raw")
        assert lines.count() == 2
        assert all(box["width"] > 500 for box in (lines.nth(i).bounding_box() for i in range(2)))
    best = page.locator("td.rl-best")
    assert best.count() == 2 and "sweep-03" in best.first.locator("xpath=..").inner_text()


# -- the run page ------------------------------------------------------------------


def test_smoothing_and_log_scale_redraw_the_chart(open_page):
    page = open_page(f"/-/runlog/run/{LONG_RUN}")
    chart = "svg.rl-chart[data-title='loss']"
    width = page.locator(chart).bounding_box()["width"]
    assert width > 1000  # full page width
    raw = path_of(page, f"{chart} polyline.rl-raw")
    assert page.locator(f"{chart} polyline.rl-smooth").count() == 0
    page.select_option("select[name=smooth]", "0.9")  # runlog.js redraws on change
    page.wait_for_url("**smooth=0.9**")
    smooth = page.locator(f"{chart} polyline.rl-smooth")
    assert smooth.count() == 1 and smooth.bounding_box()["width"] > 1000
    assert path_of(page, f"{chart} polyline.rl-raw") == raw  # still there, behind
    faint = page.locator(f"{chart} polyline.rl-raw").evaluate("e => getComputedStyle(e).strokeOpacity")
    assert float(faint) < 0.5
    page.check("input[name=logy]")
    page.wait_for_url("**logy=1**")
    assert path_of(page, f"{chart} polyline.rl-raw") != raw
    assert "(log y)" in page.locator(chart).inner_html()


def test_drag_across_a_chart_to_zoom_and_back(open_page):
    page = open_page(f"/-/runlog/run/{LONG_RUN}")
    chart = page.locator("svg.rl-chart[data-title='loss']")
    whole = path_of(page, "svg.rl-chart[data-title='loss'] polyline.rl-raw")
    box = chart.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    assert page.locator(".rl-zoom-band").is_visible()
    page.mouse.up()
    page.wait_for_url("**from=**")
    zoomed = page.locator("svg.rl-chart[data-title='loss']")
    first, last = float(zoomed.get_attribute("data-x0")), float(zoomed.get_attribute("data-x1"))
    assert 1500 < first < last < 3000  # about 40%..50% of 5,000 steps, on round ticks
    assert path_of(page, "svg.rl-chart[data-title='loss'] polyline.rl-raw") != whole
    page.get_by_role("link", name="whole series").click()
    page.wait_for_load_state()
    assert path_of(page, "svg.rl-chart[data-title='loss'] polyline.rl-raw") == whole


def test_hovering_a_chart_shows_the_values_there(open_page, server):
    page = open_page("/-/runlog/run/sweep-ensemble")
    chart = "svg.rl-chart[data-title='loss']"
    # The mouse on the point of step 5 of the first line (the run's loss), where the page drew it.
    x, y = page.locator(chart).evaluate("""svg => {
        const [px, py] = svg.querySelector("g.rl-series polyline.rl-raw").getAttribute("points").trim()
            .split(/\\s+/)[5].split(",").map(Number);
        const point = svg.createSVGPoint(); point.x = px; point.y = py;
        const client = point.matrixTransform(svg.getScreenCTM());
        return [client.x, client.y];
    }""")
    page.mouse.move(x, y)
    tip = page.locator(".rl-tip")
    assert tip.is_visible()
    head, *lines = tip.inner_text().splitlines()
    assert round(float(head.removeprefix("x "))) == 5
    truth = {label: httpx.get(f"{server}/-/runlog/series.json", params={
        "run": "sweep-ensemble", "step": step, "key": "loss"}).json()[5]["value"]
        for label, step in (("loss", "fit.b1.train"), ("fit.b2.train/loss", "fit.b2.train"))}
    assert truth == {"loss": 0.2454, "fit.b2.train/loss": 0.3198}
    shown = dict(line.split(": ") for line in lines)
    assert list(shown) == list(truth)
    # Each value read back from where its point is drawn: true to one unit of the chart's height.
    box = page.locator(chart).evaluate("svg => svg.dataset")
    resolution = (float(box["y1"]) - float(box["y0"])) / (float(box["bottom"]) - float(box["top"]))
    assert all(abs(float(shown[label]) - value) <= resolution for label, value in truth.items()), (shown, resolution)


def test_failed_run_page(open_page):
    page = open_page(f"/-/runlog/run/{FAILED_RUN}")
    assert page.locator(".rl-skipped").inner_text() == "1 point not drawn (NaN or infinite)"
    assert page.locator(".rl-message").inner_text() == "loss diverged"
    assert page.locator("svg.rl-chart circle.rl-point").count() == 2  # a short series: a marker per point


# -- the compare page ---------------------------------------------------------------


def test_parallel_coordinates_are_drawn(open_page):
    page = open_page("/-/runlog/compare?where=tag+%3D+%27sweep%27")
    lines = page.locator("svg.rl-parallel polyline.rl-pc")
    assert lines.count() >= 7
    # each run's line crosses from axis to axis (a run without a value on an axis has a gap)
    assert all(lines.nth(i).bounding_box()["width"] > 200 for i in range(lines.count()))
    colours = {lines.nth(i).evaluate("e => getComputedStyle(e).stroke") for i in range(lines.count())}
    assert len(colours) > 1  # coloured by the last axis


def test_leaderboard_offers_a_direction(open_page):
    page = open_page("/runlog/leaderboard?key=accuracy")
    page.locator("select[name=direction]").select_option("asc")
    page.get_by_role("button", name="Run SQL").click()
    page.wait_for_load_state()
    values = [float(v) for v in page.locator("td.col-value").all_inner_texts()]
    assert values == sorted(values) and len(values) == 8


# -- the docs' pictures and server commands -------------------------------------------


def test_the_screenshot_script_shoots_every_page(browser, server, tmp_path):
    """docs/screenshots.py's pages, shot from this server: each a whole PNG of the viewport's width."""
    script = runpy.run_path(str(REPO / "docs" / "screenshots.py"))
    taken = script["shoot"](browser, server, tmp_path)
    assert [path.name for path in taken] == [name for name, _, _ in script["PAGES"]]
    for path in taken:
        with path.open("rb") as png:
            head = png.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") == 1280, path.name


def test_docs_server_blocks_run_as_shown(tmp_path):
    """The docs' console blocks that need `runlog serve` beside them: the server runs
    in the docs' folder (tests/test_docs.py's), on a free port in place of 8001."""
    from test_docs import parse_block, prepare

    folder = tmp_path / "doc"
    prepare(folder, ingest=True)
    port = str(free_port())
    blocks = [b for _, b in doc_blocks("console") if "runlog serve" in b or "curl " in b]
    serve = [step for b in blocks for step in parse_block(b) if step[0].startswith("runlog serve")]
    curls = [step for b in blocks for step in parse_block(b) if step[0].startswith("curl ")]
    assert len(serve) == 1 and len(curls) >= 3
    command, expected = serve[0]
    process = subprocess.Popen(["bash", "-c", command.replace("8001", port)], cwd=folder, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    try:
        assert process.stderr.readline().rstrip("\n") == expected.replace("8001", port)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/-/versions.json", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "runlog serve did not answer"
                time.sleep(0.2)
        for command, expected in curls:
            done = subprocess.run(["bash", "-c", command.replace("8001", port)], cwd=folder, capture_output=True,
                                  text=True)
            assert done.stdout.rstrip("\n") == expected, command
    finally:
        process.terminate()
        process.wait(timeout=10)
