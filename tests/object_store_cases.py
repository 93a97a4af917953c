"""What the S3 and GCS tests share: the pipelines they write, the writers they start
and how they compare an index of object storage with one of local disk."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runlog import Run, RunLogStore, track_this
from runlog.models import StepLog

RUNLOG = Path(sys.executable).with_name("runlog")


def rows(db, sql):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def comparable(db):
    """The runs, steps and metrics of an index, in an order two indexes can be compared in."""
    steps = rows(db, "SELECT run_id, step_name, name, branch, step_type, status FROM steps ORDER BY 1, 2")
    metrics = rows(db, "SELECT run_id, step_name, key, step, value, kind FROM metrics ORDER BY 1, 2, 3, 4")
    runs = rows(db, "SELECT run_id, status, layout FROM runs ORDER BY 1")
    return runs, steps, metrics


def record_pipeline(store, layout):
    """A small pipeline with a series, a parallel step with branches and a map."""
    with Run.start(run_id=f"demo-{layout}", tag="exp", store=store, layout=layout, parameters={"lr": 0.1}) as run:
        with run.step("train"):
            for epoch in range(3):
                track_this(step=epoch, loss=1 / (epoch + 1))
        with run.parallel("par") as par:
            for side in ("left", "right"):
                with par.branch(side) as branch:
                    with branch.step("score"):
                        track_this(score=len(side))


def seed(store, n, layout="file-system", start=0):
    """Runs r<start>... r<start+n-1>, each one step tracking v = its number."""
    for i in range(start, start + n):
        with Run.start(run_id=f"r{i}", store=store, layout=layout) as run:
            with run.step("s"):
                track_this(v=i)


def put_steps_from_threads(url, threads=6, steps=12):
    """``steps`` steps put into one file-system run by ``threads`` threads at once (each
    with its own store): the run's step names afterwards, and the ones expected."""
    store = RunLogStore(f"{url}/fs")
    with Run.start(run_id="busy", store=store):
        pass

    def put(n):
        RunLogStore(f"{url}/fs").put_step("busy", StepLog(name=f"s{n}", internal_name=f"s{n}", status="SUCCESS"))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, range(steps)))
    return sorted(store.get_run("busy").steps), sorted(["success", *(f"s{n}" for n in range(steps))])


def exec_cmd(store, layout, run_id, step, value, endpoint=None):
    """A `runlog exec` command line of one step tracking score = value and a loss series."""
    cmd = [str(RUNLOG), "exec", "--store", store, "--layout", layout, "--run-id", run_id, "--step", step]
    if endpoint:
        cmd += ["--endpoint-url", endpoint]
    return cmd + ["--", f"export RUNNABLE_TRACK_score={value}; export RUNNABLE_TRACK_loss_STEP_1={value / 10}"]


def run_all(commands, cwd):
    """Start every command at once; all must succeed."""
    procs = [subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), errors
