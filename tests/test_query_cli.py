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

from conftest import copy_fixture_runs

REPO = Path(__file__).resolve().parent.parent


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """An index of every fixture run, made once for this module."""
    root = tmp_path_factory.mktemp("cli")
    path = root / "runlog.db"
    result = invoke("ingest", copy_fixture_runs(root / "store"), "--db", path)
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


def test_a_folder_of_stores_is_refused_naming_them_and_recursive(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    refused = invoke("ingest", "examples/real-logs", "--db", tmp_path / "x.db")
    assert (refused.exit_code, refused.stdout, refused.stderr) == (2, "", (
        "Error: examples/real-logs holds no run logs, only stores in folders below it: magnus-0.5-chunked-fs, "
        "magnus-0.5-file-system, v0.5-file-system, v0.50-chunked-fs, v0.50-file-system; ingest one of them, "
        "or all of them with --recursive\n"))
    assert not (tmp_path / "x.db").exists()
    every = invoke("ingest", "examples/real-logs", "--recursive", "--db", tmp_path / "x.db", "-q")
    assert (every.exit_code, every.stdout, every.stderr) == (
        0, "6 runs ingested, 0 unchanged, 0 failed, 0 pruned; 53 metric points written\n", "")
    # Each run's source is recorded as when its store is ingested on its own.
    stores = sorted(str(p) for p in (REPO / "examples" / "real-logs").iterdir() if p.is_dir())
    assert invoke("ingest", *stores, "--db", tmp_path / "one-by-one.db", "-q").exit_code == 0
    sql = "SELECT run_id, source_path, layout FROM runs ORDER BY 1"
    assert invoke("query", sql, "--format", "json", "--db", tmp_path / "x.db").stdout == invoke(
        "query", sql, "--format", "json", "--db", tmp_path / "one-by-one.db").stdout


def test_recursive_takes_the_folder_itself_and_every_store_below_but_not_run_or_hidden_folders(tmp_path, fixtures_dir):
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / ".hidden").mkdir()
    shutil.copy(fixtures_dir / "v0.50-file-system" / "case1-simple.json", top)
    shutil.copy(fixtures_dir / "v0.50-file-system" / "case2-metrics.json", top / "a" / "b")
    shutil.copy(fixtures_dir / "v0.5-file-system" / "legacy-track-this.json", top / ".hidden")
    shutil.copytree(fixtures_dir / "v0.50-chunked-fs" / "case4-branches-chunked", top / "a" / "case4-branches-chunked")
    (top / "a" / "case4-branches-chunked" / "inner").mkdir()  # inside a run folder: not a store
    shutil.copy(fixtures_dir / "v0.5-file-system" / "legacy-track-this.json", top / "a" / "case4-branches-chunked" / "inner")
    result = invoke("ingest", top, "--recursive", "--db", tmp_path / "x.db", "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "3 runs ingested, 0 unchanged, 0 failed, 0 pruned; 16 metric points written\n", "")
    listed = invoke("query", "SELECT source_path FROM runs ORDER BY 1", "--format", "csv", "--no-headers",
                    "--db", tmp_path / "x.db")
    assert listed.stdout.splitlines() == sorted(
        str(p) for p in (top / "a" / "b" / "case2-metrics.json", top / "a" / "case4-branches-chunked",
                         top / "case1-simple.json"))


def test_symlinks_out_of_the_store_and_loops_are_skipped_with_a_line_each(tmp_path, fixtures_dir):
    store = tmp_path / "store"
    store.mkdir()
    outside = tmp_path / "outside"
    shutil.copytree(fixtures_dir / "v0.50-file-system", outside)
    shutil.copy(outside / "case1-simple.json", store)
    (store / "out.json").symlink_to(outside / "case2-metrics.json")
    (store / "out-folder").symlink_to(outside)
    (store / "back").symlink_to(store)
    (store / "self").symlink_to(store / "self")
    (store / "note.txt").symlink_to(outside / "case2-metrics.json")  # not a run: no line
    result = invoke("ingest", store, "--db", tmp_path / "x.db", "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "1 run ingested, 0 unchanged, 0 failed, 0 pruned; 0 metric points written\n",
        f"skipped: {store / 'back'}: a symlink back to {store}: not followed (a loop)\n"
        f"skipped: {store / 'out-folder'}: a symlink out of the store (to {outside}): not followed\n"
        f"skipped: {store / 'out.json'}: a symlink out of the store (to {outside / 'case2-metrics.json'}): "
        "not followed\n"
        f"skipped: {store / 'self'}: a symlink loop: not followed\n")


def test_recursive_skips_symlinked_folders_out_of_the_folder_or_back_up_it_with_a_line_each(tmp_path, fixtures_dir):
    top, outside = tmp_path / "top", tmp_path / "outside"
    shutil.copytree(fixtures_dir / "v0.50-file-system", top / "runs")
    shutil.copytree(fixtures_dir / "v0.5-file-system", outside)
    (top / "group").mkdir()
    (top / "group" / "elsewhere").symlink_to(outside)
    (top / "group" / "up").symlink_to(top)
    (top / "group" / "again").symlink_to(top / "runs")  # inside: ingested once, from runs
    result = invoke("ingest", top, "--recursive", "--db", tmp_path / "x.db", "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "2 runs ingested, 0 unchanged, 0 failed, 0 pruned; 10 metric points written\n",
        f"skipped: {top / 'group' / 'elsewhere'}: a symlink out of {top} (to {outside}): not followed\n"
        f"skipped: {top / 'group' / 'up'}: a symlink back to {top}: not followed (a loop)\n")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_until_the_total_is_known_then_shows_it(monkeypatch):
    monkeypatch.setattr(ProgressBar, "MIN_INTERVAL", 0)
    terminal = _Terminal()
    with ProgressBar("ingesting", quiet=False, file=terminal) as bar:
        for total in (None, None):  # a bucket still being listed: a count and a rate
            bar.step(total)
        counting = terminal.getvalue()
        bar.step(3)  # listed: now a bar with the total and the time left
    assert "ingesting: 2run" in counting and "run/s" in counting and "%" not in counting
    shown = terminal.getvalue()[len(counting):]
    assert "3/3" in shown and "100%" in shown


def test_progress_is_a_bar_when_the_total_is_known_and_silent_when_quiet_or_piped():
    terminal = _Terminal()
    with ProgressBar("exporting", quiet=False, file=terminal) as bar:
        for _ in range(4):
            bar.step(4)
    assert "exporting" in terminal.getvalue() and "100%" in terminal.getvalue() and "4/4" in terminal.getvalue()
    for quiet, stream in ((True, _Terminal()), (False, io.StringIO())):
        with ProgressBar("ingesting", quiet=quiet, file=stream) as bar:
            bar.step(None)
            bar.write("a line")
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
    assert nl.stdout == (
        '{"run_id": "magnus-env-metrics", "tag": "magnus-demo", "duration_s": 0.33349}\n'
        '{"run_id": "magnus-env-metrics-chunked", "tag": "magnus-demo", "duration_s": 0.239733}\n')


def test_query_json_renders_nan_and_infinity_as_strings(db):
    result = invoke("query", "SELECT 1e999 AS big, -1e999 AS small, 'NaN' AS nan", "--db", db, "--format", "json")
    assert json.loads(result.stdout) == [{"big": "Infinity", "small": "-Infinity", "nan": "NaN"}]


def test_named_queries(db):
    board = invoke("query", "--named", "leaderboard", "-p", "key", "loss", "--db", db, "--format", "json")
    assert [(r["run_id"], r["value"]) for r in json.loads(board.stdout)] == [("legacy-track-this", 0.2)]
    asc = invoke("query", "--named", "leaderboard", "-p", "key", "answer", "-p", "direction", "min", "--db", db,
                 "--format", "csv")
    assert asc.stdout == (  # csv keeps every digit, and times as stored
        "run_id,tag,status,start_time,step_name,step,value\n"
        "legacy-track-this,legacy-demo,SUCCESS,2026-11-26 09:29:11.834054,emit api metrics,0,42.0\n"
        "magnus-env-metrics,magnus-demo,SUCCESS,2026-11-26 09:30:01.737691,shell,0,42.0\n"
        "magnus-env-metrics-chunked,magnus-demo,SUCCESS,2026-11-26 09:30:03.075233,shell,0,42.0\n")
    history = invoke("query", "--named", "metric_history", "-p", "run_id", "case2-metrics", "-p", "key", "loss_curve",
                     "--db", db, "--format", "json")
    assert [(r["name"], r["step"], r["value"]) for r in json.loads(history.stdout)] == [
        ("loss_curve", 0, 0.9), ("loss_curve", 1, 0.61), ("loss_curve", 2, 0.42), ("loss_curve", 3, 0.33)]
    by_tag = invoke("query", "--named", "runs_by_tag", "-p", "tag", "exp-a", "--db", db, "--format", "json")
    assert [r["run_id"] for r in json.loads(by_tag.stdout)] == ["case2-metrics"]
    diff = invoke("query", "--named", "param_diff", "-p", "run_a", "case1-simple", "-p", "run_b", "case2-metrics",
                  "--db", db, "--format", "json")
    assert json.loads(diff.stdout)[0] == {"name": "accuracy", "value_a": None, "value_b": "0.875"}
    failed = invoke("query", "--named", "failed_steps", "--db", db)
    assert failed.stdout.endswith("(no rows)\n")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--named", "leaderboard"], 2, "Error: named query 'leaderboard' needs -p key VALUE\n"),
        (["--named", "leaderbord"], 2, "Error: no named query 'leaderbord'; did you mean leaderboard? (one of "
                                       "failed_steps, leaderboard, metric_history, param_diff, runs_by_tag)\n"),
        (["--named", "leaderboard", "-p", "key", "los"], 2,
         "Error: no metric 'los' in any run; did you mean loss, loss_curve? (`runlog keys` lists them)\n"),
        (["--named", "leaderboard", "-p", "key", "loss", "-p", "direction", "sideways"], 2,
         "Error: direction 'sideways': use asc or desc (min and max mean the same)\n"),
        (["--named", "metric_history", "-p", "run_id", "case2-metric", "-p", "key", "loss_curve"], 2,
         "Error: no run 'case2-metric' in the index; did you mean case2-metrics, magnus-env-metrics?\n"),
        (["--named", "runs_by_tag", "-p", "tag", "exp_a"], 2, "Error: no run has tag 'exp_a'; did you mean exp-a?\n"),
        (["SELECT :x"], 1, "Error: SQL error: You did not supply a value for binding parameter :x.\n"),
        (["SELECT * FROM missing_table"], 1, "Error: SQL error: no such table: missing_table\n"),
        (["SELECT 1; DELETE FROM runs"], 1, "Error: SQL error: You can only execute one statement at a time.\n"),
    ],
)
def test_query_errors_are_one_line(db, args, code, message):
    result = invoke("query", *args, "--db", db)
    assert (result.exit_code, result.stderr) == (code, message)


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


