"""The seed's step-wise example: track the same key at several increments.

Run it:  python examples/experiment_tracking_step.py [STORE]
"""

import sys

from pydantic import BaseModel

from runlog import Run, track_this


class EggsModel(BaseModel):
    ham: str


def emit_metrics():
    track_this(step=0, spam="hello")
    track_this(step=1, spam="hey")
    track_this(step=0, eggs=EggsModel(ham="world"))
    track_this(step=1, eggs=EggsModel(ham="universe"))
    track_this(answer=42.0)
    track_this(is_it_true=False)


def train(epochs=5):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 0.6
        track_this(step=epoch, loss=round(loss, 4), accuracy=round(1 - loss / 2, 4))


def main(store=".run_log_store", run_id=None, tag="step-example"):
    with Run.start(run_id=run_id, tag=tag, store=store, parameters={"epochs": 5}) as run:
        run.task("Emit Metrics", emit_metrics)
        run.task("train", train, parameters={"epochs": 5})
    return run.run_id


if __name__ == "__main__":
    print("recorded run", main(*sys.argv[1:]))
