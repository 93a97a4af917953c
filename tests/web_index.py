"""The index the web tests browse: the real runs, one failed copy of them, the sweep of
examples/sweep.py, and one long run whose loss has 5,000 steps with a spike, so that
its chart is downsampled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import copy_fixture_runs

FAILED_RUN = "case2-diverged"
LONG_RUN = "long-curve"
LONG_STEPS = 5_000
SPIKE_STEP, SPIKE = 3_210, 40.0
DIP_STEP, DIP = 4_321, -3.0


def add_failed_run(store: Path) -> None:
    """A copy of case2-metrics whose train step failed, with a NaN in its loss curve."""
    run = json.loads((store / "case2-metrics.json").read_text())
    run["run_id"] = FAILED_RUN
    run["status"] = "FAIL"
    run["parameters"]["doubled_rows"]["value"] = 100
    train = run["steps"]["train"]
    train["status"] = "FAIL"
    train["message"] = "loss diverged"
    attempt = train["attempts"][-1]
    attempt["status"] = "FAIL"
    attempt["message"] = "loss diverged"
    attempt["user_defined_metrics"]["loss_curve"]["value"] = [1.2, 0.95, float("nan")]
    attempt["user_defined_metrics"]["accuracy"]["value"] = 0.5
    (store / f"{FAILED_RUN}.json").write_text(json.dumps(run))


def long_loss(step: int) -> float:
    """A decaying loss with one spike up and one dip below zero."""
    if step == SPIKE_STEP:
        return SPIKE
    if step == DIP_STEP:
        return DIP
    return round(0.2 + math.exp(-step / 800) + 0.01 * math.sin(step), 6)


def add_long_run(store: Path) -> None:
    """A seed-format run with a 5,000-step ``loss`` and a once-recorded ``f1``."""
    attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2026-11-30 12:00:00.000000",
               "end_time": "2026-11-30 13:00:00.000000", "parameters": {"lr": 0.5, "batch": 16}}
    train = {"name": "train", "internal_name": "train", "status": "SUCCESS", "step_type": "task",
             "attempts": [attempt],
             "user_defined_metrics": {"loss": {str(s): long_loss(s) for s in range(LONG_STEPS)}, "f1": 0.61}}
    run = {"run_id": LONG_RUN, "tag": "long", "status": "SUCCESS", "steps": {"train": train}}
    (store / f"{LONG_RUN}.json").write_text(json.dumps(run))


def write_store(root: Path) -> Path:
    store = copy_fixture_runs(root / "store", sweep=True)
    add_failed_run(store)
    add_long_run(store)
    return store


def build_web_index(root: Path) -> Path:
    """``root/runlog.db``, built by ``runlog.index.ingest`` from :func:`write_store`."""
    from runlog.index import ingest

    report = ingest([write_store(root)], root / "runlog.db")
    assert report.failed == 0, report.errors
    return root / "runlog.db"
