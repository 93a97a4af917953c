"""runlog from Python (``runlog.open``): the same rows as the CLI, over an index and over a
lake built from the same store; metric histories with exactly the points of the index;
frames with the types of their values; names that match nothing as ValueErrors with the
closest names; nothing ever written; one Index shared by threads; the docstrings' examples
run (docs/notebooks.md's run in tests/test_docs.py)."""

from __future__ import annotations

import doctest
import json
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import runlog
from runlog import RunLogStore
from runlog.cli import cli
from runlog.errors import MissingExtra, RunlogError, RunNotFound, UnknownName, UsageProblem
from runlog.index import IndexReader, ingest
from runlog.index.tiles import read_series
from runlog.values import TIME_COLUMNS, json_safe

from conftest import REPO, copy_fixture_runs

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LONG_STEPS = 3000


def needs(module: str):
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install the extra that brings it)")


def write_long_run(store: Path) -> None:
    """A run whose ``long`` curve has 3,000 steps (so ingest keeps tiles of it) and one spike."""
    curve = {str(step): round(1.0 / (1 + step / 300), 6) for step in range(LONG_STEPS)}
    curve["1234"] = 9.5
    attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2026-12-01 08:00:00.000000",
               "end_time": "2026-12-01 08:30:00.250000"}
    run = {"run_id": "long-run", "tag": "long", "status": "SUCCESS", "steps": {"train": {
        "name": "train", "internal_name": "train", "status": "SUCCESS", "step_type": "task", "attempts": [attempt],
        "user_defined_metrics": {"long": curve}}}}
    (store / "long-run.json").write_text(json.dumps(run))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The docs' runs (the six real ones and the sweep of examples/sweep.py) and a long
    curve, in a store and its index."""
    root = tmp_path_factory.mktemp("api")
    store = copy_fixture_runs(root / ".run_log_store", sweep=True)
    write_long_run(store)
    assert ingest([store], root / "runlog.db").failed == 0
    return root


@pytest.fixture(scope="module")
def index(built):
    with runlog.open(built / "runlog.db") as opened:
        yield opened


@pytest.fixture(scope="module")
def lake(built):
    needs("duckdb")
    needs("pyarrow")
    from runlog.lake import build_lake

    assert build_lake([built / ".run_log_store"], built / "lake").failed == 0
    with runlog.open(built / "lake") as opened:
        yield opened


# -- runs: the CLI's rows ---------------------------------------------------------------

RUNS_CALLS = [
    dict(metrics=["min:loss"], params=["lr"], where="param:lr in (0.1, 0.01)", sort=["min:loss"], limit=5),
    dict(),
    dict(metrics=["loss", "argmin:loss", "count:accuracy"], params=["batch", "optimizer"],
         sort=["-param:batch", "argmin:loss"], tag="sweep"),
    dict(metrics=["loss_curve", "converged", "max:accuracy"], params=["data_file"], status="success",
         sort=["-start_time"]),
]


def cli_args(call: dict) -> list[str]:
    args = []
    for option, key in (("--metric", "metrics"), ("--param", "params"), ("--sort", "sort")):
        for value in call.get(key, []):
            args += [option, value]
    for option in ("where", "limit", "tag", "status"):
        if option in call:
            args += [f"--{option}", str(call[option])]
    return args


def cli_rows(db: Path, *args) -> list[dict]:
    result = CliRunner().invoke(cli, [*args, "--format", "json", "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def as_cli(row: dict) -> dict:
    """An API row as the CLI's JSON has it: times as the index's text, parsed back; the rest JSON-safe."""
    return {k: v if k in TIME_COLUMNS else json_safe(v) for k, v in row.items()}


def from_cli(row: dict) -> dict:
    return {k: (None if v is None else datetime.fromisoformat(v).replace(tzinfo=timezone.utc))
            if k in TIME_COLUMNS else v for k, v in row.items()}


@pytest.mark.parametrize("call", RUNS_CALLS, ids=range(len(RUNS_CALLS)))
def test_runs_gives_the_rows_of_runlog_runs_in_order(built, index, call):
    expected = [from_cli(row) for row in cli_rows(built / "runlog.db", "runs", *cli_args(call))]
    result = index.runs(**call)
    assert [as_cli(row) for row in result] == expected
    assert result.columns == (list(expected[0]) if expected else result.columns)
    assert len(result) == len(expected) > 0
    pd = needs("pandas")
    frame = result.to_pandas()
    assert list(frame["run_id"]) == [row["run_id"] for row in expected]
    assert list(frame.columns) == result.columns and isinstance(frame, pd.DataFrame)


def test_the_issues_example_in_pandas(index):
    needs("pandas")
    frame = runlog.open(index.path).runs(metrics=["min:loss"], params=["lr"], where="param:lr in (0.1, 0.01)",
                                         sort=["min:loss"], limit=5).to_pandas()
    assert frame[["run_id", "param:lr", "min:loss"]].values.tolist() == [
        ["sweep-03", 0.01, 0.1685], ["sweep-04", 0.01, 0.2027], ["sweep-ensemble", 0.1, 0.2139],
        ["sweep-01", 0.1, 0.2188], ["sweep-02", 0.1, 0.2537]]


@pytest.mark.parametrize("call", RUNS_CALLS, ids=range(len(RUNS_CALLS)))
def test_a_lake_of_the_same_store_gives_the_same_runs(index, lake, call):
    pd = needs("pandas")
    assert list(lake.runs(**call)) == list(index.runs(**call))
    pd.testing.assert_frame_equal(lake.runs(**call).to_pandas(), index.runs(**call).to_pandas())


def test_a_lake_answers_every_method_as_the_index(index, lake):
    pd = needs("pandas")
    asked = [lambda i: i.history(["loss", "accuracy", "env_loss"]), lambda i: i.history("long", max_points=100),
             lambda i: i.history(["loss", "long"], steps=(2, 1500), max_points=40),
             lambda i: i.summaries(), lambda i: i.keys(), lambda i: i.keys(like="%loss%"),
             lambda i: i.compare(["sweep-01", "sweep-ensemble", "legacy-track-this"]),
             lambda i: i.sql("select run_id, status from runs where tag = :tag order by run_id", {"tag": "sweep"})]
    for ask in asked:
        pd.testing.assert_frame_equal(ask(lake).to_pandas(), ask(index).to_pandas())
        assert list(ask(lake)) == list(ask(index))
    assert lake.run("sweep-03") == index.run("sweep-03")


def test_keys_and_compare_give_the_rows_of_their_commands(built, index):
    db = built / "runlog.db"
    assert [json_safe(row) for row in index.keys()] == cli_rows(db, "keys")
    compared = index.compare(["sweep-01", "sweep-02"], params=["lr", "batch"], metrics=["min:loss", "loss"])
    assert list(compared) == cli_rows(db, "compare", "sweep-01", "sweep-02", "--param", "lr", "--param", "batch",
                                      "--metric", "min:loss", "--metric", "loss")
    # a run's column of numbers and text is text, numbers written as Python writes them
    mixed = index.compare(["sweep-01", "sweep-02"], params=["lr", "optimizer"])
    assert [(row["spec"], row["sweep-01"]) for row in mixed][:2] == [("param:lr", "0.1"), ("param:optimizer", "sgd")]


def test_summaries_are_the_run_metrics_rows(built, index):
    conn = sqlite3.connect(built / "runlog.db")
    expected = conn.execute("SELECT n.run_id, n.name, n.count, n.first, n.last, n.min, n.max, n.mean, n.argmin, "
                            "n.argmax FROM run_metrics n JOIN runs r ON r.run_id = n.run_id WHERE n.name IN "
                            "('accuracy', 'loss') AND r.tag = 'sweep' ORDER BY r.start_time, r.run_id").fetchall()
    conn.close()
    got = index.summaries(["accuracy", "loss"], where="tag = 'sweep'")
    columns = ["run_id", "metric", "count", "first", "last", "min", "max", "mean", "argmin", "argmax"]
    rows = [tuple(row[c] for c in columns) for row in got]
    assert sorted(rows) == sorted(expected) and len(rows) == 13
    assert [row[:2] for row in rows[:4]] == [("sweep-01", "accuracy"), ("sweep-01", "loss"), ("sweep-02", "accuracy"),
                                             ("sweep-02", "loss")]
    assert [row["metric"] for row in index.summaries(["loss", "accuracy"], runs="sweep-01")] == ["loss", "accuracy"]


# -- history -----------------------------------------------------------------------------

POINTS_SQL = """SELECT n.run_id, n.name, m.step, m.value, m.timestamp_ms
FROM run_metrics n JOIN metrics m ON m.run_id = n.run_id AND m.step_name = n.step_name AND m.key = n.key
WHERE n.name IN ({names})"""


def points_of(db: Path, names: list[str]) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(POINTS_SQL.format(names=", ".join("?" * len(names))), names).fetchall()
    finally:
        conn.close()


def as_tuples(frame) -> list[tuple]:
    return [(run_id, metric, step, value, None if time is None else (time - EPOCH) // timedelta(milliseconds=1))
            for run_id, metric, step, value, time in frame.iter_rows()]


def test_history_has_exactly_the_points_of_the_metrics_table(built, index):
    pl = needs("polars")
    names = ["loss", "accuracy", "env_loss", "long", "search.lr1.train/loss", "fit.b2.train/loss", "loss_curve"]
    names = [name for name in names if name in {row["name"] for row in index.keys()}]
    frame = index.history(names).to_polars()
    expected = points_of(built / "runlog.db", names)
    got = as_tuples(frame)
    assert len(got) == len(expected) > LONG_STEPS
    assert sorted(got, key=lambda p: p[:3]) == sorted(expected, key=lambda p: p[:3])
    assert frame.schema == pl.Schema({"run_id": pl.String, "metric": pl.String, "step": pl.Int64,
                                      "value": pl.Float64, "time": pl.Datetime("ms", "UTC")})
    # by run (start time, then id), then metric as asked, then step
    runs = [row["run_id"] for row in index.runs()]
    order = [(runs.index(run_id), names.index(metric), step) for run_id, metric, step, _, _ in got]
    assert order == sorted(order)


def test_history_of_series_with_gaps_and_times_of_their_own(built, tmp_path):
    """Series whose steps have gaps, or whose points have different times, are read point by point."""
    db = tmp_path / "runlog.db"
    shutil.copy2(built / "runlog.db", db)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE metrics SET timestamp_ms = timestamp_ms + step WHERE run_id = 'sweep-02' AND key = 'loss'")
    conn.execute("UPDATE run_metrics SET timestamps = 10 WHERE run_id = 'sweep-02' AND name = 'loss'")
    conn.execute("DELETE FROM metrics WHERE run_id = 'sweep-04' AND key = 'loss' AND step IN (3, 4)")
    conn.execute("UPDATE run_metrics SET count = 8 WHERE run_id = 'sweep-04' AND name = 'loss'")
    conn.commit()
    conn.close()
    with runlog.open(db) as index:
        got = [tuple(row.values()) for row in index.history("loss", runs=["sweep-02", "sweep-04"])]
    expected = [p for p in points_of(db, ["loss"]) if p[0] in ("sweep-02", "sweep-04")]
    assert [(r, m, s, v, (t - EPOCH) // timedelta(milliseconds=1)) for r, m, s, v, t in got] == sorted(expected)
    assert [p[2] for p in got if p[0] == "sweep-04"] == [0, 1, 2, 5, 6, 7, 8, 9]
    assert len({p[4] for p in got if p[0] == "sweep-02"}) == 10


def test_history_of_chosen_runs_and_steps(index):
    rows = list(index.history(["accuracy", "loss"], runs=["sweep-02", "sweep-01"], steps=(3, 5)))
    assert [(r["run_id"], r["metric"], r["step"]) for r in rows] == [
        (run_id, metric, step) for run_id in ("sweep-02", "sweep-01") for metric in ("accuracy", "loss")
        for step in (3, 4, 5)]
    kept = {row["run_id"] for row in index.history("loss", where="param:lr = 0.001")}
    assert kept == {"sweep-05", "sweep-06"}
    assert {row["run_id"] for row in index.history("loss", runs=["sweep-05", "sweep-01"], where="param:lr = 0.001")
            } == {"sweep-05"}
    assert len(index.history("loss", runs=[])) == 0


def test_max_points_draws_each_series_as_the_charts_do(built, index):
    capped = list(index.history("long", max_points=100))
    with IndexReader.open(built / "runlog.db") as reader:
        drawn = read_series(reader.conn, "long-run", "train", "long", 50).points
        zoomed = read_series(reader.conn, "long-run", "train", "long", 20, (1000, 1999)).points
    assert [(row["step"], row["value"]) for row in capped] == drawn
    assert len(capped) <= 100 and max(row["value"] for row in capped) == 9.5
    assert {row["time"] for row in capped} == {datetime(2026, 12, 1, 8, 30, 0, 250000, tzinfo=timezone.utc)}
    assert [(row["step"], row["value"]) for row in index.history("long", steps=(1000, 1999), max_points=41)] == zoomed
    # a series no longer than max_points comes whole
    assert list(index.history("loss", runs="sweep-01", max_points=10)) == list(index.history("loss", runs="sweep-01"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(metrics=[]), "history needs one metric name or more, e.g. metrics=['loss']"),
    (dict(metrics="loss", max_points=1), "max_points=1: give a number of points per series, 2 or more"),
    (dict(metrics="loss", steps=(3,)), "steps=(3,): give (first, last), two step numbers (both included)"),
])
def test_history_refuses_what_it_cannot_do(index, kwargs, message):
    with pytest.raises(UsageProblem) as caught:
        index.history(**kwargs)
    assert str(caught.value) == message


# -- types ------------------------------------------------------------------------------


def test_frames_have_the_types_of_their_values(index):
    pd, pl, pa = needs("pandas"), needs("polars"), needs("pyarrow")
    result = index.runs(metrics=["min:loss", "argmin:loss", "converged"], params=["lr", "batch", "optimizer"],
                        tag="sweep")
    frame = result.to_pandas()
    assert {c: str(t) for c, t in frame.dtypes.items() if c not in ("run_id", "tag", "status", "param:optimizer",
                                                                      "converged")} == {
        "start_time": "datetime64[us, UTC]", "duration_s": "float64", "steps": "int64", "min:loss": "float64",
        "argmin:loss": "int64", "param:lr": "float64", "param:batch": "float64"}  # int64 with a null: float64
    assert frame["param:optimizer"].tolist()[:2] == ["sgd", "sgd"] and frame["converged"].isna().all()
    assert result.to_arrow().schema.field("param:batch").type == pa.int64()
    assert result.to_polars().schema["param:batch"] == pl.Int64
    assert result.to_polars()["start_time"][0] == datetime(2026, 11, 30, 9, 10, tzinfo=timezone.utc)
    assert result.to_arrow().to_pylist() == list(result)
    history = index.history("long")
    assert history.to_arrow().to_pylist() == list(history)
    assert history.to_pandas()["time"].dtype == "datetime64[ms, UTC]"
    # no rows: the columns whose type the names say keep it
    empty = index.runs(metrics=["min:loss", "argmin:loss"], where="min:loss < 0").to_polars()
    assert (empty.height, empty.schema["steps"], empty.schema["min:loss"], empty.schema["argmin:loss"]) == (
        0, pl.Int64, pl.Float64, pl.Int64)
    assert index.history("loss", runs=[]).to_polars().schema == index.history("loss", runs="sweep-01").to_polars().schema


@pytest.mark.parametrize("method, module, extra", [("to_pandas", "pandas", "pandas"),
                                                   ("to_polars", "polars", "polars"),
                                                   ("to_arrow", "pyarrow", "arrow")])
def test_a_missing_library_is_one_error_naming_its_extra(index, monkeypatch, method, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails, as when it is not installed
    with pytest.raises(MissingExtra) as caught:
        getattr(index.keys(), method)()
    assert str(caught.value) == str(MissingExtra(extra, module)) and f"[{extra}]'" in str(caught.value)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith(module) for requirement in extras[extra])


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("ask, message", [
    (lambda i: i.history("los"),
     "no metric 'los' in any run; did you mean loss, loss_curve? (`runlog keys` lists them)"),
    (lambda i: i.runs(metrics=["min:acuracy"]),
     "no metric 'acuracy' in any run; did you mean accuracy, env_accuracy? (`runlog keys` lists them)"),
    (lambda i: i.runs(params=["lrr"]), "no param 'lrr' in any run; did you mean param:lr? (`runlog keys` lists them)"),
    (lambda i: i.summaries("acuracy"),
     "no metric 'acuracy' in any run; did you mean accuracy, env_accuracy? (`runlog keys` lists them)"),
    (lambda i: i.history("loss", runs=["sweep-1"]), "no run 'sweep-1' in the index; did you mean sweep-01, sweep-06, "
                                                     "sweep-05?"),
    (lambda i: i.runs(tag="swep"), "no run has tag 'swep'; did you mean sweep?"),
    (lambda i: i.run("sweep-3"), "no run 'sweep-3' in the index; did you mean sweep-03, sweep-06, sweep-05?"),
])
def test_a_name_that_matches_nothing_is_a_value_error_naming_the_closest(index, ask, message):
    with pytest.raises(ValueError) as caught:
        ask(index)
    assert isinstance(caught.value, UnknownName) and str(caught.value) == message


@pytest.mark.parametrize("kwargs, message", [
    (dict(where="min:loss < < 0.5"), "--where 'min:loss < < 0.5': unexpected '<' at column 12; expected a name, a "
                                     "`quoted name`, a number or a 'quoted string'"),
    (dict(metrics=["min:"]), "metrics 'min:': unexpected end of expression; write NAME, SUMMARY:NAME (last first min "
                             "max mean count argmin argmax) or param:NAME, with a name that has spaces or odd "
                             "characters in `backquotes`"),
])
def test_a_syntax_error_says_where(index, kwargs, message):
    with pytest.raises(UsageProblem) as caught:
        index.runs(**kwargs)
    assert str(caught.value) == message


def test_sql_is_read_only_as_runlog_query(index):
    with pytest.raises(RunlogError) as caught:
        index.sql("delete from runs")
    assert str(caught.value) == ("refused: queries are read-only, and this statement would DELETE from runs "
                                 "(the index changes only through `runlog ingest`)")


# -- read-only, threads ------------------------------------------------------------------

EVERY_CALL = [
    lambda i: list(i.runs(metrics=["min:loss"], params=["lr"], where="param:lr in (0.1, 0.01)", sort=["min:loss"])),
    lambda i: list(i.history(["loss", "accuracy"])), lambda i: list(i.history("long", max_points=64)),
    lambda i: list(i.summaries()), lambda i: list(i.keys()), lambda i: list(i.compare(["sweep-01", "sweep-02"])),
    lambda i: list(i.sql("select count(*) as n from metrics")), lambda i: i.run("sweep-03"),
]


def test_no_call_changes_the_index_file_or_its_wal(built, tmp_path):
    db = tmp_path / "runlog.db"
    shutil.copy2(built / "runlog.db", db)
    writer = sqlite3.connect(db)  # an ingest's connection, its last write still in the WAL
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    writer.execute("INSERT INTO ingest_errors VALUES ('broken.json', 'not JSON', '2026-12-01 00:00:00')")
    writer.commit()
    files = [db, tmp_path / "runlog.db-wal"]
    before = [(path.read_bytes(), path.stat().st_mtime_ns) for path in files]
    assert len(before[1][0]) > 0
    with runlog.open(db) as index:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda call: call(index), EVERY_CALL * 2))
        for ask in (lambda: index.sql("delete from runs"), lambda: index.history("los"),
                    lambda: index.sql("pragma journal_mode = delete")):
            with pytest.raises(RunlogError):
                ask()
        assert list(index.sql("select error from ingest_errors")) == [{"error": "not JSON"}]  # read from the WAL
    assert [(path.read_bytes(), path.stat().st_mtime_ns) for path in files] == before
    writer.close()


@pytest.mark.parametrize("which", ["index", "lake"])
def test_one_index_serves_many_threads(request, which):
    opened = request.getfixturevalue(which)
    serial = [call(opened) for call in EVERY_CALL]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda call: call(opened), EVERY_CALL * 3))
    assert parallel == serial * 3


def test_a_closed_index_says_so(built):
    index = runlog.open(built / "runlog.db")
    index.close()
    with pytest.raises(RunlogError, match="was closed: open it again"):
        index.keys()


def test_open_refuses_what_is_not_an_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNLOG_DB", raising=False)
    with pytest.raises(UsageProblem, match="^no index at runlog.db: build it with `runlog ingest STORE"):
        runlog.open()
    (tmp_path / "other.db").write_text("")
    monkeypatch.setenv("RUNLOG_DB", str(tmp_path / "other.db"))
    with pytest.raises(RunlogError, match="is not a runlog index"):
        runlog.open()


# -- the run log -------------------------------------------------------------------------


def test_run_is_the_log_read_again_from_its_source(built, index):
    store = RunLogStore(built / ".run_log_store")
    for run_id in ("sweep-03", "case4-branches-chunked", "legacy-track-this"):
        assert index.run(run_id) == store.get_run(run_id)


def test_run_whose_source_is_gone_says_so(built, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(built / ".run_log_store", store)
    ingest([store], tmp_path / "runlog.db")
    (store / "sweep-03.json").unlink()
    with runlog.open(tmp_path / "runlog.db") as index, pytest.raises(RunNotFound) as caught:
        index.run("sweep-03")
    assert str(caught.value) == (f"run 'sweep-03' was read from {store / 'sweep-03.json'}, which is gone (moved or "
                                 "deleted since it was indexed): ingest its store again (--prune drops runs whose "
                                 "source is gone)")


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_run_from_object_storage(built, tmp_path, layout):
    needs("fsspec")  # memory:// URLs
    url = f"memory://runlog-api-{layout}-{tmp_path.name}"
    source = RunLogStore(built / ".run_log_store").get_run("sweep-01")
    RunLogStore(url, layout).create_run(source)
    ingest([url], tmp_path / "runlog.db")
    with runlog.open(tmp_path / "runlog.db") as index:
        assert index.run("sweep-01") == source


# -- examples ----------------------------------------------------------------------------


def test_every_method_has_an_example_that_runs(built, monkeypatch):
    from runlog.api import index as module

    monkeypatch.chdir(built)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with runlog.open("runlog.db") as opened:
        tests = doctest.DocTestFinder().find(module, globs={"index": opened, "runlog": runlog})
        for test in tests:
            runner.run(test)
    assert runner.failures == 0
    documented = {test.name.rsplit(".", 1)[-1] for test in tests if test.examples}
    assert documented >= {"open", "runs", "history", "summaries", "keys", "compare", "sql", "run"}


def test_import_runlog_imports_no_frame_library_nor_duckdb():
    done = subprocess.run([sys.executable, "-c", "import sys, runlog; print(sorted(m for m in ('pandas', 'polars', "
                           "'pyarrow', 'duckdb', 'numpy', 'lark', 'sqlite_utils') if m in sys.modules))"],
                          capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
