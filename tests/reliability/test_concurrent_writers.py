"""Many processes writing at once lose nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from runlog import Run
from runlog.store import RunLogStore

BRANCH_WRITER = textwrap.dedent(
    """
    import sys
    from runlog import Run, RunLogStore, branch_scope, track_this
    store_dir, branch = sys.argv[1], sys.argv[2]
    run = Run.attach("wide", store=RunLogStore(store_dir, "chunked-fs"))
    with branch_scope(run, "fan." + branch) as scope:
        for n in range(4):
            with scope.step(f"s{n}"):
                for i in range(10):
                    track_this(step=i, value=i + n)
    """
)

RUN_WRITER = textwrap.dedent(
    """
    import sys
    from runlog import Run, track_this
    store_dir, who = sys.argv[1], sys.argv[2]
    for r in range(5):
        with Run.start(run_id=f"{who}-{r}", store=store_dir, layout="file-system") as run:
            for n in range(4):
                with run.step(f"s{n}"):
                    track_this(value=r * 10 + n)
    """
)


def test_16_processes_write_branches_of_one_chunked_run(tmp_path):
    store_dir = tmp_path / "store"
    with Run.start(run_id="wide", store=store_dir, layout="chunked-fs") as run:
        with run.parallel("fan"):
            procs = [subprocess.Popen([sys.executable, "-c", BRANCH_WRITER, str(store_dir), f"b{i}"]) for i in range(16)]
            assert [p.wait(timeout=300) for p in procs] == [0] * 16
    result = RunLogStore(store_dir).get_run("wide")
    assert result.status == "SUCCESS"
    branches = result.steps["fan"].branches
    assert len(branches) == 16
    for name, branch in branches.items():
        assert branch.status == "SUCCESS"
        assert len(branch.steps) == 5  # four steps and the branch's success step
        for n in range(4):
            assert branch.steps[f"{name}.s{n}"].user_defined_metrics == {"value": {str(i): i + n for i in range(10)}}


def test_4_processes_write_separate_runs_of_one_file_system_store(tmp_path):
    store_dir = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, "-c", RUN_WRITER, str(store_dir), f"w{i}"]) for i in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0] * 4
    store = RunLogStore(store_dir)
    infos = store.list_runs()
    assert len(infos) == 20
    for info in infos:
        run = store.get_run(info.run_id)
        r = int(info.run_id.split("-")[1])
        assert run.status == "SUCCESS"
        assert {k: s.user_defined_metrics for k, s in run.steps.items() if k != "success"} == {
            f"s{n}": {"value": r * 10 + n} for n in range(4)
        }
