"""The Datasette plugin and ``runlog serve``, through Datasette's own test client.

The index is built by ``runlog.index.ingest`` from the real fixture runs plus
one run derived from them that failed (the fixtures hold only successes). runlog's
own pages are tested at length in test_web_pages.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import math
import re
import sqlite3
from html import escape
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("datasette", reason="the web tests need datasette: pip install 'runlog-store[datasette]'")

from runlog.cli import cli  # noqa: E402
from runlog.errors import RunlogError  # noqa: E402
from runlog.index import ingest  # noqa: E402
from runlog.index.tiles import Series  # noqa: E402
from runlog.web import make_datasette, table_metadata  # noqa: E402
from runlog.web.charts import Line, line_chart  # noqa: E402
from runlog.web.pages import step_tree  # noqa: E402
from web_index import FAILED_RUN, add_failed_run  # noqa: E402


def build_index(store: Path, db_path: Path) -> Path:
    add_failed_run(store)
    report = ingest([store], db_path)
    assert (report.ingested, report.failed) == (7, 0), report.errors
    return db_path


@pytest.fixture
def index_path(tmp_path, fixture_store) -> Path:
    return build_index(fixture_store, tmp_path / "runlog.db")


@pytest.fixture
def ds(index_path):
    datasette = make_datasette(index_path)
    yield datasette
    for db in datasette.databases.values():
        db.close()


def fetch(ds, *paths, method="get", **kwargs):
    """Responses for each path, in one event loop."""

    async def go():
        return [await getattr(ds.client, method)(path, **kwargs) for path in paths]

    responses = asyncio.run(go())
    return responses[0] if len(paths) == 1 else responses


def query(db_path: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# -- the plugin is there -------------------------------------------------------


def test_plugin_is_installed(ds):
    plugins = fetch(ds, "/-/plugins.json").json()
    (runlog,) = [p for p in plugins if p["name"] == "runlog-store"]
    assert {"render_cell", "register_routes", "canned_queries", "get_metadata", "startup"} <= set(runlog["hooks"])


def test_entry_point_registers_the_module():
    (entry,) = [e for e in importlib.metadata.entry_points(group="datasette") if e.name == "runlog"]
    assert entry.value == "runlog.web.plugin"


def test_plain_datasette_gets_the_same_features(index_path):
    """``datasette runlog.db`` without runlog serve: queries, metadata and run pages."""
    from datasette.app import Datasette

    plain = Datasette(files=[str(index_path)])
    database, run_page = fetch(plain, "/runlog.json", "/-/runlog/run/case1-simple")
    assert [q["name"] for q in database.json()["queries"]] == [
        "metric_history", "leaderboard", "runs_by_tag", "failed_steps", "param_diff"]
    assert run_page.status_code == 200
    assert plain.metadata("facets", database="runlog", table="runs") == ["tag", "status"]
    assert plain.metadata("facets", database="runlog", table="metrics") is None  # a GROUP BY of millions of rows


def test_other_databases_are_left_alone(tmp_path):
    from datasette.app import Datasette

    other = tmp_path / "other.db"
    query(other, "create table runs (run_id text)")
    plain = Datasette(files=[str(other)])
    database, run_page = fetch(plain, "/other.json", "/-/runlog/run/x")
    assert database.json()["queries"] == []
    assert run_page.status_code == 404


# -- metadata ------------------------------------------------------------------


def test_every_table_and_view_has_a_title_and_description(index_path):
    from runlog.web.metadata import TABLES

    names = {row[0] for row in query(index_path, "select name from sqlite_master where type in ('table', 'view')")}
    meta = table_metadata()
    assert names <= set(meta) == set(TABLES)
    for name in names:
        columns = {row[1] for row in query(index_path, f"pragma table_info([{name}])")}
        title, description, described, _ = TABLES[name]
        assert meta[name]["title"] == title and escape(description) in meta[name]["description_html"]
        assert set(described) <= columns, name


@pytest.mark.parametrize(
    "table, facets",
    [("runs", ["tag", "status"]), ("steps", ["status", "step_type"]), ("metrics", [])],
)
def test_facets(ds, table, facets):
    data = fetch(ds, f"/runlog/{table}.json?_extra=facet_results").json()
    assert list(data["facet_results"]) == facets


def test_table_page_shows_descriptions(ds):
    html = fetch(ds, "/runlog/runs").text
    assert "One row per pipeline run found in the store." in html
    assert "Run tag (the experiment name in MLflow)." in html


# -- stored queries ------------------------------------------------------------


def run_query(ds, name, **params):
    response = fetch(ds, f"/runlog/{name}.json", params={"_shape": "array", **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_stored_queries_are_the_named_queries(ds):
    from runlog.index.queries import NAMED_QUERIES

    listed = {q["name"]: q for q in fetch(ds, "/runlog.json").json()["queries"]}
    assert list(listed) == list(NAMED_QUERIES)
    for name, named in NAMED_QUERIES.items():
        assert listed[name]["sql"] == named.sql
        assert listed[name]["title"] == named.title


def test_query_metric_history(ds):
    rows = run_query(ds, "metric_history", run_id="case2-metrics", key="loss_curve")
    assert [(r["step_name"], r["step"], r["value"], r["kind"]) for r in rows] == [
        ("train", 0, 0.9, "numeric"), ("train", 1, 0.61, "numeric"),
        ("train", 2, 0.42, "numeric"), ("train", 3, 0.33, "numeric"),
    ]


@pytest.mark.parametrize(
    "direction, expected",
    [
        ("desc", [("case2-metrics", "SUCCESS", 0.875), (FAILED_RUN, "FAIL", 0.5)]),
        ("asc", [(FAILED_RUN, "FAIL", 0.5), ("case2-metrics", "SUCCESS", 0.875)]),
        ("", [("case2-metrics", "SUCCESS", 0.875), (FAILED_RUN, "FAIL", 0.5)]),  # the form left blank
    ],
)
def test_query_leaderboard(ds, direction, expected):
    rows = run_query(ds, "leaderboard", key="accuracy", direction=direction)
    assert [(r["run_id"], r["status"], r["value"]) for r in rows] == expected


def test_query_runs_by_tag(ds):
    rows = run_query(ds, "runs_by_tag", tag="magnus-demo")
    assert [(r["run_id"], r["status"], r["steps"], r["failed_steps"]) for r in rows] == [
        ("magnus-env-metrics", "SUCCESS", 7, 0), ("magnus-env-metrics-chunked", "SUCCESS", 7, 0)]


def test_query_failed_steps(ds):
    assert run_query(ds, "failed_steps") == [
        {"run_id": FAILED_RUN, "tag": "exp-a", "step_name": "train", "step_type": "task",
         "message": "loss diverged", "attempts": 1}
    ]


def test_query_param_diff(ds):
    assert run_query(ds, "param_diff", run_a="case2-metrics", run_b=FAILED_RUN) == [
        {"name": "doubled_rows", "value_a": "200", "value_b": "100"}
    ]


def test_run_id_cells_link_to_the_run_page(ds):
    steps, failed = fetch(ds, "/runlog/steps?run_id=case1-simple", "/runlog/failed_steps")
    assert '<a href="/-/runlog/run/case1-simple">case1-simple</a>' in steps.text
    assert f'<a href="/-/runlog/run/{FAILED_RUN}">{FAILED_RUN}</a>' in failed.text


# -- run and compare pages -----------------------------------------------------


def series_counts(index_path, run_id) -> tuple[dict[str, int], set[str]]:
    """The run's series (numeric keys with more than one point, per run-level name: their
    finite points) and its values recorded once."""
    rows = query(index_path, "select name, key, step_name, count, kind from run_metrics where run_id = ?", [run_id])
    series, once = {}, set()
    for name, key, step_name, count, kind in rows:
        if count > 1 and kind in ("numeric", "mixed"):
            (finite,) = query(index_path, "select count(*) from metrics where run_id = ? and step_name = ? and key = ? "
                                          "and abs(value) < 9e999", [run_id, step_name, key])[0]
            series[name] = finite
        else:
            once.add(name)
    return series, once


def drawn(html: str) -> dict[str, int]:
    """line label -> points of its raw line, over every chart of a page."""
    return {label: len(points.split()) for label, points in re.findall(
        r'<g class="rl-series[^"]*" data-series="([^"]+)">\s*<polyline class="rl-raw" points="([^"]*)"', html)}


def test_every_run_page_draws_each_series_and_lists_each_value(ds, index_path):
    run_ids = [row[0] for row in query(index_path, "select run_id from runs order by run_id")]
    assert len(run_ids) == 7
    for run_id, response in zip(run_ids, fetch(ds, *[f"/-/runlog/run/{r}" for r in run_ids])):
        assert response.status_code == 200, run_id
        series, once = series_counts(index_path, run_id)
        assert drawn(response.text) == series, run_id
        values = re.search(r'<table class="[^"]*rl-values">(.*?)</table>', response.text, re.S)
        listed = set(re.findall(r"<tr><td>([^<]+)</td>", values.group(1))) if values else set()
        assert listed == once, run_id


def test_run_page_shows_curve_values_and_nan(ds):
    html = fetch(ds, f"/-/runlog/run/{FAILED_RUN}").text
    assert drawn(html) == {"loss_curve": 2}
    assert "1 point not drawn (NaN or infinite)" in html
    assert '<title>loss_curve, step 1: 0.95</title>' in html
    assert '<span class="rl-status rl-fail">FAIL</span>' in html
    assert '<div class="rl-message">loss diverged</div>' in html


def test_run_page_step_tree_nests_branches(ds):
    html = fetch(ds, "/-/runlog/run/case4-branches-chunked").text
    labels = re.findall(r'<span class="rl-(?:step|branch-name)" title="([^"]+)"', html)
    assert labels == [
        "parallel_step",
        "parallel_step.branch1", "parallel_step.branch1.score a", "parallel_step.branch1.echo a",
        "parallel_step.branch1.success",
        "parallel_step.branch2", "parallel_step.branch2.score b", "parallel_step.branch2.success",
        "map_step",
        "map_step.1", "map_step.1.inner", "map_step.1.success",
        "map_step.2", "map_step.2.inner", "map_step.2.success",
        "map_step.3", "map_step.3.inner", "map_step.3.success",
        "collect", "success",
    ]
    # chunk_score is one key tracked once in each of three map branches: three values
    assert re.findall(r"<tr><td>([^<]*chunk_score)</td>", html) == [
        "chunk_score", "map_step.2.inner/chunk_score", "map_step.3.inner/chunk_score"]


def test_run_page_unknown_run_is_404(ds):
    response = fetch(ds, "/-/runlog/run/no-such-run")
    assert response.status_code == 404
    assert "no run &#39;no-such-run&#39; in runlog" in response.text


def test_run_id_with_spaces_and_unicode(tmp_path, fixture_store):
    run = json.loads((fixture_store / "case1-simple.json").read_text())
    run["run_id"] = "naïve run #1"
    (fixture_store / "naive.json").write_text(json.dumps(run))
    db = tmp_path / "runlog.db"
    ingest([fixture_store], db)
    datasette = make_datasette(db)
    summary, page = fetch(datasette, "/runlog/run_summary", "/-/runlog/run/na%C3%AFve%20run%20%231")
    assert '<a href="/-/runlog/run/na%C3%AFve%20run%20%231">naïve run #1</a>' in summary.text
    assert page.status_code == 200
    assert "<h1>Run naïve run #1" in page.text


def test_compare_page_draws_one_series_per_run(ds):
    html = fetch(ds, f"/-/runlog/compare?metric=loss_curve&run=case2-metrics&run={FAILED_RUN}").text
    assert drawn(html) == {"case2-metrics": 4, FAILED_RUN: 2}


def test_compare_page_by_metric_takes_the_runs_that_have_it(ds):
    html = fetch(ds, "/-/runlog/compare?metric=loss_curve").text
    assert sorted(drawn(html)) == sorted(["case2-metrics", FAILED_RUN])


def test_pages_use_only_local_scripts_and_styles(ds):
    html = fetch(ds, "/-/runlog/run/case2-metrics").text
    assets = re.findall(r'<(?:script[^>]*src|link[^>]*href)="([^"]+)"', html)
    assert assets and all(url.startswith("/") for url in assets), assets
    css, js = fetch(ds, "/-/runlog/static/runlog.css", "/-/runlog/static/runlog.js")
    assert css.status_code == js.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


# -- read-only -----------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nothing_through_the_web_changes_the_index(ds, index_path):
    before = sha256(index_path)
    delete = "delete from runs"
    responses = [
        *fetch(ds, "/runlog/runs/-/insert", "/runlog/-/create", "/runlog", "/runlog/failed_steps",
               method="post", data={"sql": delete, "rows": "[]"}),
        fetch(ds, "/runlog.json", params={"sql": delete}),
    ]
    assert [r.status_code for r in responses] == [405, 405, 405, 405, 400]
    assert responses[-1].json()["error"] == "Statement must be a SELECT"

    async def write_directly():
        return await ds.get_database("runlog").execute_write(delete)

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        asyncio.run(write_directly())
    assert query(index_path, "select count(*) from runs") == [(7,)]
    assert sha256(index_path) == before


def test_runs_ingested_while_serving_show_up(ds, index_path, fixture_store, tmp_path):
    before = fetch(ds, "/-/runlog/run/late-run")
    run = json.loads((fixture_store / "case1-simple.json").read_text())
    run["run_id"] = "late-run"
    late = tmp_path / "late"
    late.mkdir()
    (late / "late-run.json").write_text(json.dumps(run))
    assert ingest([late], index_path).ingested == 1
    after = fetch(ds, "/-/runlog/run/late-run")
    assert (before.status_code, after.status_code) == (404, 200)


# -- serve ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "no index at {path}: build it with `runlog ingest STORE --db {path}` "
                    "(STORE: a run-log folder such as .run_log_store, or a URL)"),
        ("not-sqlite", "cannot open index {path}: file is not a database"),
        ("other-sqlite", "{path} is not a runlog index (it has no runlog tables): point --db at an index "
                         "that `runlog ingest` built"),
    ],
)
def test_serve_refuses_what_is_not_an_index(tmp_path, setup, message):
    path = tmp_path / "x.db"
    if setup == "not-sqlite":
        path.write_text("hello")
    elif setup == "other-sqlite":
        query(path, "create table t (x)")
    message = message.format(path=path)
    with pytest.raises(RunlogError) as info:
        make_datasette(path)
    assert str(info.value) == message
    result = CliRunner().invoke(cli, ["serve", "--db", str(path)])
    assert result.exit_code == (1 if setup == "not-sqlite" else 2)  # 2: --db points at no index
    assert result.output == f"Error: {message}\n"
    assert "Traceback" not in result.output


def test_serve_refuses_a_port_in_use(index_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--db", str(index_path), "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == f"Error: cannot listen on 127.0.0.1:{port} (Address already in use): pick another --port\n"


def test_serve_help_has_an_example():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "runlog serve --db runlog.db --port 8001 --open" in result.output
    assert "[default: 127.0.0.1]" in result.output


# -- pieces --------------------------------------------------------------------


def series(points) -> Series:
    finite = [(x, y) for x, y in points if y is not None and math.isfinite(y)]
    return Series(finite, [(x, y, 1) for x, y in finite], skipped=len(points) - len(finite))


@pytest.mark.parametrize(
    "lines, drawn_points, logy",
    [
        ([[(0, 1.0)]], 1, False),
        ([[(0, 2.0), (1, 2.0), (2, 2.0)]], 3, False),
        ([[(0, -5.0), (10, 5.0)], [(3, 0.0)]], 3, False),
        ([[(0, 1e-9), (3, 3e-9), (5, 1e3)]], 3, True),
        ([[(0, -1.0), (1, 0.0), (2, 10.0)]], 1, True),  # <= 0 is not drawn on a log scale
    ],
)
def test_line_chart_geometry(lines, drawn_points, logy):
    chart = line_chart("k", [Line(str(i), series(points)) for i, points in enumerate(lines)], logy=logy)
    box = chart["box"]
    points = [tuple(map(float, p.split(","))) for line in chart["lines"] for p in line["raw"].split()]
    assert len(points) == drawn_points
    assert chart["hidden"] == sum(len(p) for p in lines) - drawn_points
    for x, y in points:
        assert box["left"] <= x <= box["right"] and box["top"] <= y <= box["bottom"]
    for tick in chart["y_ticks"]:
        assert box["top"] - 0.01 <= tick["pos"] <= box["bottom"] + 0.01


def test_line_chart_puts_lower_values_lower_and_steps_left_to_right():
    chart = line_chart("loss", [Line("train", series([(0, 0.9), (1, 0.5), (2, 0.2)]))])
    points = [tuple(map(float, p.split(","))) for p in chart["lines"][0]["raw"].split()]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    assert xs == sorted(xs) and ys == sorted(ys)  # lower values sit lower on screen (larger y)
    assert [t["text"] for t in chart["x_ticks"]] == ["0", "1", "2"]
    assert len(chart["lines"][0]["markers"]) == 3  # a short exact series gets a marker per point


def test_step_tree_keeps_a_branch_without_its_step():
    steps = [{"step_name": "a", "branch": ""}, {"step_name": "gone.b1.x", "branch": "gone.b1"}]
    tree = step_tree(steps, {"a": 2})
    assert [n["step_name"] for n in tree] == ["a", "(branches without their step)"]
    assert tree[0]["attempts"] == 2
    assert tree[1]["branches"][0]["steps"][0]["step_name"] == "gone.b1.x"