# Every kind of statement the read-only authorizer refuses, with the reason it names.
@pytest.mark.parametrize(
    "sql, refused",
    [
        ("UPDATE runs SET tag = 'x'", "UPDATE runs"),
        ("INSERT INTO runs (run_id) VALUES ('x')", "INSERT into runs"),
        ("WITH x AS (SELECT 1) DELETE FROM metrics", "DELETE from metrics"),
        ("CREATE TABLE t (x)", "CREATE TABLE t"),
        ("CREATE TEMP TABLE t (x)", "CREATE TEMP TABLE t"),
        ("CREATE INDEX i ON runs (tag)", "CREATE INDEX i on runs"),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW v"),
        ("CREATE TEMP VIEW v AS SELECT 1", "CREATE TEMP VIEW v"),
        ("CREATE TRIGGER tr AFTER INSERT ON runs BEGIN SELECT 1; END", "CREATE TRIGGER tr on runs"),
        ("CREATE TEMP TRIGGER tr AFTER INSERT ON runs BEGIN SELECT 1; END", "CREATE TEMP TRIGGER tr on runs"),
        ("CREATE VIRTUAL TABLE x USING fts4(a)", "CREATE VIRTUAL TABLE x (module fts4)"),
        ("DROP TABLE metrics", "DROP TABLE metrics"),
        ("DROP VIEW run_summary", "DROP VIEW run_summary"),
        ("DROP INDEX runs_tag", "DROP INDEX runs_tag"),
        ("ALTER TABLE runs RENAME TO r2", "ALTER TABLE runs"),
        ("ALTER TABLE runs ADD COLUMN z", "ALTER TABLE runs"),
        ("REINDEX runs_tag", "REINDEX (it rebuilds the index runs_tag)"),
        ("ANALYZE", "ANALYZE (it writes statistics tables into the index)"),
        ("VACUUM", "VACUUM (it rewrites the whole file)"),
        ("VACUUM INTO '{tmp}/copy.db'", "attach the database {tmp}/copy.db (ATTACH or VACUUM INTO)"),
        ("ATTACH '{tmp}/other.db' AS other", "attach the database {tmp}/other.db (ATTACH or VACUUM INTO)"),
        ("DETACH other", "DETACH other"),
        ("PRAGMA writable_schema = 1", "run PRAGMA writable_schema = 1"),
        ("PRAGMA journal_mode = DELETE", "run PRAGMA journal_mode = DELETE"),
        ("PRAGMA user_version = 9", "run PRAGMA user_version = 9"),
        ("PRAGMA optimize", "run PRAGMA optimize"),
        ("SELECT load_extension('x')", "call load_extension()"),
    ],
)
def test_writes_are_refused(db, tmp_path, sql, refused):
    before = db.read_bytes()
    result = invoke("query", sql.format(tmp=tmp_path), "--db", db)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: refused: queries are read-only, and this statement would {refused.format(tmp=tmp_path)} "
        "(the index changes only through `runlog ingest`)\n"
    )
    assert count_runs(db) == 6
    assert db.read_bytes() == before
    assert list(tmp_path.iterdir()) == []


