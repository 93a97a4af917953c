"""Writers killed with SIGKILL at random moments leave every file whole, and every
run log equal to a state that was written before the kill."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from runlog.store import RunLogStore

# The writer records a deterministic pipeline over and over (a new run each time):
# root steps and a parallel step with branches, with track_this calls. What any step
# holds is therefore known: either nothing yet (PROCESSING) or its full metrics.
WRITER = textwrap.dedent(
    """
    import os, sys
    from runlog import Run, track_this
    store, layout = sys.argv[1], sys.argv[2]
    n = 0
    while True:
        n += 1
        with Run.start(run_id=f"run-{os.getpid()}-{n}", store=store, layout=layout, tag="crash") as run:
            if n == 1:  # the first run exists: every round leaves at least one run behind
                print("ready", flush=True)
            for k in range(3):
                with run.step(f"s{k}"):
                    for j in range(k + 2):
                        track_this(step=j, v=k * 100 + j)
            with run.parallel("par") as par:
                for b in range(2):
                    with par.branch(f"b{b}") as branch:
                        with branch.step("fit"):
                            track_this(score=b, curve=[b, b + 1])
    """
)


def expected_metrics(internal_name: str) -> dict:
    if internal_name in ("s0", "s1", "s2"):
        k = int(internal_name[1:])
        return {"v": {str(j): k * 100 + j for j in range(k + 2)}}
    if internal_name.startswith("par.b") and internal_name.endswith(".fit"):
        b = int(internal_name.split(".")[1][1:])
        return {"score": b, "curve": [b, b + 1]}
    return {}


def check_store(store_dir) -> int:
    for path in store_dir.rglob("*.json"):
        json.loads(path.read_text())  # every file parses: nothing torn
    store = RunLogStore(store_dir)
    runs = store.list_runs()
    for info in runs:
        run = store.get_run(info.run_id)
        assert run.status in ("PROCESSING", "SUCCESS"), run.status
        for step in run.iter_steps():
            if step.status == "PROCESSING":
                assert step.user_defined_metrics == {}, step.internal_name
            else:
                assert step.status == "SUCCESS"
                assert step.user_defined_metrics == expected_metrics(step.internal_name), step.internal_name
                assert all(a.end_time for a in step.attempts)
        if run.status == "SUCCESS":
            assert [s.internal_name for s in run.iter_steps()] == [
                "s0", "s1", "s2", "par", "par.b0.fit", "par.b0.success", "par.b1.fit", "par.b1.success", "success",
            ]
    return len(runs)


def kill_rounds(store_dir, layout: str, rounds: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    counts = []
    for _ in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store_dir), layout], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append(check_store(store_dir))
    return counts


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_sigkill_writers_100_times_per_layout(tmp_path, layout):
    counts = kill_rounds(tmp_path / "store", layout, rounds=100, seed=hash(layout) & 0xFFFF)
    assert counts[-1] >= 100  # every round left at least its first run behind
    crashed = [i.run_id for i in RunLogStore(tmp_path / "store").list_runs() if i.status == "PROCESSING"]
    assert len(crashed) >= 50, "most rounds should have been killed mid-run"


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_sigkill_writers_soak(tmp_path, layout):
    kill_rounds(tmp_path / "store", layout, rounds=1000, seed=7)
