"""Realistic synthetic run logs, in every layout and generation, for the benchmarks.

    python -m bench.generate OUT [--runs 500] [--steps 10] [--keys 10] [--increments 100]

The default ("large") set holds runs x steps x keys x increments = 5,000,000 metric
points. Runs cycle through the formats: seed-shape file-system (g1/g2), seed-shape
chunked-fs with versioned StepLog/BranchLog chunks, and runnable 0.6+ (g3)
file-system and chunked-fs with typed per-attempt metrics (list curves). Every fifth
step is a parallel step whose branches hold the tracked steps; one key per step is
non-numeric (text, bool or JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

FORMATS = ("seed-file-system", "seed-chunked-fs", "g3-file-system", "g3-chunked-fs")
START = datetime(2025, 1, 1, 9, 0, 0)


@dataclass(frozen=True)
class Shape:
    runs: int = 500
    steps: int = 10
    keys: int = 10
    increments: int = 100

    @property
    def points(self) -> int:
        return self.runs * self.steps * self.keys * self.increments


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _series(rng: random.Random, key_index: int, increments: int) -> list:
    if key_index == 0:  # the non-numeric key of each step
        kind = rng.choice(("text", "bool", "json"))
        if kind == "text":
            return [f"phase-{i % 7}" for i in range(increments)]
        if kind == "bool":
            return [i % 2 == 0 for i in range(increments)]
        return [{"lr": round(0.1 / (i + 1), 6), "layers": [64, 32]} for i in range(increments)]
    base = rng.uniform(0.5, 2.0)
    return [round(base * math.exp(-i / (increments / 3)) + rng.uniform(0, 0.01), 6) for i in range(increments)]


def _attempt(start: datetime, seconds: float, g3: bool, metrics: dict | None = None) -> dict:
    end = start + timedelta(seconds=seconds)
    attempt = {
        "attempt_number": 1,
        "start_time": _time(start),
        "end_time": _time(end),
        "status": "SUCCESS",
        "message": "",
    }
    if g3:
        attempt.update(input_parameters={}, output_parameters={}, user_defined_metrics=metrics or {}, retry_indicator="",
                       code_identities=[_identity()])
    else:
        attempt.update(duration=str(end - start), parameters={})
    return attempt


def _identity() -> dict:
    return {
        "code_identifier": "60868c6603bc41f5a984214328fe4a1d76c8cb00",
        "code_identifier_type": "git",
        "code_identifier_dependable": True,
        "code_identifier_url": "https://example.invalid/bench.git",
        "code_identifier_message": "",
    }


def _task(internal: str, start: datetime, series: dict[str, list], g3: bool) -> dict:
    if g3:
        metrics = {k: {"kind": "metric", "value": v} for k, v in series.items()}
        extra = {}
    else:
        metrics = None
        extra = {"code_identities": [_identity()],
                 "user_defined_metrics": {k: {str(i): x for i, x in enumerate(v)} for k, v in series.items()}}
    step = {
        "name": internal.rsplit(".", 1)[-1],
        "internal_name": internal,
        "status": "SUCCESS",
        "step_type": "task",
        "message": "",
        "mock": False,
        **({"code_identities": extra["code_identities"]} if not g3 else {}),
        "attempts": [_attempt(start, 1.5, g3, metrics)],
        **({"user_defined_metrics": extra["user_defined_metrics"]} if not g3 else {}),
        "branches": {},
        "data_catalog": [],
    }
    return step


def make_run(index: int, shape: Shape, fmt: str, rng: random.Random) -> dict:
    """One run log as a dict (nested, file-system form)."""
    g3 = fmt.startswith("g3")
    run_id = f"bench-{index:06d}"
    start = START + timedelta(minutes=index)
    steps: dict[str, dict] = {}
    for s in range(shape.steps):
        moment = start + timedelta(seconds=2 * s)
        series = {f"key_{k}": _series(rng, k, shape.increments) for k in range(shape.keys)}
        if s % 5 == 4:  # a parallel step; its two branches split the keys
            name = f"par{s}"
            branches = {}
            for b, part in enumerate((0, 1)):
                branch = f"{name}.branch{b}"
                keys = {k: v for i, (k, v) in enumerate(series.items()) if i % 2 == part}
                branches[branch] = {"internal_name": branch, "status": "SUCCESS",
                                    "steps": {f"{branch}.fit": _task(f"{branch}.fit", moment, keys, g3)}}
            steps[name] = {"name": name, "internal_name": name, "status": "SUCCESS", "step_type": "parallel",
                           "message": "", "mock": False, "attempts": [], "branches": branches, "data_catalog": []}
            if not g3:
                steps[name].update(code_identities=[_identity()], user_defined_metrics={})
        else:
            steps[f"step{s}"] = _task(f"step{s}", moment, series, g3)
    run = {
        "run_id": run_id,
        "dag_hash": f"{index:040x}",
        "tag": f"experiment-{index % 5}",
        "status": "FAIL" if index % 17 == 0 else "SUCCESS",
        "steps": steps,
        "parameters": {"lr": {"kind": "json", "value": 0.01 * (index % 10 + 1)}} if g3 else {"lr": 0.01 * (index % 10 + 1)},
        "run_config": {"pipeline_file": "bench.yaml", "tag": f"experiment-{index % 5}", "run_id": run_id,
                       # the seed's shape (runnable 0.1-0.5): an executor with placeholders, so g2
                       **({} if g3 else {"executor": {"service_name": "local", "placeholders": {}}})},
    }
    if g3:
        run["job"] = None
    else:
        run.update(use_cached=False, original_run_id="")
    return run


def write_run(folder: Path, run: dict, fmt: str, version: int) -> None:
    """Write one run in the layout ``fmt`` names."""
    if fmt.endswith("file-system"):
        (folder / f"{run['run_id']}.json").write_text(json.dumps(run))
        return
    run_dir = folder / run["run_id"]
    run_dir.mkdir(exist_ok=True)
    if fmt.startswith("g3"):  # RunLog.json holds root steps; one BranchLog-<name>.json per branch
        head = json.loads(json.dumps(run))
        for step in head["steps"].values():
            for name, branch in step["branches"].items():
                (run_dir / f"BranchLog-{name}.json").write_text(json.dumps(branch))
            step["branches"] = {}
        (run_dir / "RunLog.json").write_text(json.dumps(head))
        return
    head = dict(run, steps={})
    (run_dir / "RunLog.json").write_text(json.dumps(head))

    def chunks(steps: dict) -> None:
        for step in steps.values():
            (run_dir / f"StepLog-{step['internal_name']}-{version:019d}.json").write_text(json.dumps(dict(step, branches={})))
            for name, branch in step["branches"].items():
                (run_dir / f"BranchLog-{name}-{version:019d}.json").write_text(json.dumps(dict(branch, steps={})))
                chunks(branch["steps"])

    chunks(run["steps"])


def generate(out: Path, shape: Shape = Shape(), seed: int = 1, formats: tuple[str, ...] = FORMATS) -> int:
    """Write ``shape.runs`` runs under ``out`` and return the metric points they hold."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for index in range(shape.runs):
        fmt = formats[index % len(formats)]
        write_run(out, make_run(index, shape, fmt, rng), fmt, version=1_700_000_000_000_000_000 + index)
    return shape.points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=Shape.runs)
    parser.add_argument("--steps", type=int, default=Shape.steps)
    parser.add_argument("--keys", type=int, default=Shape.keys)
    parser.add_argument("--increments", type=int, default=Shape.increments)
    args = parser.parse_args()
    shape = Shape(args.runs, args.steps, args.keys, args.increments)
    points = generate(args.out, shape)
    print(f"wrote {shape.runs} runs, {points:,} metric points, to {args.out}")


if __name__ == "__main__":
    main()
