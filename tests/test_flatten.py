"""runlog.index.flatten: a run log -> index rows, as pure functions. Read straight
from JSON (flatten_json) or through the models (flatten_run), a log gives the same
rows, and its metric rows, summaries and tiles are those the index contract defines
point by point (runlog.index.points)."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import FORMATS, Shape, make_run
from conftest import REPO, fixture_sources
from row_checks import put_hostile, same
from runlog.errors import BadRunLog
from runlog.index.flatten import METRIC_COLUMNS, RUN_COLUMNS, Unusual, flatten_json, flatten_run
from runlog.index.points import (
    classify,
    g3_metric_points,
    is_series,
    metric_points,
    parameter,
    timestamp_ms,
    unique,
)
from runlog.index.summaries import group_series, run_metric_rows
from runlog.index.tiles import tile_rows
from runlog.models import RunLog
from runlog.store import read_run_folder
from runlog.store.jsonio import run_from_json


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
    row = dict(zip(RUN_COLUMNS, flatten_run(_run({"a": _step("a", attempts=attempts)})).run))
    assert (row["start_time"], row["end_time"], row["duration_s"]) == (
        "2024-01-01 10:00:00+02:00", "2024-01-01 09:00:00.000000", 3600.0)


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


# -- straight from JSON, or through the models: the same rows ---------------------------

TABLES = ("run", "steps", "attempts", "params", "catalog", "code_identities", "metrics", "run_metrics",
          "run_params", "metric_tiles")


def assert_same_rows(data: dict) -> None:
    """flatten_json of the JSON gives the rows flatten_run gives of the validated RunLog."""
    fast = flatten_json(data, layout="file-system", source_path="s.json", ingested_at="t")
    slow = flatten_run(run_from_json(data, "s.json"), layout="file-system", source_path="s.json", ingested_at="t")
    for table in TABLES:
        assert same(getattr(fast, table), getattr(slow, table)), table
    assert fast.metric_count == len(slow.metrics) == len(list(slow.metric_rows()))


def fixture_dicts() -> list[tuple[str, dict]]:
    found = []
    for source in fixture_sources() + sorted((REPO / "tests" / "data").glob("*.json")):
        if source.is_dir():  # a chunked run, put together: the dict a file-system run would hold
            found.append((source.name, read_run_folder(source).to_json_dict()))
        else:
            found.append((source.name, json.loads(source.read_text())))
    return found


@pytest.mark.parametrize("name, data", fixture_dicts(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_real_run_log_gives_the_same_rows_straight_from_json(name, data):
    try:
        assert_same_rows(data)
    except Unusual:
        pytest.fail(f"{name}: a real run log should be read straight from its JSON")


@pytest.mark.parametrize("fmt", FORMATS)
def test_generated_runs_of_every_format_give_the_same_rows(fmt):
    rng = random.Random(3)
    for index in range(6):
        assert_same_rows(make_run(index, Shape(6, 6, 4, 12 if index else 600), fmt, rng))


def mutated(data: dict, rng: random.Random) -> dict:
    data = json.loads(json.dumps(data))
    put_hostile(data, rng)
    return data


def test_unusual_shapes_go_through_the_models_and_give_the_same_rows():
    """A replaced field anywhere: flatten_json gives the rows of the models, or says Unusual
    (never rows for a log the models refuse); the models' form of a log they accept is
    never unusual."""
    rng = random.Random(11)
    bases = [d for _, d in fixture_dicts()] + [make_run(i, Shape(4, 5, 3, 5), f, rng) for i, f in enumerate(FORMATS)]
    taken = unusual = 0
    for _ in range(300):
        data = mutated(rng.choice(bases), rng)
        try:
            flatten_json(data, layout="file-system", source_path="s.json", ingested_at="t")
        except Unusual:
            unusual += 1
            try:
                flatten_run(run_from_json(data, "s.json"))
            except BadRunLog:
                pass
            continue
        try:
            run_from_json(data, "s.json")
        except BadRunLog as exc:
            pytest.fail(f"flatten_json took a log the models refuse ({exc}): {json.dumps(data)[:300]}")
        assert_same_rows(data)
        taken += 1
    assert taken > 100 and unusual > 25  # both ways were exercised


# -- metric points against their definition ---------------------------------------------


def rows_by_definition(run: RunLog) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """``metrics``, ``run_metrics`` and ``metric_tiles`` rows as the index contract defines
    them, point by point: each step's G1/G2 points, then its latest attempt's G3 ones and
    metric outputs, stamped with that attempt's end, made unique on the primary key (the
    last value in the place of the first)."""
    rows = []
    for step in run.iter_steps():
        latest = step.latest_attempt()
        stamp = timestamp_ms(latest.end_time) if latest else None
        points = list(metric_points(step.user_defined_metrics))
        if latest is not None:
            tracked = latest.user_defined_metrics or {}
            outputs = {k: v for k, v in (latest.output_parameters or {}).items()
                       if k not in tracked and parameter(v)[0] == "metric"}
            points += list(g3_metric_points(tracked)) + list(g3_metric_points(outputs))
        rows += [(run.run_id, step.internal_name, *point, stamp) for point in points]
    rows = unique(rows, 4)
    positions = {step.internal_name: n for n, step in enumerate(run.iter_steps())}
    groups = group_series(rows)
    return rows, run_metric_rows(run.run_id, groups, positions), tile_rows(run.run_id, groups)


# "a.b" and {"a": {"b": ...}} share a row; a G3 key may repeat a G1/G2 key of its step.
KEYS = st.sampled_from(["a", "a.b", "loss", "acc", "f1", "lr"])
G3_KEYS = st.sampled_from(["loss", "curve", "score", "a.b"])
SCALARS = st.one_of(st.floats(), st.integers(-3, 3), st.just(2**70), st.booleans(), st.sampled_from(["", "x", "y"]),
                    st.none(), st.just([1, 2]))


KINDS = {"floats": st.floats(allow_nan=False), "texts": st.sampled_from(["p", "q"]), "bools": st.booleans(),
         "mixed": SCALARS}


@st.composite
def series(draw):
    """A G1/G2 step series: plain, of mixed kinds, of dicts, out of step order, or long."""
    steps = draw(st.lists(st.integers(0, 40), min_size=1, max_size=6, unique=True))
    if draw(st.booleans()):  # as recorded, in step order
        steps.sort()
    how = draw(st.sampled_from(["floats", "texts", "bools", "mixed", "dicts", "long"]))
    if how == "long":  # long enough for tiles
        steps = list(range(draw(st.integers(512, 700))))
        values = [float(i % 97) for i in steps]
        if draw(st.booleans()):
            values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from([math.nan, math.inf, 1]))
    elif how == "dicts":  # each field of one kind, or of mixed kinds
        kinds = {f: draw(st.sampled_from(list(KINDS))) for f in draw(st.sampled_from(["b", "bc", "cb", "bcd"]))}
        values = [{f: draw(KINDS[kind]) for f, kind in kinds.items()} for _ in steps]
    else:
        values = [draw(KINDS[how]) for _ in steps]
    return {str(s): v for s, v in zip(steps, values)}


G12_VALUES = st.one_of(SCALARS, series(), series(), st.fixed_dictionaries({"b": SCALARS}))
G3_VALUES = st.one_of(SCALARS, st.lists(st.floats(), min_size=1, max_size=5), st.lists(SCALARS, max_size=3),
                      st.just([["b", 1.5], ["c", "x"]]), st.fixed_dictionaries({"b": SCALARS}))


@st.composite
def tricky_runs(draw) -> dict:
    steps = {}
    for name in draw(st.lists(st.sampled_from(["s", "t", "u"]), min_size=1, max_size=3, unique=True)):
        attempts = [{"attempt_number": draw(st.integers(1, 2)), "status": "SUCCESS",
                     "end_time": draw(st.sampled_from(["", "2024-01-01 00:00:01.000000"])),
                     "user_defined_metrics": draw(st.dictionaries(G3_KEYS, G3_VALUES.map(
                         lambda v: {"kind": "metric", "value": v}), max_size=3)),
                     "output_parameters": draw(st.dictionaries(G3_KEYS, st.fixed_dictionaries(
                         {"kind": st.sampled_from(["metric", "json"]), "value": G3_VALUES}), max_size=2))}
                    for _ in range(draw(st.integers(0, 2)))]
        steps[name] = {"name": name, "internal_name": name, "attempts": attempts,
                       "user_defined_metrics": draw(st.dictionaries(KEYS, G12_VALUES, max_size=3))}
    return {"run_id": "r", "steps": steps}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tricky_runs())
def test_metric_rows_summaries_and_tiles_are_those_of_the_definition(data):
    expected = rows_by_definition(run_from_json(data, "r.json"))
    for flat in (flatten_json(data), flatten_run(run_from_json(data, "r.json"))):
        assert same(flat.metrics, expected[0])
        assert same(flat.run_metrics, expected[1])
        assert same(flat.metric_tiles, expected[2])
        assert flat.metric_count == len(expected[0])


def _g3(value) -> dict:
    return {"kind": "metric", "value": value}


@pytest.mark.parametrize("metrics, tracked", [
    ({"eggs": {"0": {"ham": 1.0, "spam": "a"}, "1": {"ham": 2.0, "spam": "b"}}}, {}),  # a field each, step by step
    ({"eggs": {"0": {"x": {"z": 1.0}, "y": True}, "1": {"x": {"z": 2.0}, "y": False}}}, {}),
    ({"eggs": {"0": {"ham": 1.0, "spam": "a"}, "1": {"ham": 2, "spam": "b"}}}, {}),  # an int: rows, not fields
    ({"eggs": {"0": {"ham": 1.0}, "1": {"spam": 2.0}}}, {}),  # fields that change
    ({"a.b": 1.0, "a": {"b": 2.0}}, {}),  # one row, the last value in the place of the first
    ({"a": {"0": {"b": 1.0}, "1": {"b": 2.0}}, "a.b": {"1": 3.0, "2": 4.0}}, {}),
    ({"loss": {"5": 1.0, "6": 2.0}}, {"loss": _g3([0.1, 0.2])}),  # G3 repeats a G1/G2 key
    ({"loss": {"0": 1.0, "1": 2.0}}, {"loss": _g3([0.1, 0.2, 0.3])}),
    ({"loss": {"2": 1.0, "1": 2.0, "3": 0.5}}, {}),  # out of step order
    ({"loss": {str(i): float(i % 7) for i in range(600)}, "acc": {str(i): float("nan") if i == 9 else 0.5
                                                                  for i in range(600)}}, {}),  # tiles
    ({}, {"curve": _g3([float(i) for i in range(600)]), "ints": _g3(list(range(600)))}),
])
def test_tricky_metrics_are_those_of_the_definition(metrics, tracked):
    attempts = [{"attempt_number": 1, "status": "SUCCESS", "end_time": "2024-01-01 00:00:01.000000",
                 "user_defined_metrics": tracked}]
    data = {"run_id": "r", "steps": {"s": _step("s", metrics=metrics, attempts=attempts)}}
    expected = rows_by_definition(run_from_json(data, "r.json"))
    flat = flatten_json(data)
    assert same(flat.metrics, expected[0]) and same(flat.run_metrics, expected[1])
    assert same(flat.metric_tiles, expected[2])


def test_a_series_of_dicts_is_a_series_per_field_in_step_order():
    flat = flatten_json({"run_id": "r", "steps": {"s": _step("s", metrics={
        "eggs": {"0": {"ham": 1.0, "spam": "a"}, "1": {"ham": 2.0, "spam": "b"}}})}})
    assert [row[2:6] for row in flat.metrics] == [
        ("eggs.ham", 0, 1.0, None), ("eggs.spam", 0, None, "a"), ("eggs.ham", 1, 2.0, None), ("eggs.spam", 1, None, "b")]
    assert [(row[1], row[5], row[6]) for row in flat.run_metrics] == [("eggs.ham", "numeric", 2), ("eggs.spam", "text", 2)]
