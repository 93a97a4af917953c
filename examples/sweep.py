"""A small hyperparameter sweep, written as run logs with fixed times and seeded noise,
so that every copy of it holds the same numbers (the docs' examples use it).

Six runs ``sweep-01`` .. ``sweep-06`` try lr 0.1, 0.01 and 0.001 with batch 32 and 64:
each records a ``loss`` and an ``accuracy`` curve over 10 epochs, and its parameters
in the step's attempt. A seventh, ``sweep-ensemble``, trains two models in parallel
branches that both track ``loss``: its second branch finishes first, and still the
run's ``loss`` is the first branch's (run-level names follow run order, not time).

Run it:  python examples/sweep.py [STORE]
"""

import math
import random
import sys
from datetime import datetime, timedelta

from runlog import RunLog, RunLogStore

START = datetime(2026, 11, 30, 9, 0, 0)
TIME = "%Y-%m-%d %H:%M:%S.%f"


def curve(lr: float, batch: int, seed: int) -> tuple[list[float], list[float]]:
    """Loss and accuracy per epoch: faster with a larger lr (which overfits after epoch 5),
    noisier with a small batch."""
    rng = random.Random(seed)
    speed = {0.1: 0.55, 0.01: 0.3, 0.001: 0.08}[lr]
    floor = {0.1: 0.18, 0.01: 0.12, 0.001: 0.35}[lr] + (0.03 if batch == 64 else 0.0)
    overfit = 0.015 if lr == 0.1 else 0.0
    noise = 0.02 if batch == 32 else 0.008
    loss = [round(floor + (1.0 - floor) * math.exp(-speed * e) + overfit * max(0, e - 5) + rng.uniform(-noise, noise), 4)
            for e in range(10)]
    accuracy = [round(min(0.99, 1.0 - 0.8 * value), 4) for value in loss]
    return loss, accuracy


def task(name: str, start: datetime, seconds: float, metrics: dict, parameters: dict | None = None,
         internal: str | None = None) -> dict:
    return {
        "name": name, "internal_name": internal or name, "status": "SUCCESS", "step_type": "task",
        "attempts": [{"attempt_number": 1, "status": "SUCCESS", "start_time": start.strftime(TIME),
                      "end_time": (start + timedelta(seconds=seconds)).strftime(TIME),
                      "parameters": parameters or {}}],
        "user_defined_metrics": metrics,
    }


def series(values: list[float]) -> dict:
    return {str(step): value for step, value in enumerate(values)}


def sweep_run(number: int, lr: float, batch: int) -> RunLog:
    start = START + timedelta(minutes=10 * number)
    loss, accuracy = curve(lr, batch, seed=number)
    train = task("train", start, 60 + 5 * number, {"loss": series(loss), "accuracy": series(accuracy)},
                 {"lr": lr, "batch": batch, "optimizer": "sgd"})
    return RunLog.model_validate({
        "run_id": f"sweep-{number:02d}", "tag": "sweep", "status": "SUCCESS", "steps": {"train": train},
    })


def ensemble_run() -> RunLog:
    start = START + timedelta(hours=2)
    fit = {}
    for branch, (lr, seconds) in {"b1": (0.1, 90.0), "b2": (0.01, 30.0)}.items():  # b2 ends first
        loss, _ = curve(lr, 32, seed=10 + len(fit))
        fit[f"fit.{branch}"] = {"internal_name": f"fit.{branch}", "status": "SUCCESS", "steps": {
            f"fit.{branch}.train": task("train", start, seconds, {"loss": series(loss)}, {"lr": lr},
                                        internal=f"fit.{branch}.train")}}
    return RunLog.model_validate({
        "run_id": "sweep-ensemble", "tag": "sweep", "status": "SUCCESS", "steps": {
            "fit": {"name": "fit", "internal_name": "fit", "status": "SUCCESS", "step_type": "parallel",
                    "branches": fit}}})


def main(store: str = ".run_log_store") -> list[str]:
    store = RunLogStore(store)
    runs = [sweep_run(i, lr, batch) for i, (lr, batch) in
            enumerate(((lr, batch) for lr in (0.1, 0.01, 0.001) for batch in (32, 64)), start=1)]
    runs.append(ensemble_run())
    for run in runs:
        if not store.exists(run.run_id):
            store.create_run(run)
    return [run.run_id for run in runs]


if __name__ == "__main__":
    print("recorded", ", ".join(main(*sys.argv[1:])))