def test_read_pragmas_are_allowed(db):
    result = invoke("query", "PRAGMA table_info(sources)", "--db", db, "--format", "csv")
    assert [line.split(",")[1] for line in result.stdout.splitlines()[1:]] == [
        "path", "run_id", "size", "mtime_ns", "hash", "ingested_at"]


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT name FROM pragma_table_info('sources')", "name\npath\nrun_id\nsize\nmtime_ns\nhash\ningested_at\n"),
        ("SELECT name FROM pragma_index_list('runs') WHERE origin = 'c' ORDER BY name", "name\nruns_start_time\nruns_tag\n"),
        ("SELECT name FROM pragma_table_list WHERE name LIKE 'run%' ORDER BY name",
         "name\nrun_metrics\nrun_params\nrun_summary\nruns\n"),
        ("PRAGMA integrity_check", "integrity_check\nok\n"),
        ("PRAGMA integrity_check(runs)", "integrity_check\nok\n"),
        ("PRAGMA quick_check", "quick_check\nok\n"),
    ],
)
def test_reads_of_the_schema_are_allowed(db, sql, expected):
    result = invoke("query", sql, "--db", db, "--format", "csv")
    assert (result.exit_code, result.stdout) == (0, expected)


# -- runs, show, metrics, compare --------------------------------------------------------


