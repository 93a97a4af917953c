"""runlog.index.flatten: a RunLog -> index rows, as pure functions."""

from __future__ import annotations

import math

import pytest

from runlog.index.flatten import (
    METRIC_COLUMNS,
    RUN_COLUMNS,
    classify,
    flatten_run,
    g3_metric_points,
    is_series,
    metric_points,
    run_times,
    timestamp_ms,
)
from runlog.models import RunLog


def _run(steps: dict, **fields) -> RunLog:
    return RunLog.model_validate({"run_id": "r1", "steps": steps, **fields})


def _step(name: str, metrics=None, attempts=None, branches=None, **fields) -> dict:
    data = {"name": name.rsplit(".", 1)[-1], "internal_name": name, "status": "SUCCESS", **fields}
    if metrics is not None:
        data["user_defined_metrics"] = metrics
    data["attempts"] = attempts if attempts is not None else [
        {"attempt_number": 1, "start_time": "2024-01-09 05:44:42.841295", "end_time": "2024-01-09 05:44:42.849938",
         "status": "SUCCESS"}
    ]
    data["branches"] = branches or {}
    return data


@pytest.mark.parametrize(
    "value, expected",
    [
        (1, (1.0, None, "numeric")),
        (0.5, (0.5, None, "numeric")),
        (float("inf"), (math.inf, None, "numeric")),
        (float("-inf"), (-math.inf, None, "numeric")),
        (float("nan"), (None, "NaN", "numeric")),
        (True, (None, "true", "bool")),
        (False, (None, "false", "bool")),
        ("hello", (None, "hello", "text")),
        ("", (None, "", "text")),
        ([1, "a"], (None, '[1,"a"]', "json")),
        ([float("nan")], (None, '["NaN"]', "json")),
        (None, (None, "null", "json")),
        ({}, (None, "{}", "json")),
        (10**400, (None, "1" + "0" * 400, "json")),
    ],
)
def test_classify(value, expected):
    assert classify(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"0": 1, "2": 3}, True),
        ({"0": {"ham": "x"}}, True),
        ({"0": 1, "a": 2}, False),
        ({}, False),
        ({"-1": 1}, False),
        ({"١": 1}, False),  # non-ASCII digits are not steps
        ({"9" * 19: 1}, False),  # would not fit a SQLite INTEGER
        ([1, 2], False),
        (3, False),
    ],
)
def test_is_series(value, expected):
    assert is_series(value) is expected


def test_g1_g2_metric_points_series_sparse_nested_and_bool():
    points = list(metric_points({
        "loss": {"0": 0.9, "2": 0.3},
        "eggs": {"0": {"Ham": "world"}, "1": {"Ham": "universe"}},
        "deep": {"a": {"b": 1}, "c": [1, 2]},
        "flag": False,
        "answer": 42,
        "curve": [0.1, 0.2],  # G1/G2: a list is a json value, not a curve
    }))
    assert points == [
        ("loss", 0, 0.9, None, "numeric"),
        ("loss", 2, 0.3, None, "numeric"),
        ("eggs.Ham", 0, None, "world", "text"),
        ("eggs.Ham", 1, None, "universe", "text"),
        ("deep.a.b", 0, 1.0, None, "numeric"),
        ("deep.c", 0, None, "[1,2]", "json"),
        ("flag", 0, None, "false", "bool"),
        ("answer", 0, 42.0, None, "numeric"),
        ("curve", 0, None, "[0.1,0.2]", "json"),
    ]


def test_g3_metric_points_curves_pairs_dicts_and_raw_values():
    points = list(g3_metric_points({
        "curve": {"kind": "metric", "value": [0.9, 0.61, 3]},
        "model": {"kind": "metric", "value": [["lr", 0.1], ["name", "m"]]},
        "report": {"kind": "metric", "value": {"precision": 0.8, "labelName": "positive"}},
        "flags": {"kind": "metric", "value": [True, False]},  # bools are not a curve
        "raw": 5,
        "series_like": {"kind": "metric", "value": {"0": 1}},  # G3 has no decimal-key series
    }))
    assert points == [
        ("curve", 0, 0.9, None, "numeric"),
        ("curve", 1, 0.61, None, "numeric"),
        ("curve", 2, 3.0, None, "numeric"),
        ("model.lr", 0, 0.1, None, "numeric"),
        ("model.name", 0, None, "m", "text"),
        ("report.precision", 0, 0.8, None, "numeric"),
        ("report.labelName", 0, None, "positive", "text"),
        ("flags", 0, None, "[true,false]", "json"),
        ("raw", 0, 5.0, None, "numeric"),
        ("series_like.0", 0, 1.0, None, "numeric"),
    ]


