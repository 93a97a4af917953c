"""A pipeline with a flaky step that succeeds on its second attempt, and a step
that fails for good: the run ends FAIL with the error as the step's message.

Run it:  python examples/failing_pipeline.py [STORE]
"""

import sys

from runlog import Run, track_this

_calls = {"n": 0}


def flaky():
    _calls["n"] += 1
    track_this(attempt_seen=_calls["n"])
    if _calls["n"] == 1:
        raise ConnectionError("data source timed out")


def validate():
    track_this(rows_checked=120)
    raise ValueError("3 rows have a negative price")


def main(store=".run_log_store", run_id=None):
    run = Run.start(run_id=run_id, tag="failing-example", store=store)
    try:
        with run:
            run.retry("fetch", flaky, attempts=2)
            run.task("validate", validate)
    except ValueError as exc:
        print(f"pipeline failed as expected: {exc}")
    return run.run_id


if __name__ == "__main__":
    print("recorded run", main(*sys.argv[1:]))
