"""Round trip: generated run logs -> files (both layouts) -> ingest -> `runlog query` gives the same values."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runlog.cli import cli

NAMES = st.from_regex(r"[a-z][a-z0-9 _-]{0,8}[a-z0-9]", fullmatch=True)
KEYS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="."), min_size=1, max_size=8)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.one_of(FLOATS, st.integers(-(10**15), 10**15), st.booleans(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=6))


def expected_row(run_id, step, key, step_no, value):
    """What the index must hold for one scalar: (run_id, step_name, key, step, value, value_text, kind)."""
    if isinstance(value, bool):
        return (run_id, step, key, step_no, None, "true" if value else "false", "bool")
    if isinstance(value, float) and math.isnan(value):
        return (run_id, step, key, step_no, None, "NaN", "numeric")
    if isinstance(value, (int, float)):
        number = float(value)
        text = "Infinity" if number == math.inf else "-Infinity" if number == -math.inf else number
        return (run_id, step, key, step_no, text, None, "numeric")
    return (run_id, step, key, step_no, None, value, "text")


@st.composite
def g12_metrics(draw):
    """Step-level metrics as runnable <= 0.5 and magnus store them; returns (metrics, points)."""
    metrics, points = {}, []
    for key in draw(st.lists(KEYS, max_size=4, unique=True)):
        steps = draw(st.lists(st.integers(0, 50), min_size=1, max_size=4, unique=True))
        nested = draw(st.booleans())
        values = [draw(SCALARS) for _ in steps]
        stored = [{"sub": v} if nested else v for v in values]
        full_key = f"{key}.sub" if nested else key
        points += [(full_key, s, v) for s, v in zip(steps, values)]
        metrics[key] = stored[0] if steps == [0] else {str(s): v for s, v in zip(steps, stored)}
    return metrics, points


@st.composite
def g3_metrics(draw):
    """Attempt-level metrics as runnable 0.6+ stores them; returns (metrics, points)."""
    metrics, points = {}, []
    for key in draw(st.lists(KEYS, max_size=4, unique=True)):
        if draw(st.booleans()):
            curve = draw(st.lists(st.one_of(FLOATS, st.integers(-1000, 1000)), min_size=1, max_size=5))
            metrics[key] = {"kind": "metric", "value": curve}
            points += [(key, i, v) for i, v in enumerate(curve)]
        else:
            value = draw(SCALARS)
            metrics[key] = {"kind": "metric", "value": value}
            points.append((key, 0, value))
    return metrics, points


@st.composite
def run_logs(draw):
    runs, expected = [], []
    for run_id in draw(st.lists(NAMES, min_size=1, max_size=3, unique=True)):
        steps = {}
        for name in draw(st.lists(NAMES, min_size=1, max_size=3, unique=True)):
            g3 = draw(st.booleans())
            metrics, points = draw(g3_metrics() if g3 else g12_metrics())
            attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2026-01-01 00:00:00.000000",
                       "end_time": "2026-01-01 00:00:01.000000"}
            step = {"name": name, "internal_name": name, "status": "SUCCESS", "step_type": "task", "attempts": [attempt]}
            if g3:
                attempt["user_defined_metrics"] = metrics
            else:
                step["user_defined_metrics"] = metrics
            steps[name] = step
            expected += [expected_row(run_id, name, k, s, v) for k, s, v in points]
        tag = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=5))
        status = draw(st.sampled_from(["SUCCESS", "FAIL", "PROCESSING"]))
        layout = draw(st.sampled_from(["file-system", "chunked-fs"]))
        runs.append(({"run_id": run_id, "tag": tag, "status": status, "steps": steps}, layout))
    return runs, expected


def write_run(store_dir: Path, data: dict, layout: str) -> None:
    """Write the files as runnable/magnus do (Python's json, so NaN and Infinity stay)."""
    if layout == "file-system":
        (store_dir / f"{data['run_id']}.json").write_text(json.dumps(data, indent=4))
        return
    folder = store_dir / data["run_id"]
    folder.mkdir()
    (folder / "RunLog.json").write_text(json.dumps({**data, "steps": {}}))
    for version, step in enumerate(data["steps"].values(), 1_700_000_000_000_000_000):
        (folder / f"StepLog-{step['internal_name']}-{version}.json").write_text(json.dumps(step))


def query(db, sql):
    result = CliRunner().invoke(cli, ["query", sql, "--db", str(db), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [tuple(row.values()) for row in json.loads(result.stdout)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_logs())
def test_generated_runs_round_trip_through_the_index(generated):
    runs, expected = generated
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "store"
        store_dir.mkdir()
        for data, layout in runs:
            write_run(store_dir, data, layout)
        db = Path(tmp) / "runlog.db"
        result = CliRunner().invoke(cli, ["ingest", str(store_dir), "--db", str(db)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        got = query(db, "SELECT run_id, step_name, key, step, value, value_text, kind FROM metrics")
        assert sorted(got, key=repr) == sorted(expected, key=repr)
        assert sorted(query(db, "SELECT run_id, tag, status FROM runs")) == sorted(
            (d["run_id"], d["tag"], d["status"]) for d, _ in runs)
        # ingesting again changes nothing
        again = CliRunner().invoke(cli, ["ingest", str(store_dir), "--db", str(db)], catch_exceptions=False)
        assert again.stdout.startswith(f"0 runs ingested, {len(runs)} unchanged")
        assert sorted(query(db, "SELECT run_id, step_name, key, step, value, value_text, kind FROM metrics"), key=repr) == sorted(got, key=repr)