def test_g3_latest_attempt_wins_and_metric_outputs_count():
    attempts = [
        {"attempt_number": 1, "status": "FAIL", "start_time": "2024-01-01 00:00:00.000000",
         "end_time": "2024-01-01 00:00:01.000000", "user_defined_metrics": {"acc": {"kind": "metric", "value": 0.1}}},
        {"attempt_number": 2, "status": "SUCCESS", "start_time": "2024-01-01 00:00:02.000000",
         "end_time": "2024-01-01 00:00:03.000000", "retry_indicator": "r2",
         "user_defined_metrics": {"acc": {"kind": "metric", "value": 0.9}},
         "output_parameters": {"extra": {"kind": "metric", "value": 7}, "data": {"kind": "json", "value": 1}}},
    ]
    flat = flatten_run(_run({"train": _step("train", attempts=attempts)}, job=None))
    rows = [dict(zip(METRIC_COLUMNS, r)) for r in flat.metrics]
    assert [(r["key"], r["value"], r["timestamp_ms"]) for r in rows] == [
        ("acc", 0.9, 1704067203000),
        ("extra", 7.0, 1704067203000),
    ]
    assert [a[2:4] for a in flat.attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert flat.attempts[1][-1] == "r2"


def test_steps_rows_branch_and_position():
    inner = {"par.b1": {"internal_name": "par.b1", "status": "SUCCESS",
                        "steps": {"par.b1.train": _step("par.b1.train", metrics={"x": 1})}}}
    run = _run({
        "first": _step("first"),
        "par": _step("par", attempts=[], branches=inner, step_type="parallel"),
        "success": _step("success", step_type="success"),
    })
    flat = flatten_run(run)
    assert flat.steps == [
        ("r1", "first", "first", "", "task", "SUCCESS", "", 0, 0),
        ("r1", "par", "par", "", "parallel", "SUCCESS", "", 0, 1),
        ("r1", "par.b1.train", "train", "par.b1", "task", "SUCCESS", "", 0, 2),
        ("r1", "success", "success", "", "success", "SUCCESS", "", 0, 3),
    ]
    assert flat.metrics == [("r1", "par.b1.train", "x", 0, 1.0, None, "numeric", 1704779082849)]


def test_run_row_times_format_and_json_columns():
    attempts_a = [{"attempt_number": 1, "status": "SUCCESS", "start_time": "2024-01-09 05:44:42.000000",
                   "end_time": "2024-01-09 05:44:43.500000", "duration": "0:00:01.500000"}]
    attempts_b = [{"attempt_number": 1, "status": "SUCCESS", "start_time": "", "end_time": "",
                   "duration": "0:00:02.000000"}]
    run = _run({"a": _step("a", attempts=attempts_a), "b": _step("b", attempts=attempts_b)},
               tag=None, use_cached=True, original_run_id="r0", parameters={"lr": 0.1, "bad": float("nan")})
    row = dict(zip(RUN_COLUMNS, flatten_run(run, layout="chunked-fs", source_path="/x", ingested_at="t").run))
    assert row == {
        "run_id": "r1", "tag": "", "status": "CREATED", "dag_hash": "", "use_cached": 1, "original_run_id": "r0",
        "start_time": "2024-01-09 05:44:42.000000", "end_time": "2024-01-09 05:44:43.500000", "duration_s": 1.5,
        "format": "g1", "layout": "chunked-fs", "source_path": "/x", "ingested_at": "t",
        "parameters": '{"lr":0.1,"bad":"NaN"}', "run_config": "{}",
    }
    flat = flatten_run(run)
    # An attempt without times keeps its stored duration; empty times are NULL.
    assert flat.attempts[1][4:7] == (None, None, 2.0)
    assert flat.params == [("r1", "", 0, "run", "lr", "raw", 0.1, "0.1"), ("r1", "", 0, "run", "bad", "raw", None, '"NaN"')]


def test_run_times_mixes_naive_and_aware_times_as_utc():
    attempts = [
        {"attempt_number": 1, "status": "SUCCESS", "start_time": "2024-01-01 10:00:00+02:00",
         "end_time": "2024-01-01 09:00:00.000000"},
    ]
    assert run_times(_run({"a": _step("a", attempts=attempts)})) == ("2024-01-01 10:00:00+02:00", "2024-01-01 09:00:00.000000")


def test_params_of_every_generation():
    attempts = [{
        "attempt_number": 1, "status": "SUCCESS", "parameters": {"g1": 3},
        "input_parameters": {"x": {"kind": "json", "value": "a.csv"}},
        "output_parameters": {"flag": True, "obj": {"kind": "object", "value": "model"}},
    }]
    flat = flatten_run(_run({"s": _step("s", attempts=attempts)}))
    assert flat.params == [
        ("r1", "s", 1, "input", "g1", "raw", 3.0, "3"),
        ("r1", "s", 1, "input", "x", "json", None, '"a.csv"'),
        ("r1", "s", 1, "output", "flag", "raw", None, "true"),
        ("r1", "s", 1, "output", "obj", "object", None, '"model"'),
    ]


def test_code_identities_on_step_and_on_attempt():
    identity = {"code_identifier": "abc", "code_identifier_type": "git", "code_identifier_dependable": True,
                "code_identifier_url": "u", "code_identifier_message": ""}
    attempts = [{"attempt_number": 2, "status": "SUCCESS", "code_identities": [identity]}]
    flat = flatten_run(_run({"s": _step("s", attempts=attempts, code_identities=[identity])}))
    assert flat.code_identities == [
        ("r1", "s", 0, "abc", "git", 1, "u", ""),
        ("r1", "s", 2, "abc", "git", 1, "u", ""),
    ]


def test_duplicate_metric_keys_last_wins():
    # "a.b" written directly and by flattening {"a": {"b": ...}} share a primary key.
    flat = flatten_run(_run({"s": _step("s", metrics={"a.b": 1, "a": {"b": 2}})}))
    assert [(r[2], r[4]) for r in flat.metrics] == [("a.b", 2.0)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1970-01-01 00:00:00.001000", 1),
        ("2024-01-09 05:44:42.849938", 1704779082849),
        ("2024-01-09T07:44:42.849938+02:00", 1704779082849),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_timestamp_ms(text, expected):
    assert timestamp_ms(text) == expected
