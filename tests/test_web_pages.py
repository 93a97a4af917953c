"""runlog's own pages (runs, run, compare, series) through Datasette's test client,
on the index of tests/web_index.py: what each page shows, that its links are
server-side HTML, and that sort, filter, facets, paging and chart options do what
their URL says.
"""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
from html import unescape
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("datasette", reason="the web tests need datasette: pip install 'runlog-store[datasette]'")

from conftest import script_formats  # noqa: E402
from runlog.web import make_datasette, runs_page  # noqa: E402
from web_index import DIP, FAILED_RUN, LONG_RUN, LONG_STEPS, SPIKE, build_web_index  # noqa: E402

SWEEP = ["sweep-01", "sweep-02", "sweep-03", "sweep-04", "sweep-05", "sweep-06", "sweep-ensemble"]


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    return build_web_index(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def ds(index_path):
    datasette = make_datasette(index_path)
    yield datasette
    for db in datasette.databases.values():
        db.close()


def get(ds, path: str):
    response = asyncio.run(ds.client.get(path))
    return response


def page(ds, path: str) -> str:
    response = get(ds, path)
    assert response.status_code == 200, (path, response.text[:2000])
    return response.text


def sql(index_path, query: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(index_path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def table_rows(html: str, css: str) -> list[list[str]]:
    """The text of every cell of the table of class ``css``, row by row."""
    table = re.search(rf'<table class="[^"]*{css}[^"]*">(.*?)</table>', html, re.S).group(1)
    body = table.split("<tbody>", 1)[1]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)).replace("★", "").strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def headers(html: str, css: str) -> list[str]:
    table = re.search(rf'<table class="[^"]*{css}[^"]*">(.*?)</table>', html, re.S).group(1)
    head = table.split("<tbody>", 1)[0]
    return [unescape(re.sub(r"<[^>]+>|[▲▼×]", "", cell)).strip() for cell in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]


def charts(html: str) -> dict[str, dict[str, dict]]:
    """chart title -> line label -> its raw points, smoothed points and markers (screen units)."""
    found = {}
    for svg in re.finditer(r'<svg class="rl-chart" data-title="([^"]*)".*?</svg>', html, re.S):
        lines = {}
        for g in re.finditer(r'<g class="rl-series[^"]*" data-series="([^"]*)">(.*?)</g>', svg.group(0), re.S):
            def points(css):
                match = re.search(rf'<polyline class="{css}" points="([^"]*)"', g.group(2))
                return [tuple(map(float, p.split(","))) for p in match.group(1).split()] if match else []
            lines[unescape(g.group(1))] = {"raw": points("rl-raw"), "smooth": points("rl-smooth"),
                                           "markers": g.group(2).count('<circle class="rl-point"')}
        found[unescape(svg.group(1))] = lines
    return found


# -- the front door --------------------------------------------------------------


def test_home_and_database_pages_lead_to_the_runs_page(ds):
    for path in ("/", "/runlog"):
        html = page(ds, path)
        first_link = re.search(r'<a href="([^"]+)"><strong>Browse the runs</strong></a>', html)
        assert first_link and first_link.group(1) == "/-/runlog/runs", path
        assert html.index("Browse the runs") < html.index("<h2")  # before the list of tables


def test_runs_page_lists_every_run_with_varying_params_and_common_metrics(ds, index_path):
    html = page(ds, "/-/runlog/runs")
    columns = headers(html, "rl-runs")
    assert columns[:7] == ["", "run_id", "tag", "status", "start_time", "duration_s", "steps"]
    assert {"param:lr", "param:batch", "loss", "accuracy"} <= set(columns)
    assert "param:optimizer" not in columns  # the same in every run that has it
    rows = table_rows(html, "rl-runs")
    assert len(rows) == sql(index_path, "select count(*) from runs")[0][0] == 15
    # newest first is not the default: start time, then run id
    assert [r[1] for r in rows] == [r for (r,) in sql(index_path, "select run_id from runs order by start_time, run_id")]
    sweep_03 = dict(zip(columns, next(r for r in rows if r[1] == "sweep-03")))
    assert (sweep_03["param:lr"], sweep_03["param:batch"], sweep_03["loss"]) == ("0.01", "32", "0.1685")
    assert re.search(r'<h1>Runs <span class="rl-count">15</span></h1>', html)


def test_run_links_are_server_side_html(ds):
    html = page(ds, "/-/runlog/runs")
    assert '<td><a href="/-/runlog/run/sweep-01">sweep-01</a></td>' in html
    assert '<input type="checkbox" name="run" value="sweep-01"' in html
    assert '<form class="rl-pick" method="get" action="/-/runlog/compare">' in html


@pytest.mark.parametrize("sort, key", [("min:loss", lambda v: v), ("-min:loss", lambda v: -v)])
def test_a_header_sorts_by_its_column_and_again_the_other_way(ds, index_path, sort, key):
    html = page(ds, "/-/runlog/runs?col=min%3Aloss")
    link = re.search(r'<a href="([^"]+)">min:loss</a>', html).group(1)
    assert unescape(link) == "/-/runlog/runs?sort=min%3Aloss&col=min%3Aloss"
    if sort.startswith("-"):  # the sorted page's header sorts the other way
        link = unescape(re.search(r'<a href="([^"]+)">min:loss</a>', page(ds, unescape(link))).group(1))
    html = page(ds, unescape(link))
    columns = headers(html, "rl-runs")
    values = [row[columns.index("min:loss")] for row in table_rows(html, "rl-runs")]
    numbers = [float(v) for v in values if v]
    with_loss = sql(index_path, "select count(*) from run_metrics where name = 'loss'")[0][0]
    assert numbers == sorted(numbers, key=key) and len(numbers) == with_loss == 9
    assert values[len(numbers):] == [""] * (len(values) - len(numbers))  # runs without loss last
    assert ("▲" if not sort.startswith("-") else "▼") in html


def test_filter_in_the_where_language(ds):
    html = page(ds, "/-/runlog/runs?where=" + quote("param:lr in (0.1, 0.01) and min:loss < 0.5"))
    assert sorted(r[1] for r in table_rows(html, "rl-runs")) == [
        "sweep-01", "sweep-02", "sweep-03", "sweep-04", "sweep-ensemble"]
    assert 'value="param:lr in (0.1, 0.01) and min:loss &lt; 0.5"' in html  # the box keeps the filter


@pytest.mark.parametrize("where, message", [
    ("min:los < 0.5", "no metric &#39;los&#39; in any run; did you mean loss, loss_curve?"),
    ("min:loss <", "--where"),
])
def test_a_bad_filter_is_shown_inline_with_its_hint(ds, where, message):
    response = get(ds, "/-/runlog/runs?where=" + quote(where))
    assert response.status_code == 200
    error = re.search(r'<p class="rl-error" role="alert">(.*?)</p>', response.text, re.S)
    assert error and message in error.group(1)
    assert "rl-runs" not in response.text


def test_tag_and_status_facets_narrow_the_runs(ds):
    html = page(ds, "/-/runlog/runs")
    facet = re.search(r'<a class="rl-facet-value" href="([^"]+)">sweep <span>7</span></a>', html)
    assert facet
    narrowed = page(ds, unescape(facet.group(1)))
    assert sorted(r[1] for r in table_rows(narrowed, "rl-runs")) == SWEEP
    failed = page(ds, "/-/runlog/runs?status=FAIL")
    assert [r[1] for r in table_rows(failed, "rl-runs")] == [FAILED_RUN]
    assert re.search(r'class="rl-facet-value rl-selected" href="/-/runlog/runs">FAIL <span>1</span>', failed)


def test_facets_count_the_filtered_runs(ds):
    html = page(ds, "/-/runlog/runs?where=" + quote("param:lr in (0.1, 0.01)"))
    facets = re.findall(r'class="rl-facet-value[^"]*" href="[^"]*">([^<]+) <span>(\d+)</span>', html)
    assert facets == [("sweep", "5"), ("SUCCESS", "5")]


def test_default_columns_that_no_listed_run_has_are_left_out(ds):
    everything = headers(page(ds, "/-/runlog/runs"), "rl-runs")
    sweep = headers(page(ds, "/-/runlog/runs?tag=sweep&col=param:doubled_rows"), "rl-runs")
    assert "answer" in everything and "answer" not in sweep
    assert "param:doubled_rows" in sweep  # asked for: kept, empty or not


def test_pages_of_runs(ds, monkeypatch):
    monkeypatch.setattr(runs_page, "PAGE_SIZE", 4)
    first = page(ds, "/-/runlog/runs?tag=sweep&sort=run_id")
    assert [r[1] for r in table_rows(first, "rl-runs")] == SWEEP[:4]
    assert "runs 1–4 of 7" in first
    next_url = unescape(re.search(r'<a href="([^"]+)" rel="next">', first).group(1))
    assert next_url == "/-/runlog/runs?sort=run_id&tag=sweep&page=2"
    second = page(ds, next_url)
    assert [r[1] for r in table_rows(second, "rl-runs")] == SWEEP[4:]
    assert 'rel="next"' not in second and 'rel="prev"' in second


def test_added_columns_stay_in_the_url_and_can_be_removed(ds):
    html = page(ds, "/-/runlog/runs?tag=sweep&col=argmin%3Aloss&col=param%3Aoptimizer")
    columns = headers(html, "rl-runs")
    assert columns[-2:] == ["argmin:loss", "param:optimizer"]
    remove = unescape(re.search(r'<a class="rl-remove" href="([^"]+)" title="remove this column">', html).group(1))
    assert remove == "/-/runlog/runs?col=param%3Aoptimizer&tag=sweep"
    assert 'name="col" value="argmin:loss"' in html  # the filter form carries the columns


def test_compare_selected_is_a_plain_form(ds):
    """Ticking runs and pressing "Compare selected" is a GET of the compare page."""
    html = page(ds, "/-/runlog/compare?run=sweep-01&run=sweep-03")
    assert "<h1>Compare 2 runs on accuracy, loss</h1>" in html


# -- the run page ----------------------------------------------------------------


def test_run_page_shows_code_identity(ds):
    html = page(ds, "/-/runlog/run/case2-metrics")
    assert '<span class="rl-commit" title="60868c6603bc41f5a984214328fe4a1d76c8cb00">60868c6603bc</span>' in html
    assert "in https://example.invalid/runnable-study.git" in html
    assert '<span class="rl-clean">clean</span>' in html


def test_run_page_shows_catalog_entries(ds, index_path):
    html = page(ds, "/-/runlog/run/magnus-env-metrics-chunked")
    expected = sql(index_path, "select step_name, name, stage, data_hash, catalog_relative_path from catalog "
                               "where run_id = 'magnus-env-metrics-chunked'")
    assert expected
    shown = table_rows(html, "rl-catalog")
    assert sorted(tuple(row[:5]) for row in shown) == sorted(tuple(str(v) for v in row) for row in expected)


def test_values_recorded_once_are_a_table_not_charts(ds):
    html = page(ds, f"/-/runlog/run/{LONG_RUN}")
    assert list(charts(html)) == ["loss"]
    values = {row[0]: row[1] for row in table_rows(html, "rl-values")}
    assert values == {"f1": "0.61"}


def test_a_series_is_a_line_with_a_legend_and_its_data(ds, index_path):
    html = page(ds, "/-/runlog/run/sweep-ensemble")
    lines = charts(html)["loss"]
    assert list(lines) == ["loss", "fit.b2.train/loss"]  # one line per step, by run-level name
    assert all(len(line["raw"]) == 10 and line["markers"] == 10 for line in lines.values())  # short: markers
    xs = [x for x, _ in lines["loss"]["raw"]]
    assert xs == sorted(xs)
    assert '<a class="rl-data" href="/-/runlog/series.csv?run=sweep-ensemble&amp;step=fit.b2.train&amp;key=loss"' in html
    assert '<svg class="rl-chart" data-title="loss"' in html and 'viewBox="0 0 1100 300"' in html


def test_a_long_series_is_downsampled_keeping_its_spikes(ds):
    from runlog.web.run_page import BUCKETS

    html = page(ds, f"/-/runlog/run/{LONG_RUN}")
    chart = re.search(r'<svg class="rl-chart" data-title="loss".*?</svg>', html, re.S).group(0)
    line = charts(html)["loss"]["loss"]
    assert 2 * BUCKETS * 0.9 <= len(line["raw"]) <= 2 * BUCKETS
    assert line["markers"] == 0  # no dots on a long line
    ys = [y for _, y in line["raw"]]
    y0, y1 = (float(re.search(rf'data-{k}="([^"]+)"', chart).group(1)) for k in ("y0", "y1"))
    top, bottom = (float(re.search(rf'data-{k}="([^"]+)"', chart).group(1)) for k in ("top", "bottom"))
    # the spike is the highest point drawn, the dip the lowest: both survive the buckets
    assert y0 <= DIP and SPIKE <= y1
    assert abs(bottom - (SPIKE - y0) / (y1 - y0) * (bottom - top) - min(ys)) < 0.2
    assert abs(bottom - (DIP - y0) / (y1 - y0) * (bottom - top) - max(ys)) < 0.2
    assert "every point" in html


def test_smoothing_draws_an_average_over_a_faint_raw_line(ds):
    plain = charts(page(ds, f"/-/runlog/run/{LONG_RUN}"))["loss"]["loss"]
    smoothed = charts(page(ds, f"/-/runlog/run/{LONG_RUN}?smooth=0.9"))["loss"]["loss"]
    assert plain["smooth"] == [] and smoothed["smooth"]
    assert smoothed["raw"] == plain["raw"]  # the raw line stays, behind
    assert max(y for _, y in smoothed["smooth"]) < max(y for _, y in plain["raw"])  # the dip is averaged away
    html = page(ds, f"/-/runlog/run/{LONG_RUN}?smooth=0.9")
    assert '<option value="0.9" selected>' in html


def test_log_scale_changes_the_path_and_says_what_it_hides(ds):
    linear = charts(page(ds, f"/-/runlog/run/{LONG_RUN}"))["loss"]["loss"]["raw"]
    html = page(ds, f"/-/runlog/run/{LONG_RUN}?logy=1")
    logged = charts(html)["loss"]["loss"]["raw"]
    assert logged != linear and abs(len(logged) - len(linear)) <= 2
    assert "(log y)" in html and "not drawn (&le; 0 on a log scale)" in html


def test_zoom_into_a_range_of_steps(ds):
    from runlog.web.run_page import BUCKETS

    whole = charts(page(ds, f"/-/runlog/run/{LONG_RUN}"))["loss"]["loss"]["raw"]
    html = page(ds, f"/-/runlog/run/{LONG_RUN}?from=3000&to=3400")
    chart = re.search(r'<svg class="rl-chart" data-title="loss".*?</svg>', html, re.S).group(0)
    x0, x1 = (float(re.search(rf'data-{k}="([^"]+)"', chart).group(1)) for k in ("x0", "x1"))
    assert 3000 >= x0 >= 2900 and 3400 <= x1 <= 3500
    zoomed = charts(html)["loss"]["loss"]
    assert len(zoomed["raw"]) == 401 <= 2 * BUCKETS  # every point of the range, exactly
    assert zoomed["raw"] != whole
    assert 'data-zoom="1"' in chart
    assert '<a class="rl-unzoom" href="?">whole series</a>' in html
    assert 'name="from" value="3000"' in html and 'name="to" value="3400"' in html
    compare = page(ds, "/-/runlog/compare?run=sweep-01&run=sweep-03&metric=loss&from=2&to=5")
    assert all(len(line["raw"]) == 4 for line in charts(compare)["loss"].values())
    assert '<a class="rl-unzoom" href="?run=sweep-01&amp;run=sweep-03&amp;metric=loss">whole series</a>' in compare


def test_time_axis_is_offered_only_where_times_differ(ds, index_path, tmp_path):
    html = page(ds, f"/-/runlog/run/{LONG_RUN}")
    assert 'name="x"' not in html  # every point of a run-log step carries the attempt's end time
    copy = tmp_path / "timed.db"
    with sqlite3.connect(index_path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as conn:
        conn.execute("update metrics set timestamp_ms = timestamp_ms + step * 1000 where run_id = ?", (LONG_RUN,))
        conn.execute("update run_metrics set timestamps = count where run_id = ?", (LONG_RUN,))
    timed = make_datasette(copy)
    html = asyncio.run(timed.client.get(f"/-/runlog/run/{LONG_RUN}?x=since")).text
    assert '<option value="since" selected>' in html
    line = charts(html)["loss"]["loss"]["raw"]
    assert len(line) <= 1040 and "seconds since the run started" in html


def test_series_data_is_every_point(ds, index_path):
    response = get(ds, f"/-/runlog/series.csv?run={LONG_RUN}&step=train&key=loss")
    assert response.headers["content-disposition"] == f'attachment; filename="{LONG_RUN}-train-loss.csv"'
    data = get(ds, f"/-/runlog/series.json?run={LONG_RUN}&step=train&key=loss").json()
    assert len(data) == LONG_STEPS and data[3210]["value"] == SPIKE
    assert response.text == script_formats(data)["csv"]  # the same points, every digit
    assert [p["value"] for p in data[:2]] == [v for (v,) in sql(
        index_path, "select value from metrics where run_id = ? and key = 'loss' order by step limit 2", (LONG_RUN,))]
    assert get(ds, "/-/runlog/series.csv?run=nope&step=train&key=loss").status_code == 404


def test_failed_run_page_shows_the_nan_and_the_message(ds):
    html = page(ds, f"/-/runlog/run/{FAILED_RUN}")
    assert len(charts(html)["loss_curve"]["loss_curve"]["raw"]) == 2
    assert "1 point not drawn (NaN or infinite)" in html
    assert '<div class="rl-message">loss diverged</div>' in html


# -- the compare page ------------------------------------------------------------


def test_compare_overlays_the_runs_one_chart_per_metric(ds):
    html = page(ds, "/-/runlog/compare?run=sweep-01&run=sweep-03&run=sweep-05")
    found = charts(html)
    assert list(found) == ["accuracy", "loss"]  # the most common, then by name
    assert list(found["loss"]) == ["sweep-01", "sweep-03", "sweep-05"]
    assert all(len(line["raw"]) == 10 for line in found["loss"].values())
    assert [row[0] for row in table_rows(html, "rl-summaries")] == ["sweep-01", "sweep-03", "sweep-05"]


def test_best_run_per_metric_follows_the_direction_of_its_name(ds):
    html = page(ds, "/-/runlog/compare?where=" + quote("tag = 'sweep'"))
    columns = headers(html, "rl-summaries")
    marked = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html.split('rl-summaries">', 1)[1].split("</table>")[0], re.S)[1:]:
        cells = re.findall(r'<td class="([^"]*)">(.*?)</td>', row, re.S)
        for column, (css, _) in zip(columns, cells):
            if "rl-best" in css:
                marked[column] = re.sub(r"<[^>]+>", "", cells[0][1])
    assert marked == {"min:loss": "sweep-03", "max:accuracy": "sweep-03"}
    assert "best loss: <strong>lowest</strong>" in html and "best accuracy: <strong>highest</strong>" in html
    switch = unescape(re.search(r'best loss: <strong>lowest</strong> \(<a href="([^"]+)">switch</a>', html).group(1))
    flipped = page(ds, switch)
    assert "best loss: <strong>highest</strong>" in flipped
    assert "max:loss" in headers(flipped, "rl-summaries")


def test_compare_draws_parallel_coordinates_one_line_per_run(ds):
    html = page(ds, "/-/runlog/compare?where=" + quote("tag = 'sweep'"))
    figure = re.search(r'<svg class="rl-parallel".*?</svg>', html, re.S).group(0)
    runs = re.findall(r"<title>([^,<]+)", figure)
    assert sorted(set(runs)) == SWEEP
    axes = re.findall(r'<text class="rl-pc-label"[^>]*>([^<]+)</text>', figure)
    assert axes[:2] == ["param:batch", "param:lr (log)"] and axes[-2:] == ["min:loss", "max:accuracy"]


def test_compare_with_nothing_chosen_says_how_to_choose(ds):
    html = page(ds, "/-/runlog/compare")
    assert "Choose runs" in html and 'href="/-/runlog/runs"' in html


def test_compare_names_an_unknown_run_or_metric(ds):
    html = page(ds, "/-/runlog/compare?run=sweep-1")
    assert re.search(r'<p class="rl-error" role="alert">no run &#39;sweep-1&#39;.*?sweep-01', html)
    html = page(ds, "/-/runlog/compare?run=sweep-01&metric=los")
    assert "no metric &#39;los&#39; in any run; did you mean loss, loss_curve?" in html


def test_compare_caps_its_size_whatever_the_number_of_runs(ds, index_path):
    from runlog.web.compare_page import POINT_BUDGET

    html = page(ds, "/-/runlog/compare?metric=loss&where=" + quote("loss is not null"))
    lines = charts(html)["loss"]
    assert sorted(lines) == [r for (r,) in sql(index_path, "select run_id from run_metrics where name = 'loss' "
                                                             "and count > 1 order by run_id")]
    assert sum(len(line["raw"]) for line in lines.values()) <= POINT_BUDGET


# -- table pages -----------------------------------------------------------------


def test_table_pages_fold_their_column_help_and_say_utc(ds):
    html = page(ds, "/runlog/runs")
    assert '<details class="rl-columns"><summary>15 columns described</summary>' in html
    assert "local time" not in html and "read as UTC" in html
    assert html.index("<details class=\"rl-columns\">") < html.index('<table class="rows-and-columns')


def test_table_cells_are_compact_and_utc(ds):
    html = page(ds, "/runlog/runs?run_id=case2-metrics")
    assert re.search(r'<time title="[^"]+">2026-11-26T09:27:41\.754Z</time>', html)
    assert '<details class="rl-json"><summary>' in html  # the run's parameters, folded
    # Datasette links a primary key to the row's page; that page of runs is the run page
    assert '<a href="/runlog/runs/case2-metrics">case2-metrics</a>' in html


def test_big_tables_skip_the_count_and_facet_suggestions(ds):
    data = get(ds, "/runlog/metrics.json").json()
    assert data["filtered_table_rows_count"] is None and data["suggested_facets"] == []
    assert "_nocount=1" in data["next_url"]  # the next page skips it too
    counted = get(ds, "/runlog/metrics.json?_nocount=").json()
    assert counted["filtered_table_rows_count"] > LONG_STEPS
    small = get(ds, "/runlog/runs.json").json()
    assert small["filtered_table_rows_count"] == 15


@pytest.mark.parametrize("row, run_page", [
    ("sweep-01", "/-/runlog/run/sweep-01"),
    ("na~C3~AFve~20run~20~231", "/-/runlog/run/na%C3%AFve%20run%20%231"),  # Datasette's tilde encoding
])
def test_a_runs_row_page_is_the_run_page(ds, row, run_page):
    response = get(ds, f"/runlog/runs/{row}")
    assert response.status_code == 302 and response.headers["location"] == run_page
    assert get(ds, "/runlog/runs/sweep-01.json").status_code == 200  # the row's JSON stays


# -- downsampling ------------------------------------------------------------------


def series_db(points: list[tuple[int, float | None]]):
    """An in-memory index holding one series ``r/s/k`` of ``points`` ``(step, value)``,
    with its summary and tiles as ingest makes them."""
    from runlog.index.schema import INSERT, SCHEMA_SQL, statements
    from runlog.index.summaries import group_series, run_metric_rows
    from runlog.index.tiles import tile_rows

    conn = sqlite3.connect(":memory:")
    for statement in statements(SCHEMA_SQL):
        conn.execute(statement)
    rows = [("r", "s", "k", step, value, None if value is not None else "NaN", "numeric", 0) for step, value in points]
    conn.executemany(INSERT["metrics"], rows)
    groups = group_series(rows)
    conn.executemany(INSERT["run_metrics"], run_metric_rows("r", groups, {"s": 0}))
    conn.executemany(INSERT["metric_tiles"], tile_rows("r", groups))
    return conn


def check_buckets(conn, points, buckets: int, steps: tuple[int, int] | None = None) -> None:
    """What a chart of ``buckets`` buckets draws of ``points`` (held by ``conn``), zoomed
    into ``steps`` when given, keeps what it must."""
    from runlog.index.tiles import read_series

    drawn = read_series(conn, "r", "s", "k", buckets, steps)
    if steps:
        points = [(s, v) for s, v in points if steps[0] <= s <= steps[1]]
    finite = [(s, v) for s, v in points if v is not None and abs(v) != float("inf")]
    assert drawn.skipped == len(points) - len(finite)
    if len(points) <= 2 * buckets:  # short: every point, exactly
        assert drawn.exact and drawn.points == finite
        return
    assert not drawn.exact
    assert len(drawn.means) <= buckets and len(drawn.points) <= 2 * buckets
    if not finite:  # nothing to draw: no bucket, no point
        assert drawn.points == [] and drawn.means == []
        return
    if len(finite) == len(points):  # (gaps left by NaN and inf may empty some buckets)
        assert len(drawn.means) >= buckets // 2  # the widest tiles still fill the buckets
    value_at = dict(finite)
    assert all(value_at[step] == value for step, value in drawn.points)  # real points, not averages
    assert [s for s, _ in drawn.points] == sorted(s for s, _ in drawn.points)
    assert min(v for _, v in finite) in {v for _, v in drawn.points}
    assert max(v for _, v in finite) in {v for _, v in drawn.points}
    # each bucket holds the lowest and highest point of its steps, and their mean
    ends = iter(drawn.points)
    assert sum(n for _, _, n in drawn.means) == len(finite)
    taken = 0
    for _, mean, count in drawn.means:  # buckets take the finite points in order
        inside = [v for _, v in finite[taken:taken + count]]
        taken += count
        assert mean == pytest.approx(sum(inside) / count)
        first = next(ends)
        kept = {first[1]} if min(inside) == max(inside) else {first[1], next(ends)[1]}
        assert kept == {min(inside), max(inside)}


def test_downsampling_keeps_each_buckets_lowest_and_highest_point():
    points = [(step, math.sin(step / 50) + (9.0 if step == 7_777 else 0.0)) for step in range(20_000)]
    points[12_345] = (12_345, -9.0)
    points[100] = (100, None)  # NaN
    points[200] = (200, float("inf"))
    conn = series_db(points)
    for buckets in (7, 40, 100, 520, 1_000, 9_999, 10_000):
        check_buckets(conn, points, buckets)
    for steps in ((7_000, 8_000), (100, 19_000), (12_345, 12_345), (-5, 3), (19_990, 50_000), (30_000, 40_000)):
        check_buckets(conn, points, 40, steps)  # a zoom: whole tiles inside, points at the ends


def test_downsampling_of_a_series_with_no_finite_point():
    points = [(0, None), (1, None), (2, float("inf"))]  # found by the property below
    for buckets in (1, 2):
        check_buckets(series_db(points), points, buckets)
    points = [(step, None) for step in range(50)] + [(50, 1.0)]
    check_buckets(series_db(points), points, 10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.integers(0, 30_000), min_size=1, max_size=3_000, unique=True),
    data=st.data(),
    buckets=st.integers(1, 700),
    zoom=st.one_of(st.none(), st.tuples(st.integers(-10, 30_010), st.integers(-10, 30_010)).map(sorted)),
)
def test_downsampling_of_any_series(steps, data, buckets, zoom):
    values = data.draw(st.lists(st.one_of(st.floats(-1e6, 1e6), st.sampled_from([None, float("inf")])),
                                min_size=len(steps), max_size=len(steps)))
    points = sorted(zip(steps, values))
    check_buckets(series_db(points), points, buckets, tuple(zoom) if zoom else None)


def test_an_index_of_schema_2_gets_tiles_in_place(tmp_path, index_path):
    from runlog.index import SCHEMA_VERSION
    from runlog.index.db import upgrade_index

    path = tmp_path / "v2.db"
    with sqlite3.connect(index_path) as source, sqlite3.connect(path) as target:
        source.backup(target)
    with sqlite3.connect(path) as conn:
        want = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4").fetchall()
                for t in ("metric_tiles", "run_metrics")}
        conn.executescript("DROP TABLE metric_tiles; ALTER TABLE run_metrics DROP COLUMN timestamps; "
                           "PRAGMA user_version = 2;")
    assert len(want["metric_tiles"]) > 100
    assert upgrade_index(path) == (2, SCHEMA_VERSION)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        for table, rows in want.items():
            assert conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4").fetchall() == rows