def test_runs_with_metrics(db):
    result = invoke("runs", "--metric", "loss", "--metric", "answer", "--db", db)
    assert result.stdout == (  # a table for reading: times as ISO 8601 UTC, 7 significant digits
        "run_id                      tag          status   start_time                duration_s  steps  loss  answer\n"
        "--------------------------  -----------  -------  ------------------------  ----------  -----  ----  ------\n"
        "case1-simple                study        SUCCESS  2026-11-26T09:27:35.361Z    0.073682      3\n"
        "case2-metrics               exp-a        SUCCESS  2026-11-26T09:27:41.754Z    0.085593      3\n"
        "case4-branches-chunked      branches     SUCCESS  2026-11-26T09:27:49.095Z    0.537489     15\n"
        "legacy-track-this           legacy-demo  SUCCESS  2026-11-26T09:29:11.834Z     0.46234      4   0.2      42\n"
        "magnus-env-metrics          magnus-demo  SUCCESS  2026-11-26T09:30:01.737Z     0.33349      7            42\n"
        "magnus-env-metrics-chunked  magnus-demo  SUCCESS  2026-11-26T09:30:03.075Z    0.239733      7            42\n"
    )
    bare = invoke("runs", "--metric", "answer", "--sort", "-answer", "--limit", "1", "--format", "tsv",
                  "--no-headers", "--db", db)
    assert bare.stdout == "legacy-track-this\tlegacy-demo\tSUCCESS\t2026-11-26 09:29:11.834054\t0.46234\t4\t42.0\n"


