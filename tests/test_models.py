"""Models: every fixture reads, round-trips losslessly, and the published schema is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, fixture_sources
from runlog.models import RunLog, as_parameter, parse_duration, run_log_json_schema_text
from runlog.store import read_run_file, read_run_folder


def read_source(path: Path) -> RunLog:
    return read_run_folder(path) if path.is_dir() else read_run_file(path)


@pytest.mark.parametrize("source", fixture_sources(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_round_trips(source):
    run = read_source(source)
    again = RunLog.model_validate(json.loads(run.to_json()))
    assert again == run
    assert again.to_json_dict() == run.to_json_dict()


@pytest.mark.parametrize(
    "source, generation",
    [
        ("magnus-0.5-file-system/magnus-env-metrics.json", "g1"),
        ("magnus-0.5-chunked-fs/magnus-env-metrics-chunked", "g1"),
        ("v0.5-file-system/legacy-track-this.json", "g2"),
        ("v0.50-file-system/case2-metrics.json", "g3"),
        ("v0.50-chunked-fs/case4-branches-chunked", "g3"),
    ],
)
def test_generation_detected(fixtures_dir, source, generation):
    assert read_source(fixtures_dir / source).generation() == generation


@pytest.mark.parametrize("source", [p for p in fixture_sources() if p.suffix == ".json"], ids=lambda p: p.name)
def test_file_system_fixture_keeps_every_key(source):
    """Nothing read is lost: every key of the original is in what runlog writes back."""
    original = json.loads(source.read_text())
    written = read_run_file(source).to_json_dict()

    def missing(a, b, path=""):
        if isinstance(a, dict):
            for key, value in a.items():
                assert key in b, f"{path}/{key} lost"
                missing(value, b[key], f"{path}/{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), path
            for i, (x, y) in enumerate(zip(a, b)):
                missing(x, y, f"{path}[{i}]")
        else:
            assert a == b, path

    missing(original, written)


def test_unknown_keys_are_kept_and_written_back():
    data = {
        "run_id": "r",
        "future_field": {"x": 1},
        "steps": {
            "s": {
                "name": "s",
                "internal_name": "s",
                "colour": "blue",
                "attempts": [{"attempt_number": 1, "gpu": "a100"}],
            }
        },
    }
    written = RunLog.model_validate(data).to_json_dict()
    assert written["future_field"] == {"x": 1}
    assert written["steps"]["s"]["colour"] == "blue"
    assert written["steps"]["s"]["attempts"][0]["gpu"] == "a100"


def test_runlog_writes_the_seeds_shape():
    written = RunLog(run_id="r").to_json_dict()
    assert list(written) == [
        "run_id", "dag_hash", "use_cached", "tag", "original_run_id", "status", "steps", "parameters", "run_config",
    ]


@pytest.mark.parametrize(
    "value, kind, inner",
    [
        ({"kind": "metric", "value": 0.5, "description": 0.5}, "metric", 0.5),
        ({"kind": "json", "value": [1, 2]}, "json", [1, 2]),
        ({"kind": "object", "value": "model.dill"}, "object", "model.dill"),
        ({"kind": "weird", "value": 1}, "raw", {"kind": "weird", "value": 1}),
        (3, "raw", 3),
    ],
)
def test_parameters_of_every_generation(value, kind, inner):
    parameter = as_parameter(value)
    assert (parameter.kind, parameter.value) == (kind, inner)


@pytest.mark.parametrize(
    "text, seconds", [("0:00:00.008643", 0.008643), ("1:02:03", 3723.0), ("2 days, 0:00:01", 172801.0), ("", None)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_published_json_schema_is_current():
    published = (REPO / "schema" / "runlog.schema.json").read_text()
    assert published == run_log_json_schema_text(), "schema/runlog.schema.json is stale: run `make schema`"


def test_mixed_naive_and_aware_times_compare_as_utc():
    run = RunLog.model_validate({"run_id": "r", "steps": {"s": {"name": "s", "internal_name": "s", "attempts": [
        {"start_time": "2026-01-01 10:00:00.000000", "end_time": "2026-01-01T10:00:05+00:00"},
        {"start_time": "2026-01-01T11:00:00+01:00", "end_time": "2026-01-01 10:00:09.500000"},
    ]}}})
    start, end = run.times()
    assert (start.isoformat(), end.isoformat()) == ("2026-01-01T10:00:00", "2026-01-01T10:00:09.500000")
    assert run.steps["s"].attempts[0].duration_seconds() == 5.0


def test_non_finite_values_are_written_as_json_literals():
    run = RunLog.model_validate({"run_id": "r", "parameters": {"x": float("nan"), "y": float("-inf")}})
    assert '"x": NaN' in run.to_json() and '"y": -Infinity' in run.to_json()
