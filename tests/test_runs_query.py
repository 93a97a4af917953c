"""One meaning for a run's metric, and runs sorted, filtered and compared by any metric
or param: run-level names, summaries, column specs, the filter language, keys,
compare, hints for names that match nothing, output formats and the schema-2 migration."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlog import RunLog, RunLogStore
from runlog.cli import cli
from runlog.index import SCHEMA_VERSION, ingest, open_db
from runlog.mlflow.plan import plan_run

from conftest import copy_fixture_runs, script_formats


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def rows_of(*args) -> list[dict]:
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def sweep_db(tmp_path_factory) -> Path:
    """The README's runs: the six real ones and examples/sweep.py's seven."""
    root = tmp_path_factory.mktemp("sweep")
    assert ingest([copy_fixture_runs(root / "store", sweep=True)], root / "runlog.db").failed == 0
    return root / "runlog.db"


# -- run-level names --------------------------------------------------------------------


def branch_run(run_id: str, first_ends_last: bool) -> RunLog:
    """A parallel step whose two branches both track ``loss``; the first listed branch
    ends last or first."""
    def branch(name: str, curve: list[float], end: str) -> dict:
        step = f"search.{name}.train"
        attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2026-01-01 10:00:00.000000",
                   "end_time": end}
        return {"internal_name": f"search.{name}", "status": "SUCCESS", "steps": {step: {
            "name": "train", "internal_name": step, "status": "SUCCESS", "attempts": [attempt],
            "user_defined_metrics": {"loss": {str(i): v for i, v in enumerate(curve)}}}}}

    late, early = "2026-01-01 10:05:00.000000", "2026-01-01 10:01:00.000000"
    return RunLog.model_validate({"run_id": run_id, "tag": "par", "status": "SUCCESS", "steps": {"search": {
        "name": "search", "internal_name": "search", "status": "SUCCESS", "step_type": "parallel", "branches": {
            "search.lr0": branch("lr0", [0.9, 0.6561], late if first_ends_last else early),
            "search.lr1": branch("lr1", [0.8, 0.4096], early if first_ends_last else late)}}}})


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_a_runs_loss_is_its_first_branchs_whatever_ended_last_and_whatever_the_ingest_order(tmp_path, layout):
    stores = [tmp_path / "a", tmp_path / "b"]
    RunLogStore(stores[0], layout).create_run(branch_run("ends-last", first_ends_last=True))
    RunLogStore(stores[1], layout).create_run(branch_run("ends-first", first_ends_last=False))
    for order, db in (((0, 1), tmp_path / "one.db"), ((1, 0), tmp_path / "two.db")):
        assert ingest([stores[i] for i in order], db).ingested == 2
        runs = {r["run_id"]: r for r in rows_of("runs", "--metric", "loss", "--metric", "search.lr1.train/loss",
                                                 "--db", db)}
        assert {r: (v["loss"], v["search.lr1.train/loss"]) for r, v in runs.items()} == {
            "ends-last": (0.6561, 0.4096), "ends-first": (0.6561, 0.4096)}
        board = rows_of("query", "--named", "leaderboard", "-p", "key", "loss", "--db", db)
        assert [(r["step_name"], r["value"]) for r in board] == [("search.lr0.train", 0.6561)] * 2
        compared = rows_of("compare", "ends-last", "ends-first", "--db", db)
        assert [(r["spec"], r["ends-last"], r["ends-first"], r["differs"]) for r in compared] == [
            ("loss", 0.6561, 0.6561, ""), ("search.lr1.train/loss", 0.4096, 0.4096, "")]
        plan = plan_run(db, "ends-last")
        assert [(m.key, m.step, m.value) for m in plan.metrics] == [
            ("loss", 0, 0.9), ("loss", 1, 0.6561), ("search.lr1.train/loss", 0, 0.8),
            ("search.lr1.train/loss", 1, 0.4096)]


def test_params_follow_the_same_rule_run_level_first(tmp_path):
    attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2026-01-01 10:00:00.000000",
               "end_time": "2026-01-01 10:00:01.000000"}
    old = {**attempt, "attempt_number": 1, "status": "FAIL", "parameters": {"lr": 9.0, "gone": 1}}
    run = RunLog.model_validate({"run_id": "p", "status": "SUCCESS", "parameters": {"lr": 0.1}, "steps": {
        "prep": {"name": "prep", "internal_name": "prep", "status": "SUCCESS",
                 "attempts": [{**attempt, "input_parameters": {"lr": 0.2}, "output_parameters": {"rows": 7}}]},
        "train": {"name": "train", "internal_name": "train", "status": "SUCCESS",
                  "attempts": [old, {**attempt, "attempt_number": 2, "parameters": {"lr": 0.3, "rows": "7"}}]}}})
    RunLogStore(tmp_path / "s").create_run(run)
    ingest([tmp_path / "s"], tmp_path / "x.db")
    db = open_db(tmp_path / "x.db", readonly=True)
    assert db.conn.execute("SELECT name, step_name, direction, value, text FROM run_params ORDER BY position, name"
                           ).fetchall() == [
        ("lr", "", "run", 0.1, "0.1"), ("prep/lr", "prep", "input", 0.2, "0.2"), ("rows", "prep", "output", 7.0, "7"),
        ("train/lr", "train", "input", 0.3, "0.3"), ("train/rows", "train", "input", None, "7"),
    ]  # the latest attempt only: train's first attempt (lr 9, gone) is not there



def test_wide_runs_compare_and_list_past_sqlites_64_table_join(tmp_path):
    """Runs with more metrics and params than SQLite joins tables in one query."""
    attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2026-01-01 10:00:00.000000",
               "end_time": "2026-01-01 10:00:01.000000"}
    store = RunLogStore(tmp_path / "s")
    for n in (1, 2):
        metrics = {f"m{k:02d}": k * n for k in range(70)}
        store.create_run(RunLog.model_validate({"run_id": f"wide-{n}", "status": "SUCCESS",
                                                 "parameters": {f"p{k:02d}": k + n % 2 for k in range(30)},
                                                 "steps": {"s": {"name": "s", "internal_name": "s", "status": "SUCCESS",
                                                                 "attempts": [{**attempt, "user_defined_metrics": metrics}]}}}))
    ingest([tmp_path / "s"], tmp_path / "w.db")
    rows = rows_of("compare", "wide-1", "wide-2", "--summary", "first", "--db", tmp_path / "w.db")
    assert len(rows) == 100
    cells = {r["spec"]: (r["wide-1"], r["wide-2"], r["differs"]) for r in rows}
    assert cells["param:p29"] == (30, 29, "*") and cells["first:m69"] == (69, 138, "*") and cells["first:m00"] == (0, 0, "")
    columns = [a for k in range(70) for a in ("--metric", f"max:m{k:02d}")]
    listed = rows_of("runs", *columns, "--sort", "-max:m69", "--db", tmp_path / "w.db")
    assert [(r["run_id"], r["max:m69"]) for r in listed] == [("wide-2", 138), ("wide-1", 69)]

# -- runs: specs, --where, --sort, --limit ---------------------------------------------------


def test_the_readme_question_returns_the_right_runs_in_order(sweep_db):
    rows = rows_of("runs", "--param", "lr", "--metric", "min:loss", "--metric", "argmin:loss", "--where",
                   "param:lr in (0.1, 0.01) and min:loss < 0.5", "--sort", "min:loss", "--limit", "5", "--db", sweep_db)
    assert [(r["run_id"], r["param:lr"], r["min:loss"], r["argmin:loss"]) for r in rows] == [
        ("sweep-03", 0.01, 0.1685, 9), ("sweep-04", 0.01, 0.2027, 9), ("sweep-ensemble", 0.1, 0.2139, 7),
        ("sweep-01", 0.1, 0.2188, 8), ("sweep-02", 0.1, 0.2537, 7)]
    assert list(rows[0]) == ["run_id", "tag", "status", "start_time", "duration_s", "steps", "param:lr", "min:loss",
                             "argmin:loss"]  # params first, then metrics


@pytest.mark.parametrize("where, expected", [
    ("loss < 0.2 or loss > 0.6", ["sweep-03", "sweep-05", "sweep-06"]),
    ("not (loss >= 0.2) and tag = 'sweep'", ["sweep-03"]),
    ("param:batch = 64 and param:lr != 0.001", ["sweep-02", "sweep-04"]),
    ("param:lr not in (0.1, 0.01) and tag == \"sweep\"", ["sweep-05", "sweep-06"]),
    ("param:optimizer like 'S%' and argmin:loss <> 9", ["sweep-01", "sweep-02"]),
    ("run_id glob 'sweep-0[12]'", ["sweep-01", "sweep-02"]),
    ("run_id regexp '^sweep-0[56]$'", ["sweep-05", "sweep-06"]),
    ("run_id not regexp 'sweep|case|legacy|magnus'", []),
    ("tag = 'sweep' and param:batch is null", ["sweep-ensemble"]),
    ("count:loss = 10 and max:accuracy is not null and first:loss > 1", ["sweep-02", "sweep-05", "sweep-06"]),
    ("mean:loss > 0.7 AND duration_s >= 85", ["sweep-05", "sweep-06"]),
    ("`fit.b2.train/loss` < 1 and last:loss = loss", ["sweep-ensemble"]),
    ("start_time >= '2026-11-30 10:00' and end_time < '2026-11-30 11:02'", ["sweep-06", "sweep-ensemble"]),
    ("run_id = 'x'' OR 1=1 --'", []),
])
def test_the_filter_language(sweep_db, where, expected):
    rows = rows_of("runs", "--where", where, "--db", sweep_db)
    assert sorted(r["run_id"] for r in rows) == expected


def test_sort_descending_with_ties_and_runs_without_the_value_last(sweep_db):
    rows = rows_of("runs", "--metric", "argmin:loss", "--param", "batch", "--where", "tag = 'sweep'",
                   "--sort", "-param:batch", "--sort", "argmin:loss", "--db", sweep_db)
    assert [(r["run_id"], r["param:batch"], r["argmin:loss"]) for r in rows] == [
        ("sweep-02", 64, 7), ("sweep-04", 64, 9), ("sweep-06", 64, 9),
        ("sweep-01", 32, 8), ("sweep-03", 32, 9), ("sweep-05", 32, 9), ("sweep-ensemble", None, 7)]
    ascending = rows_of("runs", "--metric", "accuracy", "--sort", "accuracy", "--limit", "8", "--db", sweep_db)
    assert [r["accuracy"] is None for r in ascending] == [False] * 7 + [True]  # sweep-01..06, case2-metrics
    assert rows_of("runs", "--limit", "0", "--db", sweep_db) == []


@pytest.mark.parametrize("args, message", [
    (["--metric", "los"], "no metric 'los' in any run; did you mean loss, loss_curve? (`runlog keys` lists them)"),
    (["--metric", "min:acuracy"], "no metric 'acuracy' in any run; did you mean accuracy, env_accuracy? "
                                  "(`runlog keys` lists them)"),
    (["--param", "lrr"], "no param 'lrr' in any run; did you mean param:lr? (`runlog keys` lists them)"),
    (["--metric", "lr"], "no metric 'lr' in any run; did you mean param:lr? (`runlog keys` lists them)"),
    (["--where", "param:batch > 1 and los < 1"], "no metric 'los' in any run; did you mean loss, loss_curve? "
                                                 "(`runlog keys` lists them)"),
    (["--sort", "-min:loss_curv"], "no metric 'loss_curv' in any run; did you mean loss_curve, loss? "
                                   "(`runlog keys` lists them)"),
    (["--tag", "sweeps"], "no run has tag 'sweeps'; did you mean sweep?"),
    (["--status", "done"], "no run has status 'DONE'"),
    (["--where", "loss regexp '('"], "regexp '(' is not a regular expression (missing ), unterminated subpattern "
                                     "at position 0)"),
])
def test_names_that_match_nothing_are_one_line(sweep_db, args, message):
    result = invoke("runs", *args, "--db", sweep_db)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")


SPEC_HINT = ("write NAME, SUMMARY:NAME (last first min max mean count argmin argmax) or param:NAME, with a name that "
             "has spaces or odd characters in `backquotes`")
OPERAND = "a name, a `quoted name`, a number or a 'quoted string'"
AFTER_OPERAND = "a comparison (= != < <= > >=), 'is', 'in', 'not', 'like', 'glob', 'regexp'"


@pytest.mark.parametrize("option, text, message", [
    ("--where", "loss", "unexpected end of expression; expected a comparison (= != < <= > >=), 'is', 'in', 'not', "
                        "'like', 'glob' or 'regexp'"),
    ("--where", "(loss < 1", "unexpected end of expression; expected ')'"),
    ("--where", "loss <", f"unexpected end of expression; expected {OPERAND}"),
    ("--where", "loss < 1 and", "unexpected end of expression; expected a name, a `quoted name`, a number, "
                                "a 'quoted string', '(' or 'not'"),
    ("--where", "loss is not", "unexpected end of expression; expected 'null'"),
    ("--where", "loss in (1, 2", "unexpected end of expression; expected ',' or ')'"),
    ("--where", "min:loss < < 0.5", f"unexpected '<' at column 12; expected {OPERAND}"),
    ("--where", "loss in 1", "unexpected '1' at column 9; expected '('"),
    ("--where", "loss not 1", "unexpected '1' at column 10; expected 'in', 'like', 'glob' or 'regexp'"),
    ("--where", "loss @ 1", f"unexpected '@' at column 6; expected {AFTER_OPERAND}, ')', 'and' or 'or'"),
    ("--where", "loss < 1)", "unexpected ')' at column 9; expected the end"),
    ("--where", "1 < 2 < 3", "unexpected '<' at column 7; expected ')', 'and', 'or' or the end"),
    ("--where", "loss < 'abc", "the quote ' at column 8 is never closed"),
    ("--where", "median:loss < 1", "unknown summary 'median' at column 1; use last, first, min, max, mean, count, "
                                   "argmin, argmax or param"),
    ("--metric", "median:loss", f"unknown summary 'median' at column 1; {SPEC_HINT}"),
    ("--metric", "min:", f"unexpected end of expression; {SPEC_HINT}"),
    ("--metric", "eval loss", f"unexpected 'loss' at column 6; {SPEC_HINT}"),
    ("--metric", "`eval loss", "the quote ` at column 1 is never closed"),
    ("--param", "param:a b", f"unexpected 'b' at column 9; {SPEC_HINT}"),
    ("--sort", "min:", f"unexpected end of expression; {SPEC_HINT}"),
])
def test_syntax_errors_say_in_plain_words_what_was_expected_and_where(sweep_db, option, text, message):
    result = invoke("runs", option, text, "--db", sweep_db)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {option} {text!r}: {message}\n")


def test_a_spec_with_odd_characters_in_backquotes(tmp_path):
    attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2026-01-01 10:00:00.000000",
               "end_time": "2026-01-01 10:00:01.000000"}
    run = RunLog.model_validate({"run_id": "odd", "status": "SUCCESS", "steps": {"t": {
        "name": "t", "internal_name": "t", "status": "SUCCESS", "attempts": [attempt],
        "user_defined_metrics": {"eval loss": {"0": 0.5, "1": 0.25}, "a`b": 1, "tag": 3}}}})
    RunLogStore(tmp_path / "s").create_run(run)
    ingest([tmp_path / "s"], tmp_path / "x.db")
    rows = rows_of("runs", "--metric", "min:`eval loss`", "--metric", "`a``b`", "--metric", "last:tag",
                   "--where", "`eval loss` = 0.25", "--db", tmp_path / "x.db")
    assert [(r["min:`eval loss`"], r["`a``b`"], r["last:tag"], r["tag"]) for r in rows] == [(0.25, 1.0, 3.0, "")]


# -- keys, compare -----------------------------------------------------------------------------


def test_keys_lists_every_name_with_its_runs_kinds_and_range(sweep_db):
    keys = {(r["what"], r["name"]): r for r in rows_of("keys", "--db", sweep_db)}
    assert keys[("metric", "loss")] == {"what": "metric", "name": "loss", "runs": 8, "kinds": "numeric",
                                        "min": 0.1685, "max": 0.6861}
    assert keys[("param", "lr")]["runs"] == 7 and (keys[("param", "lr")]["min"], keys[("param", "lr")]["max"]) == (
        0.001, 0.1)
    assert keys[("metric", "spam")]["kinds"] == "text"
    narrowed = rows_of("keys", "--like", "%loss%", "--sort", "-runs", "--limit", "2", "--db", sweep_db)
    assert [r["name"] for r in narrowed] == ["loss", "env_loss"]
    table = invoke("keys", "--like", "fit%", "--db", sweep_db).stdout
    assert table.splitlines()[2:] == ["metric  fit.b2.train/loss     1  numeric  0.1909  0.1909",
                                      "param   fit.b2.train/lr       1  raw        0.01    0.01"]


def test_compare_lines_up_by_run_level_name_with_a_summary_and_only_differences(sweep_db):
    rows = rows_of("compare", "sweep-01", "sweep-ensemble", "--summary", "argmin", "--db", sweep_db)
    assert [(r["spec"], r["sweep-01"], r["sweep-ensemble"], r["differs"]) for r in rows] == [
        ("param:batch", 32, None, "*"), ("param:lr", 0.1, 0.1, ""), ("param:optimizer", "sgd", None, "*"),
        ("param:fit.b2.train/lr", None, 0.01, "*"), ("argmin:accuracy", 0, None, "*"), ("argmin:loss", 8, 7, "*"),
        ("argmin:fit.b2.train/loss", None, 9, "*")]
    chosen = rows_of("compare", "sweep-01", "sweep-02", "sweep-03", "--metric", "count:loss", "--metric", "min:loss",
                     "--param", "optimizer", "--only-diff", "--db", sweep_db)
    assert [r["spec"] for r in chosen] == ["min:loss"]
    bad = invoke("compare", "sweep-01", "sweep-2", "--db", sweep_db)
    assert (bad.exit_code, bad.stderr) == (2, "Error: no run 'sweep-2' in the index; did you mean sweep-02, sweep-06, "
                                              "sweep-05?\n")


# -- output --------------------------------------------------------------------------------------


def test_table_output_is_for_reading_and_the_script_formats_keep_every_digit(sweep_db):
    sql = "SELECT 0.1 + 0.2 AS sum, 1795685261802 AS timestamp_ms, '2026-11-30 09:10:00.000000' AS start_time"
    table = "0.3  2026-11-26T09:27:41.802Z  2026-11-30T09:10:00.000Z\n"
    assert invoke("query", sql, "--db", sweep_db).stdout == (
        "sum  timestamp_ms              start_time\n"
        "---  ------------------------  ------------------------\n" + table)
    assert invoke("query", sql, "--no-headers", "--db", sweep_db).stdout == table
    assert invoke("query", sql, "--format", "csv", "--no-headers", "--db", sweep_db).stdout == (
        "0.30000000000000004,1795685261802,2026-11-30 09:10:00.000000\n")
    assert invoke("query", sql, "--format", "tsv", "--db", sweep_db).stdout == (
        "sum\ttimestamp_ms\tstart_time\n0.30000000000000004\t1795685261802\t2026-11-30 09:10:00.000000\n")
    assert invoke("query", sql, "--format", "nl", "--db", sweep_db).stdout == (
        '{"sum": 0.30000000000000004, "timestamp_ms": 1795685261802, "start_time": "2026-11-30 09:10:00.000000"}\n')
    assert invoke("query", sql, "--format", "json", "--db", sweep_db).stdout == (
        '[\n  {\n    "sum": 0.30000000000000004,\n    "timestamp_ms": 1795685261802,\n'
        '    "start_time": "2026-11-30 09:10:00.000000"\n  }\n]\n')


# A value with a quote, a tab, a line feed, a carriage return and a backslash; a float; a NULL.
HOSTILE = ("SELECT 'say \"hi\"' || char(9) || 'tab' || char(10) || 'line' || char(13) || 'cr \\ back' AS id, "
           "1.5 AS value, NULL AS empty")


@pytest.mark.parametrize("fmt, expected", [
    ("table", 'id                             value  empty\n'
              '-----------------------------  -----  -----\n'
              'say "hi"\\ttab line\\rcr \\ back    1.5\n'),
    ("json", '[\n  {\n    "id": "say \\"hi\\"\\ttab\\nline\\rcr \\\\ back",\n    "value": 1.5,\n    "empty": null\n  }\n]\n'),
    ("csv", 'id,value,empty\n"say ""hi""\ttab\nline\rcr \\ back",1.5,\n'),
    ("tsv", 'id\tvalue\tempty\nsay "hi"\\ttab\\nline\\rcr \\\\ back\t1.5\t\n'),
    ("nl", '{"id": "say \\"hi\\"\\ttab\\nline\\rcr \\\\ back", "value": 1.5, "empty": null}\n'),
])
def test_every_format_prints_exactly(sweep_db, fmt, expected):
    result = invoke("query", HOSTILE, "--format", fmt, "--db", sweep_db)
    assert (result.exit_code, result.stdout) == (0, expected)


def test_tsv_is_one_line_a_row_that_cut_reads_back(sweep_db):
    out = invoke("query", HOSTILE, "--format", "tsv", "--no-headers", "--db", sweep_db).stdout
    assert out.count("\n") == 1
    field = out.rstrip("\n").split("\t")[0]
    unescaped = field.replace("\\\\", "\0").replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")
    assert unescaped.replace("\0", "\\") == 'say "hi"\ttab\nline\rcr \\ back'


# Each list command, on a few rows, and the table it prints; its csv, tsv and nl must
# hold exactly its json rows.
LISTINGS = {
    "runs": (["runs", "--where", "run_id glob 'sweep-0[12]'", "--param", "lr", "--metric", "min:loss"], """\