def test_runs_filters(db):
    by_tag = invoke("runs", "--tag", "magnus-demo", "--db", db, "--format", "json")
    assert [r["run_id"] for r in json.loads(by_tag.stdout)] == ["magnus-env-metrics", "magnus-env-metrics-chunked"]
    by_status = invoke("runs", "--status", "success", "--tag", "exp-a", "--metric", "converged", "--metric", "status",
                       "--db", db, "--format", "json")
    assert json.loads(by_status.stdout) == [{
        "run_id": "case2-metrics", "tag": "exp-a", "status": "SUCCESS", "start_time": "2026-11-26 09:27:41.754843",
        "duration_s": 0.085593, "steps": 3, "converged": "true",
    }]
    none = invoke("runs", "--where", "status = 'FAIL'", "--db", db)
    assert none.stdout.endswith("(no rows)\n")


@pytest.mark.parametrize(
    "args, message",
    [
        (["runs", "--tag", "x' OR '1'='1"], "no run has tag \"x' OR '1'='1\""),
        (["runs", "--status", "SUCCESS' OR 1=1 --"], "no run has status \"SUCCESS' OR 1=1 --\""),
        (["runs", "--tag", "exp-a", "--metric", "loss') ; DROP TABLE runs; --"], "--metric \"loss') ; DROP"),
        (["runs", "--tag", "exp-a", "--metric", '`m0" FROM runs --`'], "no metric 'm0\" FROM runs --' in any run"),
        (["runs", "--where", "tag = 'x'' OR 1=1 --'"], None),
        (["metrics", "case2-metrics", "--key", "x' OR 1=1 --"], "no metric key \"x' OR 1=1 --\" in run"),
        (["metrics", "case2-metrics", "--step-name", "train' OR '1'='1"], "no step \"train' OR '1'='1\" in run"),
    ],
)
def test_sql_injection_through_options_is_harmless(db, args, message):
    result = invoke(*args, "--db", db, "--format", "json")
    if message is None:  # a value bound as it is: it matches nothing
        assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    else:  # a name that matches nothing: one line, exit 2
        assert result.exit_code == 2 and result.stderr.count("\n") == 1
        assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
    assert count_runs(db) == 6


@pytest.mark.parametrize("command", ["show", "metrics"])
def test_injection_through_run_ids_is_harmless(db, command):
    run_id = "x' OR '1'='1"
    result = invoke(command, run_id, "--db", db)
    assert (result.exit_code, result.stderr) == (2, f"Error: no run {run_id!r} in the index\n")
    compare = invoke("compare", "case1-simple", "case2-metrics'; DROP TABLE runs; --", "--db", db)
    assert compare.exit_code == 2
    assert compare.stderr.startswith("Error: no run \"case2-metrics'; DROP TABLE runs; --\" in the index")
    assert count_runs(db) == 6


