"""Recording runs through the API and `runlog exec`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlog import Run, RunLogStore, track_this
from runlog.cli import cli

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"
RUNLOG = str(Path(sys.executable).with_name("runlog"))


def shape(value):
    """The structure of a JSON value: keys of objects (recursively), element shapes of lists."""
    if isinstance(value, dict):
        return {key: shape(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [shape(inner) for inner in value[:1]]
    return type(value).__name__ if value is not None else "null"


def load_example(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "seed, example",
    [("seed_step_run_log.json", "experiment_tracking_step"), ("seed_env_run_log.json", None)],
)
def test_seed_run_logs_are_reproduced_in_shape(tmp_path, monkeypatch, seed, example):
    expected = json.loads((DATA / seed).read_text())
    store = tmp_path / ".run_log_store"
    monkeypatch.chdir(tmp_path)
    if example:
        module = load_example(example)

        def only_seed_step(store=store):
            with Run.start(run_id=expected["run_id"], store=store) as run:
                run.task("Emit Metrics", module.emit_metrics)

        only_seed_step()
    else:  # the env example is a shell step, recorded by `runlog exec`
        script = (
            'export runnable_TRACK_spam="hello"\n'
            "export RUNNABLE_TRACK_eggs='{\"ham\": \"world\"}'\n"
            'export RUNNABLE_TRACK_answer="42.0"\n'
        )
        done = subprocess.run(
            [RUNLOG, "exec", "--store", str(store), "--run-id", expected["run_id"], "--step", "shell", "--", script],
            cwd=tmp_path, capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr
        with Run.attach(expected["run_id"], store=store):
            pass  # closes the run: adds the terminal success step
    written = json.loads((store / f"{expected['run_id']}.json").read_text())
    for key in ("run_config",):
        assert set(written[key]) == set(expected[key])
        written.pop(key), expected.pop(key)
    code_identity = expected["steps"][next(iter(expected["steps"]))]["code_identities"]
    for step in written["steps"].values():  # the test may run outside a git checkout
        step["code_identities"] = step["code_identities"] or code_identity
    assert shape(written) == shape(expected)
    for name, step in expected["steps"].items():
        assert written["steps"][name]["user_defined_metrics"] == step["user_defined_metrics"]
        assert [c["name"] for c in written["steps"][name]["data_catalog"]] == [c["name"] for c in step["data_catalog"]]


def test_failing_step_fails_the_run_and_a_retry_is_a_new_attempt(tmp_path):
    store = tmp_path / "s"
    load_example("failing_pipeline").main(store=store, run_id="f1")
    run = RunLogStore(store).get_run("f1")
    assert run.status == "FAIL"
    fetch, validate = run.steps["fetch"], run.steps["validate"]
    assert [a.status for a in fetch.attempts] == ["FAIL", "SUCCESS"]
    assert [a.attempt_number for a in fetch.attempts] == [1, 2]
    assert fetch.attempts[0].message == "ConnectionError: data source timed out"
    assert fetch.status == "SUCCESS"
    assert validate.status == "FAIL" and validate.message == "ValueError: 3 rows have a negative price"
    assert validate.user_defined_metrics == {"rows_checked": 120}
    assert list(run.steps) == ["fetch", "validate", "fail"]


def test_a_crashed_run_reads_as_processing(tmp_path):
    store = tmp_path / "s"
    run = Run.start(run_id="c1", store=store)
    step = run.step("train")
    step.__enter__()
    track_this(loss=1.0)  # the process "dies" here: no exit
    got = RunLogStore(store).get_run("c1")
    assert got.status == "PROCESSING" and got.steps["train"].status == "PROCESSING"
    step.__exit__(None, None, None)


def test_parameters_code_identity_and_catalog(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://example.invalid/x.git"], check=True)
    (repo / "f").write_text("x")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    with Run.start(run_id="p1", store=tmp_path / "s", parameters={"lr": 0.1}) as run:
        with run.step("train", parameters={"epochs": 3}) as step:
            step.add_catalog("model.bin", b"weights")
    got = RunLogStore(tmp_path / "s").get_run("p1")
    assert got.parameters == {"lr": 0.1}
    train = got.steps["train"]
    assert train.attempts[0].parameters == {"epochs": 3}
    identity = train.code_identities[0]
    assert (identity.code_identifier, identity.code_identifier_url, identity.code_identifier_dependable) == (
        commit, "https://example.invalid/x.git", True,
    )
    entry = train.data_catalog[0]
    assert entry.data_hash == hashlib.sha256(b"weights").hexdigest()
    assert (tmp_path / ".catalog" / "p1" / "model.bin").read_bytes() == b"weights"


def test_exec_records_exit_code_output_and_env(tmp_path):
    store = tmp_path / "store"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["exec", "--store", str(store), "--run-id", "e1", "--tag", "t", "--step", "shell", "--",
         'echo out; echo err >&2; export RUNNABLE_TRACK_loss_STEP_1=0.5; export RUNNABLE_TRACK_loss=0.9; exit 4'],
    )
    assert result.exit_code == 4
    run = RunLogStore(store).get_run("e1")
    step = run.steps["shell"]
    assert run.status == "FAIL" and run.tag == "t"
    assert step.status == "FAIL" and step.message == "command exited with code 4"
    assert step.user_defined_metrics == {"loss": {"0": 0.9, "1": 0.5}}
    log = tmp_path / ".catalog" / "e1" / "shell.execution.log"
    assert log.read_text() == "out\nerr\n"
    assert step.data_catalog[0].data_hash == hashlib.sha256(b"out\nerr\n").hexdigest()
    assert step.data_catalog[0].name == "shell.execution.log"


def test_exec_python_child_track_this_lands_in_the_step(tmp_path):
    store = tmp_path / "store"
    code = "from runlog import track_this\nfor i in range(3): track_this(step=i, acc=i / 10)"
    done = subprocess.run(
        [RUNLOG, "exec", "--store", str(store), "--run-id", "e2", "--step", "py", "--", sys.executable, "-c", code],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    run = RunLogStore(store).get_run("e2")
    assert run.status == "SUCCESS"
    assert run.steps["py"].user_defined_metrics == {"acc": {"0": 0.0, "1": 0.1, "2": 0.2}}


PARTS_RULE = "use NAME or COMPOSITE.BRANCH.NAME (an odd number of non-empty dot-separated parts)"


@pytest.mark.parametrize("run_id, step, message", [
    ("../x", "s", "invalid run_id '../x': must not contain '/'"),
    ("r", "../s", "invalid step name '../s': must not contain '/'"),
    ("r", "a..b", "invalid step name 'a..b': must not contain '..'"),
    ("r", ".s", "invalid step name '.s': must not start with '.', nor start or end with a space"),
    ("r", "s ", "invalid step name 's ': must not start with '.', nor start or end with a space"),
    ("r", "a.b", f"invalid step name 'a.b': {PARTS_RULE}"),
    ("r", "a.b.", f"invalid step name 'a.b.': {PARTS_RULE}"),
])
def test_exec_bad_names_are_usage_errors_naming_the_name_and_the_rule(tmp_path, run_id, step, message):
    result = CliRunner().invoke(cli, ["exec", "--store", str(tmp_path / "s"), "--run-id", run_id, "--step", step,
                                      "--", "true"])
    assert (result.exit_code, result.output) == (2, f"Error: {message}\n")
    assert not (tmp_path / "s").exists()


def test_exec_bad_layout(tmp_path):
    result = CliRunner().invoke(cli, ["exec", "--store", str(tmp_path / "s"), "--run-id", "r", "--step", "s",
                                      "--layout", "zip", "--", "true"])
    assert result.exit_code == 2
    assert "Invalid value for '--layout'" in result.output
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("layout", ["chunked-fs", "file-system"])
def test_parallel_exec_processes_lose_nothing(tmp_path, layout):
    store = tmp_path / "store"
    n = 8
    procs = [
        subprocess.Popen(
            [RUNLOG, "exec", "--store", str(store), "--layout", layout, "--run-id", "px",
             "--step", f"fan.b{i}.work", "--", f"export RUNNABLE_TRACK_score={i}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i in range(n)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    run = RunLogStore(store).get_run("px")
    fan = run.steps["fan"]
    assert sorted(fan.branches) == sorted(f"fan.b{i}" for i in range(n))
    for i in range(n):
        branch = fan.branches[f"fan.b{i}"]
        assert branch.status == "SUCCESS"
        assert branch.steps[f"fan.b{i}.work"].user_defined_metrics == {"score": i}
    assert fan.status == "SUCCESS" and run.status == "SUCCESS"


def test_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = subprocess.run([sys.executable, str(EXAMPLES / "parallel_branches.py"), str(tmp_path / "s"), "3"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("recorded run ")[1].strip()
    run = RunLogStore(tmp_path / "s").get_run(run_id)
    assert run.status == "SUCCESS" and len(run.steps["search"].branches) == 3
    env = dict(os.environ, RUNLOG=RUNLOG, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(EXAMPLES / "experiment_tracking_env.sh"), str(tmp_path / "s"), "env-1"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    metrics = RunLogStore(tmp_path / "s").get_run("env-1").steps["shell"].user_defined_metrics
    assert metrics == {"spam": "hello", "eggs": {"ham": "world"}, "answer": 42.0, "loss": {"0": 0.9, "1": 0.5, "2": 0.2}}
