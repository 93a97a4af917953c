"""Parallel branches of one chunked-fs run, each written by its own process.

The parent records the composite step; every branch runs in a separate process
that attaches to the run and writes only its own branch files, so no process
can overwrite another's work.

Run it:  python examples/parallel_branches.py [STORE] [BRANCHES]
"""

import multiprocessing
import sys

from runlog import Run, RunLogStore, branch_scope, track_this


def train_branch(store, run_id, branch, lr):
    run = Run.attach(run_id, store=RunLogStore(store, "chunked-fs"))
    with branch_scope(run, f"search.{branch}") as scope:
        with scope.step("train"):
            loss = 1.0
            for epoch in range(4):
                loss *= 1 - lr
                track_this(step=epoch, loss=round(loss, 4))
            track_this(lr=lr)


def main(store=".run_log_store", branches=4, run_id=None):
    branches = int(branches)
    with Run.start(run_id=run_id, tag="parallel-example", store=store, layout="chunked-fs") as run:
        with run.parallel("search"):
            ctx = multiprocessing.get_context("spawn")
            workers = [
                ctx.Process(target=train_branch, args=(store, run.run_id, f"lr{i}", 0.1 * (i + 1)))
                for i in range(branches)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        run.task("collect", lambda: track_this(best_lr=0.1 * branches))
    return run.run_id


if __name__ == "__main__":
    print("recorded run", main(*sys.argv[1:]))