def test_show_tree(db):
    result = invoke("show", "magnus-env-metrics-chunked", "--db", db)
    source = db.parent / "store" / "magnus-env-metrics-chunked"
    assert (result.exit_code, result.stdout) == (0, f"""\
run magnus-env-metrics-chunked  status SUCCESS  tag magnus-demo  format g1 chunked-fs
start 2026-11-26T09:30:03.075Z  end 2026-11-26T09:30:03.314Z  duration 0.240s
source {source}
steps
  shell  [task]  SUCCESS
    attempt 1  SUCCESS  2026-11-26T09:30:03.075Z  0.006s
  parallel  [parallel]  SUCCESS
    branch parallel.left
      left_metrics  [task]  SUCCESS
        attempt 1  SUCCESS  2026-11-26T09:30:03.158Z  0.012s
      success  [success]  SUCCESS
        attempt 1  SUCCESS  2026-11-26T09:30:03.204Z  0.001s
    branch parallel.right
      right_metrics  [task]  SUCCESS
        attempt 1  SUCCESS  2026-11-26T09:30:03.250Z  0.006s
      success  [success]  SUCCESS
        attempt 1  SUCCESS  2026-11-26T09:30:03.281Z  0.001s
  success  [success]  SUCCESS
    attempt 1  SUCCESS  2026-11-26T09:30:03.313Z  0.002s
metrics
  name         kind     points  last_step  last      min   argmin  max   argmax  mean
  -----------  -------  ------  ---------  --------  ----  ------  ----  ------  ----
  answer       numeric       1          0  42          42       0    42       0    42
  camelcase    numeric       1          0  1            1       0     1       0     1
  count        numeric       1          0  12          12       0    12       0    12
  eggs.ham     text          2          1  universe
  is_it_true   bool          1          0  true
  spam         text          2          1  hey
  left_score   numeric       1          0  0.5        0.5       0   0.5       0   0.5
  right_score  numeric       1          0  0.25      0.25       0  0.25       0  0.25
""")


def test_show_json_and_csv(db):
    doc = json.loads(invoke("show", "case2-metrics", "--db", db, "--format", "json").stdout)
    assert doc["run"]["run_id"] == "case2-metrics"
    assert [s["step_name"] for s in doc["steps"]] == ["prepare", "train", "success"]
    assert doc["steps"][1]["attempts"][0]["attempt_number"] == 1
    assert {p["key"]: p["value"] for p in doc["run"]["parameters"]}["train_config"] == {"lr": 0.01, "layers": [64, 32]}
    assert [(m["name"], m["points"], m["last"], m["min"], m["argmin"]) for m in doc["metrics"]
            if m["key"] == "loss_curve"] == [("loss_curve", 4, 0.33, 0.33, 3)]
    steps = invoke("show", "case2-metrics", "--db", db, "--format", "csv")
    assert steps.stdout == (
        "run_id,step_name,name,branch,step_type,status,message,mock,position\n"
        "case2-metrics,prepare,prepare,,task,SUCCESS,,0,0\n"
        "case2-metrics,train,train,,task,SUCCESS,,0,1\n"
        "case2-metrics,success,success,,success,SUCCESS,,0,2\n")


