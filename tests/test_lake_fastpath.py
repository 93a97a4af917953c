"""The lake's fast path (JSON straight to rows) gives exactly the rows of the model
path (RunLog -> runlog.index.flatten), for every real fixture and generated runs of
every format, and hands anything unusual to the model path."""

from __future__ import annotations

import json
import math
import random

import pytest

pytest.importorskip("pyarrow", reason="the lake needs pyarrow: pip install 'runlog-store[lake]'")

from bench.generate import FORMATS, Shape, make_run  # noqa: E402
from conftest import fixture_sources  # noqa: E402
from runlog.index.flatten import flatten_run  # noqa: E402
from runlog.lake.fastpath import Unusual, flatten_json  # noqa: E402
from runlog.store import read_run_folder  # noqa: E402
from runlog.store.jsonio import run_from_json  # noqa: E402

TABLES = ("steps", "attempts", "params", "catalog", "code_identities", "run_metrics", "run_params")


def same(a, b) -> bool:
    """Equal rows, NaN equal to NaN and -0.0 told apart from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def assert_same_rows(data: dict) -> None:
    fast = flatten_json(data, layout="file-system", source_path="s.json", ingested_at="t")
    slow = flatten_run(run_from_json(data, "s.json"), layout="file-system", source_path="s.json", ingested_at="t")
    assert same(fast.run, slow.run)
    for table in TABLES:
        assert same(sorted(getattr(fast, table), key=repr), sorted(getattr(slow, table), key=repr)), table
    metric_rows = list(zip(*fast.metrics))
    assert fast.points == len(slow.metrics)
    assert same(sorted(metric_rows, key=lambda r: r[:4]), sorted(slow.metrics, key=lambda r: r[:4]))


def fixture_dicts() -> list[tuple[str, dict]]:
    found = []
    for source in fixture_sources():
        if source.is_dir():  # a chunked run, put together: the dict a file-system run would hold
            found.append((source.name, read_run_folder(source).to_json_dict()))
        else:
            found.append((source.name, json.loads(source.read_text())))
    return found


@pytest.mark.parametrize("name, data", fixture_dicts(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_fixture_gives_the_same_rows(name, data):
    try:
        assert_same_rows(data)
    except Unusual:
        pytest.fail(f"{name}: a real run log should take the fast path")


@pytest.mark.parametrize("fmt", FORMATS)
def test_generated_runs_of_every_format_give_the_same_rows(fmt):
    rng = random.Random(3)
    for index in range(6):
        assert_same_rows(make_run(index, Shape(6, 6, 4, 12), fmt, rng))


HOSTILE = [None, True, 0, 1, -1, 2**70, 1.5, float("nan"), float("inf"), -0.0, "", "x", "2024-01-01 00:00:00",
           [], [1.0, 2.0], [1, "a"], [["a", 1]], {}, {"0": 1.0}, {"01": 1.0, "1": 2.0}, {"2": 1.0, "1": 2.0},
           {"kind": "metric", "value": [0.5, float("nan")]}, {"kind": "json", "value": 3}, {"a": {"b": True}},
           {"0": "t", "1": "u"}, {"0": True}, {"0": {"x": 1.0}}]


def paths(value, trail=()):
    """Every (path, value) inside nested dicts and lists."""
    yield trail, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, trail + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, trail + (index,))


def mutated(data: dict, rng: random.Random) -> dict:
    data = json.loads(json.dumps(data))
    trail, _ = rng.choice([p for p in paths(data) if p[0]])
    parent = data
    for step in trail[:-1]:
        parent = parent[step]
    parent[trail[-1]] = rng.choice(HOSTILE)
    return data


def test_unusual_shapes_go_to_the_model_path_or_give_the_same_rows():
    """A replaced field anywhere: the fast path gives the model's rows, or says Unusual
    (never rows for a log the models refuse)."""
    from runlog.errors import BadRunLog

    rng = random.Random(11)
    bases = [d for _, d in fixture_dicts()] + [make_run(i, Shape(4, 5, 3, 5), f, rng) for i, f in enumerate(FORMATS)]
    taken = unusual = 0
    for _ in range(300):
        data = mutated(rng.choice(bases), rng)
        try:
            fast = flatten_json(data, layout="file-system", source_path="s.json", ingested_at="t")
        except Unusual:
            unusual += 1
            continue
        try:
            run_from_json(data, "s.json")
        except BadRunLog as exc:
            pytest.fail(f"the fast path took a log the models refuse ({exc}): {json.dumps(data)[:300]}")
        assert fast is not None
        assert_same_rows(data)
        taken += 1
    assert taken > 100 and unusual > 25  # both ways were exercised
