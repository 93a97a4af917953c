"""The seed's API example: track values, a pydantic model among them, in one step.

Run it:  python examples/experiment_tracking_api.py [STORE]
"""

import sys

from pydantic import BaseModel, Field

from runlog import Run, track_this


class EggsModel(BaseModel):
    ham: str = Field(alias="Ham")  # dumped by alias: {"Ham": "world"}


def emit_metrics():
    print("emitting metrics")
    track_this(spam="hello")
    track_this(eggs=EggsModel(Ham="world"))
    track_this(answer=42.0)
    track_this(is_it_true=False)


def main(store=".run_log_store", run_id=None):
    with Run.start(run_id=run_id, tag="api-example", store=store) as run:
        run.task("Emit Metrics", emit_metrics)
    return run.run_id


if __name__ == "__main__":
    print("recorded run", main(*sys.argv[1:]))
