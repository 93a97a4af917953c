"""The Datasette plugin and ``runlog serve``, through Datasette's own test client.

The index is built by ``runlog.index.ingest`` from the real fixture runs plus
one run derived from them that failed (the fixtures hold only successes).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import math
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlog.cli import cli
from runlog.web.charts import svg_chart
from runlog.web.pages import step_tree
from runlog.errors import RunlogError
from runlog.index import ingest
from runlog.web import make_datasette, table_metadata

FAILED_RUN = "case2-diverged"


def add_failed_run(store: Path) -> None:
    """A copy of case2-metrics whose train step failed, with a NaN in its loss curve."""
    run = json.loads((store / "case2-metrics.json").read_text())
    run["run_id"] = FAILED_RUN
    run["status"] = "FAIL"
    run["parameters"]["doubled_rows"]["value"] = 100
    train = run["steps"]["train"]
    train["status"] = "FAIL"
    train["message"] = "loss diverged"
    attempt = train["attempts"][-1]
    attempt["status"] = "FAIL"
    attempt["message"] = "loss diverged"
    attempt["user_defined_metrics"]["loss_curve"]["value"] = [1.2, 0.95, float("nan")]
    attempt["user_defined_metrics"]["accuracy"]["value"] = 0.5
    (store / f"{FAILED_RUN}.json").write_text(json.dumps(run))


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
    (runlog,) = [p for p in plugins if p["name"] == "runlog"]
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
    assert plain.metadata("facets", database="runlog", table="metrics") == ["key", "kind"]


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
    names = {row[0] for row in query(index_path, "select name from sqlite_master where type in ('table', 'view')")}
    meta = table_metadata()
    assert names <= set(meta)
    for name in names:
        columns = {row[1] for row in query(index_path, f"pragma table_info([{name}])")}
        assert meta[name]["title"] and meta[name]["description"]
        assert set(meta[name]["columns"]) <= columns, name


@pytest.mark.parametrize(
    "table, facets",
    [("runs", ["tag", "status"]), ("metrics", ["key", "kind"])],
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


def numeric_points(index_path, run_id) -> dict[str, int]:
    """key -> how many finite numeric points the run has."""
    rows = query(index_path, "select key, value from metrics where run_id = ? and kind = 'numeric'", [run_id])
    counts: dict[str, int] = {}
    for key, value in rows:
        counts[key] = counts.get(key, 0) + (value is not None and math.isfinite(value))
    return counts


def charts(html: str) -> dict[str, tuple[int, int]]:
    """key -> (data-points of the chart, <circle> marks inside it)."""
    found = {}
    for match in re.finditer(r'<svg class="rl-chart" data-key="([^"]*)" data-points="(\d+)".*?</svg>', html, re.S):
        found[match.group(1)] = (int(match.group(2)), match.group(0).count('<circle class="rl-point"'))
    return found


def test_every_run_page_has_a_chart_per_numeric_metric(ds, index_path):
    run_ids = [row[0] for row in query(index_path, "select run_id from runs order by run_id")]
    assert len(run_ids) == 7
    for run_id, response in zip(run_ids, fetch(ds, *[f"/-/runlog/run/{r}" for r in run_ids])):
        assert response.status_code == 200, run_id
        expected = numeric_points(index_path, run_id)
        assert charts(response.text) == {key: (n, n) for key, n in expected.items()}, run_id


def test_run_page_shows_curve_values_and_nan(ds):
    html = fetch(ds, f"/-/runlog/run/{FAILED_RUN}").text
    assert charts(html)["loss_curve"] == (2, 2)
    assert "1 point not drawn (NaN or infinite)" in html
    assert 'data-step="1" data-value="0.95"' in html
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
    # chunk_score is one key tracked in three map branches: one chart, a series per branch step
    assert html.count('data-series="map_step.') == 3


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
    html = fetch(ds, f"/-/runlog/compare?key=loss_curve&run=case2-metrics&run={FAILED_RUN}").text
    assert charts(html) == {"loss_curve": (6, 6)}
    assert re.findall(r'data-series="([^"]+)"', html) == ["case2-metrics", FAILED_RUN]


def test_compare_page_defaults_to_the_leaderboard_runs(ds):
    html = fetch(ds, "/-/runlog/compare?key=answer").text
    assert sorted(re.findall(r'data-series="([^"]+)"', html)) == [
        "legacy-track-this", "magnus-env-metrics", "magnus-env-metrics-chunked"]


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


@pytest.mark.parametrize(
    "series, drawn, skipped",
    [
        ([("a", [(0, 1.0)])], 1, 0),
        ([("a", [(0, 2.0), (1, 2.0), (2, 2.0)])], 3, 0),
        ([("a", [(0, -5.0), (10, 5.0)]), ("b", [(3, 0.0)])], 3, 0),
        ([("a", [(0, float("inf")), (1, None), (2, 1e-9), (3, 3e-9)])], 2, 2),
        ([("a", [(0, float("nan"))])], 0, 1),
    ],
)
def test_svg_chart_geometry(series, drawn, skipped):
    chart = svg_chart("k", series)
    box = chart["box"]
    points = [p for s in chart["series"] for p in s["points"]]
    assert (chart["count"], chart["skipped"], len(points)) == (drawn, skipped, drawn)
    for p in points:
        assert box["left"] <= p["x"] <= box["right"] and box["top"] <= p["y"] <= box["bottom"]
    for tick in chart["y_ticks"]:
        assert box["top"] - 0.01 <= tick["pos"] <= box["bottom"] + 0.01


def test_svg_chart_orders_marks_by_step_and_value():
    chart = svg_chart("loss", [("train", [(0, 0.9), (1, 0.5), (2, 0.2)])])
    xs = [p["x"] for p in chart["series"][0]["points"]]
    ys = [p["y"] for p in chart["series"][0]["points"]]
    assert xs == sorted(xs) and ys == sorted(ys)  # lower values sit lower on screen (larger y)
    assert [t["text"] for t in chart["x_ticks"]] == ["0", "1", "2"]


def test_step_tree_keeps_a_branch_without_its_step():
    steps = [{"step_name": "a", "branch": ""}, {"step_name": "gone.b1.x", "branch": "gone.b1"}]
    tree = step_tree(steps, {"a": 2})
    assert [n["step_name"] for n in tree] == ["a", "(branches without their step)"]
    assert tree[0]["attempts"] == 2
    assert tree[1]["branches"][0]["steps"][0]["step_name"] == "gone.b1.x"
