"""The index commands through the CLI: ingest, query, runs, show, metrics, compare, schema."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlog.cli import cli
from runlog.cli.common import ProgressBar
from runlog.models import run_log_json_schema

from conftest import fixture_sources

REPO = Path(__file__).resolve().parent.parent


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """An index of every fixture run, made once for this module."""
    root = tmp_path_factory.mktemp("cli")
    store = root / "store"
    store.mkdir()
    for source in fixture_sources():
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, store / source.name)
    path = root / "runlog.db"
    result = invoke("ingest", store, "--db", path)
    assert result.exit_code == 0, result.output
    return path


def count_runs(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        conn.close()


# -- ingest ---------------------------------------------------------------------


def test_ingest_summary_exit_codes_and_error_lines(fixture_store, tmp_path):
    path = tmp_path / "x.db"
    first = invoke("ingest", fixture_store, "--db", path, "--quiet")
    assert (first.exit_code, first.stdout, first.stderr) == (
        0, "6 runs ingested, 0 unchanged, 0 failed, 0 pruned; 53 metric points written\n", "")
    (fixture_store / "broken.json").write_text('{"run_id": 1')
    second = invoke("ingest", fixture_store, "--db", path)
    assert second.exit_code == 1
    assert second.stdout == "0 runs ingested, 6 unchanged, 1 failed, 0 pruned; 0 metric points written\n"
    assert second.stderr == (
        f"error: {fixture_store / 'broken.json'}: is not JSON (line 1, column 13: "
        "Expecting ',' delimiter)\n"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_until_the_total_is_known_then_shows_it(monkeypatch):
    monkeypatch.setattr(ProgressBar, "REDRAW_SECONDS", 0)
    terminal = _Terminal()
    with ProgressBar("ingesting", quiet=False, file=terminal) as bar:
        for total in (None, None, 3):  # a bucket still being listed, then listed
            bar.step(total)
    frames = terminal.getvalue().split("\r")[1:]
    assert [f.split(",")[0].strip() for f in frames] == [
        "ingesting: 1 (listing...)", "ingesting: 2 (listing...)", "ingesting: 3 of 3", "ingesting: 3 of 3"]
    assert terminal.getvalue().endswith("\n") and all(f.rstrip().endswith("/s") for f in frames[1:])  # a rate
    assert all(len(later) >= len(earlier.rstrip()) for earlier, later in zip(frames, frames[1:]))  # overwrites it


def test_progress_is_a_bar_when_the_total_is_known_and_silent_when_quiet_or_piped():
    terminal = _Terminal()
    with ProgressBar("exporting", quiet=False, file=terminal) as bar:
        for _ in range(4):
            bar.step(4)
    assert "exporting" in terminal.getvalue() and "100%" in terminal.getvalue()
    for quiet, stream in ((True, _Terminal()), (False, io.StringIO())):
        with ProgressBar("ingesting", quiet=quiet, file=stream) as bar:
            bar.step(None)
        assert stream.getvalue() == ""


def test_ingest_strict_stops_with_one_line(fixture_store, tmp_path):
    (fixture_store / "a-broken.json").write_text("[")
    result = invoke("ingest", fixture_store, "--db", tmp_path / "x.db", "--strict")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {fixture_store / 'a-broken.json'}: is not JSON (line 1, column 2")
    assert result.stderr.count("\n") == 1


def test_ingest_defaults_to_run_log_store_and_runlog_db_env(fixture_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixture_store.rename(tmp_path / ".run_log_store")
    result = invoke("ingest", env={"RUNLOG_DB": str(tmp_path / "env.db")})
    assert result.exit_code == 0
    assert count_runs(tmp_path / "env.db") == 6
    missing = invoke("ingest", tmp_path / "nope", ".run_log_store", "--db", tmp_path / "env.db")
    assert missing.exit_code == 1
    assert missing.stderr == f"error: {tmp_path / 'nope'}: no such file or folder\n"


def test_ingest_of_nothing_that_exists_creates_no_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("ingest", env={"RUNLOG_DB": None})
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: nothing to ingest: .run_log_store does not exist (give a store folder, a run-log file, "
        "a chunked run folder or a URL)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_ingest_prune(fixture_store, tmp_path):
    path = tmp_path / "x.db"
    invoke("ingest", fixture_store, "--db", path)
    (fixture_store / "case1-simple.json").unlink()
    result = invoke("ingest", fixture_store, "--db", path, "--prune")
    assert result.stdout == "0 runs ingested, 5 unchanged, 0 failed, 1 pruned; 0 metric points written\n"
    assert count_runs(path) == 5


# -- query -------------------------------------------------------------------------


def test_query_formats(db):
    sql = "SELECT run_id, tag, duration_s FROM runs WHERE tag = :tag ORDER BY run_id"
    table = invoke("query", sql, "-p", "tag", "magnus-demo", "--db", db)
    assert table.stdout == (
        "run_id                      tag          duration_s\n"
        "--------------------------  -----------  ----------\n"
        "magnus-env-metrics          magnus-demo     0.33349\n"
        "magnus-env-metrics-chunked  magnus-demo    0.239733\n"
    )
    as_json = invoke("query", sql, "-p", "tag", "magnus-demo", "--db", db, "--format", "json")
    assert json.loads(as_json.stdout) == [
        {"run_id": "magnus-env-metrics", "tag": "magnus-demo", "duration_s": 0.33349},
        {"run_id": "magnus-env-metrics-chunked", "tag": "magnus-demo", "duration_s": 0.239733},
    ]
    as_csv = invoke("query", sql, "-p", "tag", "magnus-demo", "--db", db, "--format", "csv")
    assert as_csv.stdout == (
        "run_id,tag,duration_s\nmagnus-env-metrics,magnus-demo,0.33349\nmagnus-env-metrics-chunked,magnus-demo,0.239733\n")
    nl = invoke("query", sql, "-p", "tag", "magnus-demo", "--db", db, "--format", "nl")
    assert [json.loads(line)["run_id"] for line in nl.stdout.splitlines()] == [
        "magnus-env-metrics", "magnus-env-metrics-chunked"]


def test_query_json_renders_nan_and_infinity_as_strings(db):
    result = invoke("query", "SELECT 1e999 AS big, -1e999 AS small, 'NaN' AS nan", "--db", db, "--format", "json")
    assert json.loads(result.stdout) == [{"big": "Infinity", "small": "-Infinity", "nan": "NaN"}]


def test_named_queries(db):
    board = invoke("query", "--named", "leaderboard", "-p", "key", "loss", "--db", db, "--format", "json")
    assert [(r["run_id"], r["value"]) for r in json.loads(board.stdout)] == [("legacy-track-this", 0.2)]
    asc = invoke("query", "--named", "leaderboard", "-p", "key", "answer", "-p", "direction", "asc", "--db", db,
                 "--format", "csv")
    assert asc.stdout.splitlines()[1:] == [
        "legacy-track-this,legacy-demo,SUCCESS,2026-11-26 09:29:11.834054,emit api metrics,0,42",
        "magnus-env-metrics,magnus-demo,SUCCESS,2026-11-26 09:30:01.737691,shell,0,42",
        "magnus-env-metrics-chunked,magnus-demo,SUCCESS,2026-11-26 09:30:03.075233,shell,0,42",
    ]
    history = invoke("query", "--named", "metric_history", "-p", "run_id", "case2-metrics", "-p", "key", "loss_curve",
                     "--db", db, "--format", "json")
    assert [(r["step"], r["value"]) for r in json.loads(history.stdout)] == [(0, 0.9), (1, 0.61), (2, 0.42), (3, 0.33)]
    by_tag = invoke("query", "--named", "runs_by_tag", "-p", "tag", "exp-a", "--db", db, "--format", "json")
    assert [r["run_id"] for r in json.loads(by_tag.stdout)] == ["case2-metrics"]
    diff = invoke("query", "--named", "param_diff", "-p", "run_a", "case1-simple", "-p", "run_b", "case2-metrics",
                  "--db", db, "--format", "json")
    assert json.loads(diff.stdout)[0] == {
        "step_name": "", "direction": "run", "key": "accuracy", "value_a": None, "value_b": "0.875"}
    failed = invoke("query", "--named", "failed_steps", "--db", db)
    assert failed.stdout.endswith("(no rows)\n")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--named", "leaderboard"], "Error: named query 'leaderboard' needs -p key VALUE\n"),
        (["--named", "nope"], "Error: no named query 'nope': use one of failed_steps, leaderboard, "
                              "metric_history, param_diff, runs_by_tag\n"),
        (["SELECT :x"], "Error: SQL error: You did not supply a value for binding parameter :x.\n"),
        (["SELECT * FROM missing_table"], "Error: SQL error: no such table: missing_table\n"),
        (["SELECT 1; DELETE FROM runs"], "Error: SQL error: You can only execute one statement at a time.\n"),
    ],
)
def test_query_errors_are_one_line(db, args, message):
    result = invoke("query", *args, "--db", db)
    assert (result.exit_code, result.stderr) == (1, message)


def test_query_usage_errors(db):
    assert invoke("query", "--db", db).exit_code == 2
    assert invoke("query", "SELECT 1", "--named", "leaderboard", "--db", db).exit_code == 2


@pytest.mark.parametrize("command", [
    ["query", "SELECT 1"], ["query", "--named", "failed_steps"], ["runs"], ["show", "r1"], ["metrics", "r1"],
    ["compare", "r1", "r2"], ["serve"], ["export", "mlflow", "--all", "--dry-run"],
    ["export", "mlflow", "--all", "--tracking-uri", "http://127.0.0.1:9"],
], ids=lambda c: " ".join(c[:2]))
def test_read_commands_never_create_an_index(tmp_path, command):
    path = tmp_path / "none.db"
    result = invoke(*command, "--db", path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: no index at {path}: build it with `runlog ingest STORE --db {path}` "
        "(STORE: a run-log folder such as .run_log_store, or a URL)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_delete_is_refused_and_the_table_is_unchanged(db):
    result = invoke("query", "DELETE FROM runs", "--db", db)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: refused: queries are read-only, and this statement would DELETE from runs "
        "(the index changes only through `runlog ingest`)\n"
    )
    assert count_runs(db) == 6


@pytest.mark.parametrize(
    "sql, refused",
    [
        ("UPDATE runs SET tag = 'x'", "UPDATE runs"),
        ("INSERT INTO runs (run_id) VALUES ('x')", "INSERT into runs"),
        ("DROP TABLE metrics", "change the schema (CREATE, DROP or ALTER)"),
        ("CREATE TEMP TABLE t (x)", "change the schema (CREATE, DROP or ALTER)"),
        ("ATTACH '{tmp}/other.db' AS other", "attach the database {tmp}/other.db (ATTACH or VACUUM INTO)"),
        ("VACUUM INTO '{tmp}/copy.db'", "attach the database {tmp}/copy.db (ATTACH or VACUUM INTO)"),
        ("PRAGMA writable_schema = 1", "run PRAGMA writable_schema = 1"),
        ("PRAGMA journal_mode = DELETE", "run PRAGMA journal_mode = DELETE"),
        ("WITH x AS (SELECT 1) DELETE FROM metrics", "DELETE from metrics"),
    ],
)
def test_writes_are_refused(db, tmp_path, sql, refused):
    result = invoke("query", sql.format(tmp=tmp_path), "--db", db)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: refused: queries are read-only, and this statement would {refused.format(tmp=tmp_path)} "
        "(the index changes only through `runlog ingest`)\n"
    )
    assert count_runs(db) == 6
    assert list(tmp_path.iterdir()) == []


def test_read_pragmas_are_allowed(db):
    result = invoke("query", "PRAGMA table_info(sources)", "--db", db, "--format", "csv")
    assert [line.split(",")[1] for line in result.stdout.splitlines()[1:]] == [
        "path", "run_id", "size", "mtime_ns", "hash", "ingested_at"]


# -- runs, show, metrics, compare --------------------------------------------------------


def test_runs_with_metrics(db):
    result = invoke("runs", "--metric", "loss", "--metric", "answer", "--db", db)
    assert result.stdout == (
        "run_id                      tag          status   start_time                  duration_s  steps  loss  answer\n"
        "--------------------------  -----------  -------  --------------------------  ----------  -----  ----  ------\n"
        "case1-simple                study        SUCCESS  2026-11-26 09:27:35.361541    0.073682      3\n"
        "case2-metrics               exp-a        SUCCESS  2026-11-26 09:27:41.754843    0.085593      3\n"
        "case4-branches-chunked      branches     SUCCESS  2026-11-26 09:27:49.095961    0.537489     15\n"
        "legacy-track-this           legacy-demo  SUCCESS  2026-11-26 09:29:11.834054     0.46234      4   0.2      42\n"
        "magnus-env-metrics          magnus-demo  SUCCESS  2026-11-26 09:30:01.737691     0.33349      7            42\n"
        "magnus-env-metrics-chunked  magnus-demo  SUCCESS  2026-11-26 09:30:03.075233    0.239733      7            42\n"
    )


def test_runs_filters(db):
    by_tag = invoke("runs", "--tag", "magnus-demo", "--db", db, "--format", "json")
    assert [r["run_id"] for r in json.loads(by_tag.stdout)] == ["magnus-env-metrics", "magnus-env-metrics-chunked"]
    by_status = invoke("runs", "--status", "success", "--tag", "exp-a", "--metric", "converged", "--metric", "status",
                       "--db", db, "--format", "json")
    assert json.loads(by_status.stdout) == [{
        "run_id": "case2-metrics", "tag": "exp-a", "status": "SUCCESS", "start_time": "2026-11-26 09:27:41.754843",
        "duration_s": 0.085593, "steps": 3, "converged": "true", "metric:status": None,
    }]
    none = invoke("runs", "--status", "FAIL", "--db", db)
    assert none.stdout.endswith("(no rows)\n")


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--tag", "x' OR '1'='1"],
        ["runs", "--status", "SUCCESS' OR 1=1 --"],
        ["runs", "--tag", "exp-a", "--metric", "loss') ; DROP TABLE runs; --"],
        ["runs", "--tag", "exp-a", "--metric", 'm0" FROM runs --'],
        ["metrics", "case2-metrics", "--key", "x' OR 1=1 --"],
        ["metrics", "case2-metrics", "--step-name", "train' OR '1'='1"],
    ],
)
def test_sql_injection_through_options_is_harmless(db, args):
    result = invoke(*args, "--db", db, "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    if args[0] == "runs" and "--metric" in args:
        assert len(rows) == 1 and rows[0]["run_id"] == "case2-metrics" and rows[0][args[-1]] is None
    else:
        assert rows == []
    assert count_runs(db) == 6


@pytest.mark.parametrize("command", ["show", "metrics"])
def test_injection_through_run_ids_is_harmless(db, command):
    run_id = "x' OR '1'='1"
    result = invoke(command, run_id, "--db", db)
    assert (result.exit_code, result.stderr) == (1, f"Error: no run {run_id!r} in the index (see `runlog runs`)\n")
    compare = invoke("compare", "case1-simple", "case2-metrics'; DROP TABLE runs; --", "--db", db)
    assert compare.exit_code == 1
    assert count_runs(db) == 6


def test_show_tree(db):
    result = invoke("show", "magnus-env-metrics-chunked", "--db", db)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "run magnus-env-metrics-chunked  status SUCCESS  tag magnus-demo  format g1 chunked-fs"
    assert lines[3:19] == [
        "steps",
        "  shell  [task]  SUCCESS",
        "    attempt 1  SUCCESS  2026-11-26 09:30:03.075233  0.006s",
        "  parallel  [parallel]  SUCCESS",
        "    branch parallel.left",
        "      left_metrics  [task]  SUCCESS",
        "        attempt 1  SUCCESS  2026-11-26 09:30:03.158859  0.012s",
        "      success  [success]  SUCCESS",
        "        attempt 1  SUCCESS  2026-11-26 09:30:03.204704  0.001s",
        "    branch parallel.right",
        "      right_metrics  [task]  SUCCESS",
        "        attempt 1  SUCCESS  2026-11-26 09:30:03.250554  0.006s",
        "      success  [success]  SUCCESS",
        "        attempt 1  SUCCESS  2026-11-26 09:30:03.281915  0.001s",
        "  success  [success]  SUCCESS",
        "    attempt 1  SUCCESS  2026-11-26 09:30:03.313179  0.002s",
    ]
    assert lines[19] == "metrics"
    assert "  shell                         eggs.ham     text          2           0          1  universe" in lines


def test_show_json_and_csv(db):
    doc = json.loads(invoke("show", "case2-metrics", "--db", db, "--format", "json").stdout)
    assert doc["run"]["run_id"] == "case2-metrics"
    assert [s["step_name"] for s in doc["steps"]] == ["prepare", "train", "success"]
    assert doc["steps"][1]["attempts"][0]["attempt_number"] == 1
    assert {p["key"]: p["value"] for p in doc["run"]["parameters"]}["train_config"] == {"lr": 0.01, "layers": [64, 32]}
    assert [(m["key"], m["points"], m["last"]) for m in doc["metrics"] if m["key"] == "loss_curve"] == [("loss_curve", 4, 0.33)]
    steps = invoke("show", "case2-metrics", "--db", db, "--format", "csv")
    assert steps.stdout.splitlines()[0] == "run_id,step_name,name,branch,step_type,status,message,mock,position"
    assert len(steps.stdout.splitlines()) == 4


def test_metrics_history(db):
    result = invoke("metrics", "legacy-track-this", "--key", "env_loss", "--db", db)
    assert result.stdout == (
        "step_name         key       step  value  kind     timestamp_ms\n"
        "----------------  --------  ----  -----  -------  -------------\n"
        "emit env metrics  env_loss     0    0.8  numeric  1795685352140\n"
        "emit env metrics  env_loss     2    0.3  numeric  1795685352140\n"
    )
    by_step = invoke("metrics", "case4-branches-chunked", "--step-name", "map_step.2.inner", "--db", db, "--format", "json")
    assert [(r["key"], r["value"]) for r in json.loads(by_step.stdout)] == [("chunk_score", 0.2)]
    everything = invoke("metrics", "case2-metrics", "--db", db, "--format", "json")
    assert len(json.loads(everything.stdout)) == 10


def test_compare_marks_differences(db):
    result = invoke("compare", "legacy-track-this", "magnus-env-metrics", "--db", db, "--format", "json")
    rows = {(r["what"], r["step_name"], r["name"]): r for r in json.loads(result.stdout)}
    assert rows[("metric", "shell", "answer")] == {
        "what": "metric", "step_name": "shell", "name": "answer", "legacy-track-this": None,
        "magnus-env-metrics": 42.0, "differs": "*"}
    same = invoke("compare", "magnus-env-metrics", "magnus-env-metrics-chunked", "--db", db, "--format", "csv")
    lines = same.stdout.splitlines()
    assert lines[0] == "what,step_name,name,magnus-env-metrics,magnus-env-metrics-chunked,differs"
    assert "metric,shell,eggs.ham,universe,universe," in lines
    assert all(line.endswith(",") for line in lines[1:])
    assert invoke("compare", "case1-simple", "--db", db).exit_code == 2


# -- schema ----------------------------------------------------------------------------


def test_schema_commands():
    assert invoke("schema").stdout == (REPO / "schema" / "index.sql").read_text()
    assert invoke("schema", "--sql").stdout == (REPO / "schema" / "index.sql").read_text()
    assert json.loads(invoke("schema", "--json").stdout) == run_log_json_schema()
    assert invoke("schema", "--sql", "--json").exit_code == 2


@pytest.mark.parametrize("command", ["ingest", "query", "runs", "show", "metrics", "compare", "schema"])
def test_help_has_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert f"runlog {command}" in result.stdout.split("Example:")[1]