run_id    tag    status   start_time                duration_s  steps  param:lr  min:loss
--------  -----  -------  ------------------------  ----------  -----  --------  --------
sweep-01  sweep  SUCCESS  2026-11-30T09:10:00.000Z          65      1       0.1    0.2188
sweep-02  sweep  SUCCESS  2026-11-30T09:20:00.000Z          70      1       0.1    0.2537
"""),
    "keys": (["keys", "--like", "fit%"], """\
what    name               runs  kinds    min     max
------  -----------------  ----  -------  ------  ------
metric  fit.b2.train/loss     1  numeric  0.1909  0.1909
param   fit.b2.train/lr       1  raw        0.01    0.01
"""),
    "metrics": (["metrics", "sweep-01", "--key", "accuracy", "--limit", "2"], """\
name      step_name  key       step  value   kind     timestamp_ms
--------  ---------  --------  ----  ------  -------  ------------------------
accuracy  train      accuracy     0  0.2117  numeric  2026-11-30T09:11:05.000Z
accuracy  train      accuracy     1  0.4664  numeric  2026-11-30T09:11:05.000Z
"""),
    "compare": (["compare", "sweep-01", "sweep-02", "--param", "lr", "--metric", "min:loss"], """\
spec      sweep-01  sweep-02  differs
--------  --------  --------  -------
param:lr       0.1       0.1
min:loss    0.2188    0.2537  *
"""),
    "named query": (["query", "--named", "runs_by_tag", "-p", "tag", "exp-a"], """\
