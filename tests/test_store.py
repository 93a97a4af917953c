"""The file store: both layouts, every generation, names, atomic and parallel writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from runlog.errors import BadRunLog, InvalidName, RunNotFound
from runlog.models import BranchLog, RunLog, StepAttempt, StepLog
from runlog.store import RunLogStore, atomic_write, read_run_folder, validate_name

LAYOUTS = ["file-system", "chunked-fs"]


def make_step(internal, status="SUCCESS", metrics=None, step_type="task"):
    return StepLog(
        name=internal.rsplit(".", 1)[-1],
        internal_name=internal,
        status=status,
        step_type=step_type,
        attempts=[] if step_type != "task" else [StepAttempt(status=status, start_time="2026-01-01 00:00:00.000001")],
        user_defined_metrics=metrics or {},
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_steps_and_branches_round_trip(tmp_path, layout):
    store = RunLogStore(tmp_path, layout)
    store.create_run(RunLog(run_id="r1", tag="t", status="PROCESSING"))
    store.put_step("r1", make_step("prep", metrics={"rows": 10}))
    store.put_step("r1", make_step("par", step_type="parallel", status="PROCESSING"))
    for branch in ("par.a", "par.b"):
        store.put_branch("r1", BranchLog(internal_name=branch, status="SUCCESS"))
        store.put_step("r1", make_step(f"{branch}.train", metrics={"loss": {"0": 1.0, "1": 0.5}}))
    store.put_step("r1", make_step("par", step_type="parallel"))  # status update keeps branches
    store.update_run("r1", status="SUCCESS")

    run = store.get_run("r1")
    assert run.status == "SUCCESS"
    assert [s.internal_name for s in run.iter_steps()] == ["prep", "par", "par.a.train", "par.b.train"]
    assert run.steps["par"].status == "SUCCESS"
    assert set(run.steps["par"].branches) == {"par.a", "par.b"}
    assert run.find_step("par.b.train").user_defined_metrics == {"loss": {"0": 1.0, "1": 0.5}}
    assert store.list_runs()[0].layout == layout


def test_reads_every_fixture_layout(fixture_store):
    store = RunLogStore(fixture_store)
    infos = {info.run_id: info for info in store.list_runs()}
    assert set(infos) == {
        "case1-simple", "case2-metrics", "case4-branches-chunked", "legacy-track-this",
        "magnus-env-metrics", "magnus-env-metrics-chunked",
    }
    assert infos["magnus-env-metrics-chunked"].layout == "chunked-fs"
    assert infos["case2-metrics"].tag == "exp-a"
    chunked = store.get_run("case4-branches-chunked")
    assert sorted(chunked.steps["map_step"].branches) == ["map_step.1", "map_step.2", "map_step.3"]
    assert chunked.find_step("parallel_step.branch1.score a").status == "SUCCESS"


def test_chunked_g1_newest_version_wins(fixture_store):
    folder = fixture_store / "magnus-env-metrics-chunked"
    newest = json.loads(next(folder.glob("StepLog-shell-*.json")).read_text())
    stale = dict(newest, status="FAIL", user_defined_metrics={"stale": 1})
    (folder / "StepLog-shell-1000000000000000000.json").write_text(json.dumps(stale))
    run = read_run_folder(folder)
    assert run.steps["shell"].status == "SUCCESS"
    assert "stale" not in run.steps["shell"].user_defined_metrics
    assert set(run.steps["parallel"].branches) == {"parallel.left", "parallel.right"}
    assert run.find_step("parallel.left.left_metrics").user_defined_metrics == {"left_score": 0.5}


BAD_NAMES = ["", "a/b", "a\\b", "..", "a..b", "x\x00y", "new\nline", "tab\tname", ".hidden", " padded", "x" * 201]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_bad_names_are_refused_on_write_and_read(tmp_path, layout, name):
    store = RunLogStore(tmp_path / "store", layout)
    with pytest.raises(InvalidName):
        store.create_run(RunLog(run_id=name))
    with pytest.raises(InvalidName):
        store.get_run(name)
    store.create_run(RunLog(run_id="ok"))
    with pytest.raises(InvalidName):
        store.put_step("ok", make_step(name or "x/" ))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_validate_name_error_is_clear():
    with pytest.raises(InvalidName, match=r"invalid run_id '\.\./etc': must not contain '/'"):
        validate_name("../etc")


def test_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(RunNotFound, match=r"no run 'nope' in"):
        RunLogStore(tmp_path).get_run("nope")


def test_existing_run_is_not_overwritten(tmp_path):
    store = RunLogStore(tmp_path)
    store.create_run(RunLog(run_id="r", tag="first"))
    with pytest.raises(Exception, match="already exists"):
        store.create_run(RunLog(run_id="r", tag="second"))
    assert store.get_run("r").tag == "first"


@pytest.mark.parametrize(
    "content, message",
    [(b"", "is empty"), (b"{not json", "is not JSON (line 1, column 2"), (b"\xff\xfe", "is not UTF-8"), (b"[1]", "not a run log")],
)
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(BadRunLog) as info:
        RunLogStore(tmp_path).get_run("bad")
    assert message in str(info.value)
    assert "bad.json" in str(info.value) and "\n" not in str(info.value)


def test_symlink_out_of_the_store_is_not_followed(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text(RunLog(run_id="outside").to_json())
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / "link.json").symlink_to(outside)
    (store_dir / "loop.json").symlink_to(store_dir / "loop.json")
    assert RunLogStore(store_dir).list_runs() == []


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "f.json"
    for i in range(5):
        atomic_write(target, json.dumps({"i": i}))
    assert json.loads(target.read_text()) == {"i": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


WRITER = textwrap.dedent(
    """
    import sys
    from runlog.models import StepLog, StepAttempt, RunLog, BranchLog
    from runlog.store import RunLogStore
    store = RunLogStore(sys.argv[1], sys.argv[2])
    if not store.exists("crash"):
        store.create_run(RunLog(run_id="crash", status="PROCESSING"))
        store.put_step("crash", StepLog(name="par", internal_name="par", step_type="parallel"))
        store.put_branch("crash", BranchLog(internal_name="par.b"))
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        metrics = {"loss": {str(k): 1 / (k + 1) for k in range(i % 300)}, "i": i, "pad": "x" * (i % 5000)}
        store.put_step("crash", StepLog(name="s", internal_name="par.b.s", user_defined_metrics=metrics,
                                        attempts=[StepAttempt(status="PROCESSING")]))
        store.update_run("crash", tag=str(i))
    """
)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_writer_killed_mid_write_leaves_readable_files(tmp_path, layout):
    """SIGKILL a process that rewrites a run as fast as it can, 25 times per layout:
    every file parses and the run reads whole after each kill."""
    store_dir = tmp_path / "store"
    seen = set()
    for round_ in range(25):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store_dir), layout], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.02 + (round_ % 7) * 0.013)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for path in store_dir.rglob("*.json"):
            json.loads(path.read_text())  # never torn
        run = RunLogStore(store_dir).get_run("crash")
        step = run.find_step("par.b.s")
        if step is not None:
            metrics = step.user_defined_metrics
            assert metrics["pad"] == "x" * (metrics["i"] % 5000)
            assert len(metrics["loss"]) == metrics["i"] % 300
            seen.add(metrics["i"])
        assert run.status == "PROCESSING"
    assert len(seen) > 1, "the writer never got far enough to be killed mid-way"


PARALLEL_WRITER = textwrap.dedent(
    """
    import sys
    from runlog import Run, RunLogStore, branch_scope, track_this
    store_dir, layout, branch = sys.argv[1], sys.argv[2], sys.argv[3]
    run = Run.attach("par-run", store=RunLogStore(store_dir, layout))
    with branch_scope(run, "fan." + branch) as scope:
        for n in range(3):
            with scope.step(f"s{n}"):
                for i in range(20):
                    track_this(step=i, value=i * 10 + n)
    """
)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_parallel_processes_writing_branches_lose_nothing(tmp_path, layout):
    from runlog import Run

    store_dir = tmp_path / "store"
    n_branches = 8
    with Run.start(run_id="par-run", store=store_dir, layout=layout) as run:
        with run.parallel("fan"):
            procs = [
                subprocess.Popen([sys.executable, "-c", PARALLEL_WRITER, str(store_dir), layout, f"b{i}"])
                for i in range(n_branches)
            ]
            assert [p.wait(timeout=120) for p in procs] == [0] * n_branches
    result = RunLogStore(store_dir).get_run("par-run")
    assert result.status == "SUCCESS"
    branches = result.steps["fan"].branches
    assert sorted(branches) == sorted(f"fan.b{i}" for i in range(n_branches))
    for name, branch in branches.items():
        assert branch.status == "SUCCESS"
        assert sorted(branch.steps) == sorted([f"{name}.s0", f"{name}.s1", f"{name}.s2", f"{name}.success"])
        for n in range(3):
            metrics = branch.steps[f"{name}.s{n}"].user_defined_metrics
            assert metrics["value"] == {str(i): i * 10 + n for i in range(20)}