def test_metrics_history(db):
    result = invoke("metrics", "legacy-track-this", "--key", "env_loss", "--db", db)
    assert result.stdout == (
        "name      step_name         key       step  value  kind     timestamp_ms\n"
        "--------  ----------------  --------  ----  -----  -------  ------------------------\n"
        "env_loss  emit env metrics  env_loss     0    0.8  numeric  2026-11-26T09:29:12.140Z\n"
        "env_loss  emit env metrics  env_loss     2    0.3  numeric  2026-11-26T09:29:12.140Z\n"
    )
    raw = invoke("metrics", "legacy-track-this", "--key", "env_loss", "--format", "csv", "--db", db)
    assert raw.stdout == (
        "name,step_name,key,step,value,kind,timestamp_ms\n"
        "env_loss,emit env metrics,env_loss,0,0.8,numeric,1795685352140\n"
        "env_loss,emit env metrics,env_loss,2,0.3,numeric,1795685352140\n")
    by_step = invoke("metrics", "case4-branches-chunked", "--step-name", "map_step.2.inner", "--db", db, "--format", "json")
    assert [(r["name"], r["key"], r["value"]) for r in json.loads(by_step.stdout)] == [
        ("map_step.2.inner/chunk_score", "chunk_score", 0.2)]
    top = invoke("metrics", "case2-metrics", "--key", "loss_curve", "--sort", "-value", "--limit", "2", "--db", db,
                 "--format", "json")
    assert [(r["step"], r["value"]) for r in json.loads(top.stdout)] == [(0, 0.9), (1, 0.61)]
    assert len(json.loads(invoke("metrics", "case2-metrics", "--db", db, "--format", "json").stdout)) == 10


NUMBERS_UP = [("loss_curve", 3, "0.33"), ("loss_curve", 2, "0.42"), ("loss_curve", 1, "0.61"),
              ("eval_report.recall", 0, "0.7"), ("eval_report.precision", 0, "0.8"), ("accuracy", 0, "0.875"),
              ("loss_curve", 0, "0.9"), ("n_epochs", 0, "4.0")]
TEXT_UP = [("eval_report.labelName", 0, "positive"), ("converged", 0, "true")]


@pytest.mark.parametrize("sort, expected", [("value", NUMBERS_UP + TEXT_UP), ("-value", NUMBERS_UP[::-1] + TEXT_UP[::-1])])
def test_metrics_sort_puts_numbers_before_text_either_way(db, sort, expected):
    result = invoke("metrics", "case2-metrics", "--sort", sort, "--format", "csv", "--no-headers", "--db", db)
    kinds = {"positive": "text", "true": "bool"}
    assert result.stdout == "".join(f"{key},train,{key},{step},{value},{kinds.get(value, 'numeric')},1795685261802\n"
                                    for key, step, value in expected)


def test_compare_marks_differences(db):
    result = invoke("compare", "legacy-track-this", "magnus-env-metrics", "--db", db, "--format", "json")
    rows = {r["spec"]: r for r in json.loads(result.stdout)}
    assert rows["answer"] == {"spec": "answer", "legacy-track-this": 42.0, "magnus-env-metrics": 42.0, "differs": ""}
    assert rows["loss"] == {"spec": "loss", "legacy-track-this": 0.2, "magnus-env-metrics": None, "differs": "*"}
    same = invoke("compare", "magnus-env-metrics", "magnus-env-metrics-chunked", "--db", db, "--format", "csv")
    assert same.stdout == (
        "spec,magnus-env-metrics,magnus-env-metrics-chunked,differs\n"
        "answer,42.0,42.0,\ncamelcase,1.0,1.0,\ncount,12.0,12.0,\neggs.ham,universe,universe,\n"
        "is_it_true,true,true,\nspam,hey,hey,\nleft_score,0.5,0.5,\nright_score,0.25,0.25,\n")
    assert invoke("compare", "magnus-env-metrics", "magnus-env-metrics-chunked", "--only-diff", "--no-headers",
                  "--format", "csv", "--db", db).stdout == ""
    assert invoke("compare", "case1-simple", "--db", db).exit_code == 2


# -- schema ----------------------------------------------------------------------------


def test_schema_commands():
    assert invoke("schema").stdout == (REPO / "schema" / "index.sql").read_text()
    assert invoke("schema", "--sql").stdout == (REPO / "schema" / "index.sql").read_text()
    assert json.loads(invoke("schema", "--json").stdout) == run_log_json_schema()
    assert invoke("schema", "--sql", "--json").exit_code == 2


@pytest.mark.parametrize("command", ["ingest", "query", "runs", "keys", "show", "metrics", "compare", "schema"])
def test_help_has_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert f"runlog {command}" in result.stdout.split("Example:")[1]