run_id         tag    status   start_time                duration_s  steps  failed_steps
-------------  -----  -------  ------------------------  ----------  -----  ------------
case2-metrics  exp-a  SUCCESS  2026-11-26T09:27:41.754Z    0.085593      3             0
"""),
    "dry run": (["export", "mlflow", "sweep-01", "sweep-02", "--dry-run"], """\
run_id    experiment  status    metric_points  metrics  params  tags  renamed  truncated
--------  ----------  --------  -------------  -------  ------  ----  -------  ---------
sweep-01  sweep       FINISHED             20        2       0     8        0          0
sweep-02  sweep       FINISHED             20        2       0     8        0          0
"""),
}


@pytest.mark.parametrize("command, table", LISTINGS.values(), ids=LISTINGS)
def test_every_list_command_prints_each_format_exactly(sweep_db, command, table):
    rows = rows_of(*command, "--db", sweep_db)
    assert 0 < len(rows) <= 2
    assert invoke(*command, "--db", sweep_db).stdout == table
    for fmt, text in script_formats(rows).items():
        assert invoke(*command, "--format", fmt, "--db", sweep_db).stdout == text, fmt
    assert invoke(*command, "--format", "csv", "--no-headers", "--db", sweep_db).stdout == (
        script_formats(rows)["csv"].split("\n", 1)[1])


def test_query_list_and_show_print_each_format_exactly(sweep_db):
    named = rows_of("query", "--list", "--db", sweep_db)
    assert [(q["name"], q["params"]) for q in named] == [
        ("metric_history", "run_id key"), ("leaderboard", "key direction"), ("runs_by_tag", "tag"),
        ("failed_steps", ""), ("param_diff", "run_a run_b")]
    assert invoke("query", "--list", "--format", "nl", "--db", sweep_db).stdout == "".join(
        json.dumps(q) + "\n" for q in named)
    assert invoke("query", "--list", "--format", "tsv", "--no-headers", "--db", sweep_db).stdout == "".join(
        "\t".join(q.values()) + "\n" for q in named)
    steps = "run_id,step_name,name,branch,step_type,status,message,mock,position\nsweep-01,train,train,,task,SUCCESS,,0,0\n"
    assert invoke("show", "sweep-01", "--format", "csv", "--db", sweep_db).stdout == steps
    assert invoke("show", "sweep-01", "--format", "tsv", "--db", sweep_db).stdout == steps.replace(",", "\t")
    assert invoke("show", "sweep-01", "--format", "nl", "--db", sweep_db).stdout == json.dumps(
        {"run_id": "sweep-01", "step_name": "train", "name": "train", "branch": "", "step_type": "task",
         "status": "SUCCESS", "message": "", "mock": 0, "position": 0}) + "\n"
    assert json.loads(invoke("show", "sweep-01", "--format", "json", "--db", sweep_db).stdout)["run"]["run_id"] == (
        "sweep-01")


# -- labels and the migration --------------------------------------------------------------------


def test_runs_runlog_records_are_labelled_by_their_shape(tmp_path):
    from runlog import Run, track_this

    with Run.start(run_id="mine", store=tmp_path / "s") as run:
        with run.step("train"):
            track_this(loss=0.5)
    ingest([tmp_path / "s"], tmp_path / "x.db")
    assert rows_of("query", "SELECT format FROM runs", "--db", tmp_path / "x.db") == [{"format": "g2"}]


def downgrade_to_version_1(path: Path) -> None:
    """Make an index look like one that runlog built before schema 2."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        DROP TABLE run_metrics; DROP TABLE run_params; DROP TABLE metric_tiles;
        CREATE TABLE run_latest (run_id TEXT NOT NULL, key TEXT NOT NULL, step_name TEXT NOT NULL,
            step INTEGER NOT NULL, value REAL, timestamp_ms INTEGER, PRIMARY KEY (run_id, key));
        UPDATE runs SET format = 'g1' WHERE format = 'g2' AND run_id LIKE 'sweep%';
        PRAGMA user_version = 1;""")
    conn.close()


def test_an_old_index_is_never_upgraded_by_a_read(tmp_path, sweep_db):
    path = tmp_path / "old.db"
    shutil.copy(sweep_db, path)
    downgrade_to_version_1(path)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    result = invoke("runs", "--db", path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: index {path} has schema version 1, older than this runlog (3): upgrade it in place with "
        f"`runlog upgrade --db {path}` (or `runlog ingest STORE --db {path}`), where it is writable\n")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    # A reader of a WAL index may leave SQLite's -wal and -shm beside it: the log stays empty.
    assert {p.name for p in tmp_path.iterdir()} <= {"old.db", "old.db-wal", "old.db-shm"}
    assert not (tmp_path / "old.db-wal").exists() or (tmp_path / "old.db-wal").stat().st_size == 0


def test_runlog_upgrade_upgrades_an_index_of_schema_1_in_place_from_its_own_tables(tmp_path, sweep_db):
    path = tmp_path / "old.db"
    shutil.copy(sweep_db, path)
    downgrade_to_version_1(path)
    fresh = sqlite3.connect(sweep_db)
    expected = {t: fresh.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                for t in ("run_metrics", "run_params", "metric_tiles")}
    formats = fresh.execute("SELECT run_id, format FROM runs ORDER BY run_id").fetchall()
    fresh.close()
    # No run log is read: the sources are not even there.
    upgraded = invoke("upgrade", "--db", path)
    assert (upgraded.exit_code, upgraded.stdout) == (0, f"index {path} upgraded from schema version 1 to 3\n")
    rows = rows_of("runs", "--metric", "min:loss", "--where", "min:loss < 0.2", "--db", path)
    assert [r["run_id"] for r in rows] == ["sweep-03"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    for table, want in expected.items():
        assert conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall() == want
    assert conn.execute("SELECT run_id, format FROM runs ORDER BY run_id").fetchall() == formats
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'run_latest'").fetchall() == []
    conn.close()
    again = invoke("upgrade", "--db", path)
    assert (again.exit_code, again.stdout) == (0, f"index {path} is already at schema version 3\n")


@pytest.mark.parametrize("content, message", [
    (None, "no index at {path}: build it with `runlog ingest STORE --db {path}` "
           "(STORE: a run-log folder such as .run_log_store, or a URL)"),
    (b"", "{path} is not a runlog index (it has no runlog tables): point --db at an index that `runlog ingest` built"),
])
def test_runlog_upgrade_creates_nothing(tmp_path, content, message):
    path = tmp_path / "x.db"
    if content is not None:
        path.write_bytes(content)
    result = invoke("upgrade", "--db", path)
    assert (result.exit_code, result.stderr) == (2, f"Error: {message.format(path=path)}\n")
    assert [p.read_bytes() for p in tmp_path.iterdir()] == ([] if content is None else [content])


def test_an_old_index_that_cannot_be_written_says_how_to_upgrade_it(tmp_path, sweep_db, monkeypatch):
    from runlog.errors import RunlogError
    from runlog.index import db as index_db

    path = tmp_path / "old.db"
    shutil.copy(sweep_db, path)
    downgrade_to_version_1(path)

    def no_writes(target):  # a file on read-only storage (root could write a 0444 file)
        raise RunlogError(f"cannot open index {target}: attempt to write a readonly database")

    monkeypatch.setattr(index_db, "connect_writable", no_writes)
    result = invoke("upgrade", "--db", path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: index {path} must be upgraded, which needs write access (cannot open index {path}: attempt to "
        "write a readonly database): run `runlog upgrade` where it is writable\n")
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
