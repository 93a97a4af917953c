"""`runlog export mlflow` against a real MLflow tracking server (one per session)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import fenced_blocks
from mlflow_server import REPO_ROOT, FlakyProxy, build_index, free_port, mlflow_server  # noqa: F401  (fixture)
from runlog.cli import cli
from runlog.mlflow.client import BATCH_BYTES, batches
from runlog.mlflow.naming import Mapper, MetricPoint, mlflow_key
from runlog.mlflow.plan import plan_run
from runlog.models import RunLog
from runlog.store import RunLogStore

mlflow = pytest.importorskip("mlflow", reason="the tests need full mlflow (pip install 'runlog-store[test]')")
from mlflow import MlflowClient  # noqa: E402
from mlflow.utils.validation import (  # noqa: E402
    _validate_metric_name,
    _validate_param_name,
    path_not_unique,
    validate_param_and_metric_name,
)

pytestmark = pytest.mark.xdist_group("mlflow")

# "emit api metrics" of legacy-track-this ended at 2026-11-26 09:29:11.835535 (read as UTC).
API_TS = 1795685351835
ENV_TS = 1795685352140


@pytest.fixture
def fixture_db(tmp_path, fixture_store) -> Path:
    return build_index(fixture_store, tmp_path / "runlog.db")


def run_export(*args: str, db: Path, uri: str | None = None):
    argv = ["export", "mlflow", *args, "--db", str(db), "--quiet"]
    if uri:
        argv += ["--tracking-uri", uri]
    return CliRunner().invoke(cli, argv)


def runs_of(client: MlflowClient, experiment: str) -> dict[str, object]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    by_id = {r.data.tags["runlog.run_id"]: r for r in runs}
    assert len(by_id) == len(runs), "two MLflow runs for one runlog run"
    return by_id


def history(client, run, key) -> list[tuple[int, float, int]]:
    return sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, key))


def point_count(client, run) -> int:
    return sum(len(client.get_metric_history(run.info.run_id, key)) for key in run.data.metrics)


# -- mapping rules (no server) --------------------------------------------------------


@pytest.mark.parametrize(
    "key, expected",
    [
        ("loss", "loss"),
        ("eggs.Ham", "eggs.Ham"),
        ("par.branch1.train/loss", "par.branch1.train/loss"),
        ("acc@top:5", "acc_top_5"),
        ("a//b", "a/_/b"),
        ("/abs", "_/abs"),
        ("../up", "_/up"),
        ("..x", "_.x"),
        ("trailing/", "trailing/_"),
        ("", "_"),
        ("x" * 250, "x" * 250),
        ("x" * 251, "x" * 241 + "-" + hashlib.sha256(b"x" * 251).hexdigest()[:8]),
    ],
)
def test_mlflow_key(key, expected):
    assert mlflow_key(key) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_mlflow_key_is_always_accepted_by_mlflow(text):
    key = mlflow_key(text)
    _validate_metric_name(key)  # MLflow's own checks: raise if refused
    _validate_param_name(key)
    assert 0 < len(key) <= 250
    assert mlflow_key(key) == key
    # MLflow's own check lets a trailing newline through (its regex ends in `$`); runlog replaces it.
    acceptable = validate_param_and_metric_name(text) and ":" not in text and "\n" not in text
    if len(text) <= 250 and acceptable and not path_not_unique(text):
        assert key == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "train", "par.b1.train", "a:b", "a_b"]),
                          st.sampled_from(["loss", "loss_0", "a:b", "a_b", "x" * 260, "x" * 261, "eval/loss"])),
                max_size=30))
def test_mapper_gives_each_value_its_own_name(owners):
    m = Mapper()
    names = {owner: m.metric_name(*owner) for owner in owners}
    assert len(set(names.values())) == len(names)
    assert {owner: m.metric_name(*owner) for owner in owners} == names


def test_mapper_first_step_keeps_the_plain_name():
    m = Mapper()
    assert m.metric_name("train", "loss") == "loss"
    assert m.metric_name("eval", "loss") == "eval/loss"
    assert m.metric_name("train", "loss") == "loss"
    assert m.metric_name("", "loss") == "loss-2"  # no step to prefix: numbered
    assert m.param("", "lr", None, "0.1") == ("lr", "0.1")
    assert m.param("train", "lr", 0, "x") == ("lr_0", "x")
    assert m.param("eval", "lr", 0, "y") == ("eval/lr_0", "y")
    assert m.metric_name("train", "acc:top") == "acc_top"
    assert m.renamed == [
        {"kind": "metric", "mlflow": "loss-2", "step_name": "", "key": "loss"},
        {"kind": "metric", "mlflow": "acc_top", "step_name": "train", "key": "acc:top"},
    ]


def test_long_param_value_is_cut_and_noted():
    m = Mapper()
    name, text = m.param("s", "blob", 3, "y" * 7000)
    assert (name, len(text)) == ("blob_3", 6000)
    assert m.note_tags() == {"runlog.truncated": '[{"param": "blob_3", "length": 7000, "kept": 6000}]'}


def test_batches_are_full_and_within_limits():
    params = {f"p{i}": "v" for i in range(250)}
    tags = {f"t{i}": "v" for i in range(150)}
    metrics = [MetricPoint("m", float(i), 0, i) for i in range(2500)]
    out = list(batches(params, tags, metrics))
    assert [(len(p), len(t), len(m)) for p, t, m in out] == [(100, 100, 800), (100, 50, 850), (50, 0, 850)]
    assert [k for p, _, _ in out for k, _ in p] == list(params)
    assert [m.step for _, _, ms in out for m in ms] == list(range(2500))


def test_batches_stay_under_the_request_size():
    params = {f"p{i}": "z" * 6000 for i in range(300)}
    tags = {f"t{i}": "z" * 8000 for i in range(100)}
    out = list(batches(params, tags, []))
    assert sum(len(p) for p, _, _ in out) == 300 and sum(len(t) for _, t, _ in out) == 100
    for p, t, _ in out:
        assert sum(len(k) + len(v) for k, v in p + t) < BATCH_BYTES


def test_plan_of_a_fixture(fixture_db):
    plan = plan_run(fixture_db, "legacy-track-this")
    assert plan.experiment == "legacy-demo"
    assert plan.status == "FINISHED"
    assert (plan.start_time_ms, plan.end_time_ms) == (1795685351834, 1795685352296)
    assert plan.params == {
        "eggs.Ham_0": "world", "eggs.Ham_1": "universe", "env_flag_0": "true", "env_word_0": "hello",
        "is_it_true_0": "false", "spam_0": "hello", "spam_1": "hey",
    }
    assert [m for m in plan.metrics if m.key in ("loss", "env_loss")] == [
        MetricPoint("loss", 0.9, API_TS, 0), MetricPoint("loss", 0.5, API_TS, 1), MetricPoint("loss", 0.2, API_TS, 2),
        MetricPoint("env_loss", 0.8, ENV_TS, 0), MetricPoint("env_loss", 0.3, ENV_TS, 2),
    ]
    assert plan.tags["mlflow.source.git.commit"] == "af336f59a247678ca8e4d4b9424e408b72fe74d7"
    assert plan.tags["runlog.run_id"] == "legacy-track-this"


def test_map_branches_sharing_a_key_are_prefixed(fixture_db):
    names = sorted({m.key for m in plan_run(fixture_db, "case4-branches-chunked").metrics if "chunk_score" in m.key})
    assert names == ["chunk_score", "map_step.2.inner/chunk_score", "map_step.3.inner/chunk_score"]


def test_dry_run_does_not_contact_mlflow(fixture_db):
    result = run_export("legacy-track-this", "no-such-run", "--dry-run", "--format", "json", db=fixture_db,
                        uri="http://127.0.0.1:9")
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert rows == [{
        "run_id": "legacy-track-this", "experiment": "legacy-demo", "status": "FINISHED", "metric_points": 10,
        "metrics": 7, "params": 7, "tags": 10, "renamed": 0, "truncated": 0,
    }]
    assert "error: run no-such-run is not in the index" in result.stderr


def test_selection_is_required(fixture_db):
    result = run_export(db=fixture_db, uri="http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "name the runs to export, or select them with --tag, --status or --all" in result.output


def test_missing_index_is_one_line(tmp_path):
    result = run_export("--all", db=tmp_path / "none.db", uri="http://127.0.0.1:9")
    assert result.exit_code == 2
    path = tmp_path / "none.db"
    assert result.output == (f"Error: no index at {path}: build it with `runlog ingest STORE --db {path}` "
                             "(STORE: a run-log folder such as .run_log_store, or a URL)\n")


def test_unreachable_server_is_one_line(fixture_db):
    port = free_port()
    result = run_export("--all", db=fixture_db, uri=f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot reach MLflow tracking server http://127.0.0.1:{port}: ")
    assert result.output.count("\n") == 1


def test_sqlite_uri_with_only_skinny_says_install_mlflow(fixture_db, tmp_path):
    # Full mlflow's store needs sqlalchemy/alembic/flask: hide them as mlflow-skinny lacks them.
    code = (
        "import sys; sys.modules['sqlalchemy'] = None; sys.modules['alembic'] = None; sys.modules['flask'] = None\n"
        "from runlog.cli import cli; cli(prog_name='runlog')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "export", "mlflow", "--all", "--db", str(fixture_db),
         "--tracking-uri", f"sqlite:///{tmp_path}/m.db"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: tracking URI sqlite:///{tmp_path}/m.db needs the full mlflow package (only mlflow-skinny "
        "is installed, which talks to http(s) servers): pip install mlflow\n"
    )


# -- against the server -----------------------------------------------------------------


MLFLOW_DOCS = REPO_ROOT / "docs" / "mlflow.md"  # the "Export to MLflow" page
DOC_URI = "http://127.0.0.1:5000"


def same_ids(text: str) -> str:
    """``text`` with every MLflow run id (32 hex digits) alike: the docs show one."""
    return re.sub(r"\b[0-9a-f]{32}\b", "<mlflow run id>", text)


def run_console_block(block: str, folder: Path, env: dict, uri: str) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in block.split("\n"):
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    for command, expected in commands:
        done = subprocess.run(["bash", "-c", command.replace(DOC_URI, uri)], cwd=folder, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        wanted = "\n".join(expected).replace(DOC_URI, uri)
        assert same_ids(done.stdout.rstrip("\n")) == same_ids(wanted), f"`{command}` printed:\n{done.stdout}"


def test_docs_run_as_shown_and_mlflow_has_the_fixtures(tmp_path, fixture_store, mlflow_server):
    """Every console and py block of the MLflow docs, in order, against the session server
    (the docs' http://127.0.0.1:5000 stands for it); then the fixtures are read back."""
    uri = mlflow_server.uri
    folder = tmp_path / "doc"
    folder.mkdir()
    fixture_store.rename(folder / ".run_log_store")
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", COLUMNS="200", PYTHONUNBUFFERED="1")
    for name in ("RUNLOG_DB", "MLFLOW_TRACKING_URI", "RUNLOG_EXPERIMENT_TRACKER"):
        env.pop(name, None)
    py_env = dict(env, MLFLOW_TRACKING_URI=uri, RUNLOG_EXPERIMENT_TRACKER="mlflow")
    blocks = fenced_blocks(MLFLOW_DOCS.read_text())
    assert sum(language == "console" for language, _ in blocks) >= 3
    for index, (language, block) in enumerate(blocks):
        if language == "console":
            run_console_block(block, folder, env, uri)
        elif language == "py":
            done = subprocess.run([sys.executable, "-c", block], cwd=folder, env=py_env, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            following = blocks[index + 1] if index + 1 < len(blocks) else ("", "")
            if following[0] == "text":
                assert done.stdout.rstrip("\n") == following[1].replace(DOC_URI, uri)

    client = MlflowClient(uri)
    names = {e.name for e in client.search_experiments()}
    assert {"legacy-demo", "magnus-demo", "study", "exp-a", "branches", "live-demo"} <= names
    assert sorted(runs_of(client, "magnus-demo")) == ["magnus-env-metrics", "magnus-env-metrics-chunked"]
    run = runs_of(client, "legacy-demo")["legacy-track-this"]
    assert run.info.run_name == "legacy-track-this"
    assert run.info.status == "FINISHED"
    assert (run.info.start_time, run.info.end_time) == (1795685351834, 1795685352296)
    assert history(client, run, "loss") == [(0, 0.9, API_TS), (1, 0.5, API_TS), (2, 0.2, API_TS)]
    assert history(client, run, "env_loss") == [(0, 0.8, ENV_TS), (2, 0.3, ENV_TS)]
    assert history(client, run, "int_answer") == [(0, 7.0, API_TS)]
    assert run.data.params == {
        "eggs.Ham_0": "world", "eggs.Ham_1": "universe", "env_flag_0": "true", "env_word_0": "hello",
        "is_it_true_0": "false", "spam_0": "hello", "spam_1": "hey",
    }
    tags = run.data.tags
    assert (tags["runlog.tag"], tags["runlog.status"], tags["runlog.export_complete"]) == ("legacy-demo", "SUCCESS", "true")
    assert tags["mlflow.source.git.commit"] == "af336f59a247678ca8e4d4b9424e408b72fe74d7"
    g3 = runs_of(client, "exp-a")["case2-metrics"]
    assert history(client, g3, "loss_curve") == [(i, v, 1795685261802) for i, v in enumerate([0.9, 0.61, 0.42, 0.33])]
    assert g3.data.params["data_file"] == "train.csv" and g3.data.params["doubled_rows"] == "200"
    # Exported twice (the docs run the same export again): still one point per step.
    assert point_count(client, runs_of(client, "magnus-demo")["magnus-env-metrics"]) == 5
    live = runs_of(client, "live-demo")["live-demo-1"]
    assert sorted(live.data.metrics) == ["evaluate/loss", "loss", "lr"]
    assert len(client.get_metric_history(live.info.run_id, "loss")) == 3


# -- synthetic runs ------------------------------------------------------------------------


def synthetic_run(run_id: str, tag: str, points: int, status: str = "SUCCESS", extra: dict | None = None) -> RunLog:
    """A run with two steps that both track ``loss`` (a collision) and a few odd values."""
    def step(name: str, minute: int, metrics: dict) -> dict:
        return {
            "name": name, "internal_name": name, "status": "SUCCESS", "step_type": "task",
            "attempts": [{
                "attempt_number": 1, "status": "SUCCESS",
                "start_time": f"2025-03-01 10:{minute:02d}:00.000000", "end_time": f"2025-03-01 10:{minute:02d}:30.250000",
            }],
            "user_defined_metrics": metrics,
        }

    train = {
        "loss": {str(i): 1.0 / (i + 1) for i in range(points)},
        "acc": {str(i): i / points for i in range(points)},
        "note": "first", "flag": True,
        **(extra or {}),
    }
    evaluate = {"loss": 0.125, "report": {"f1": 0.5, "labels": ["a", "b"]}}
    return RunLog.model_validate({
        "run_id": run_id, "tag": tag, "status": status, "dag_hash": "abc",
        "parameters": {"lr": 0.01, "model": "tiny"},
        "steps": {"train": step("train", 0, train), "evaluate": step("evaluate", 5, evaluate)},
    })


def synthetic_db(folder: Path, runs: list[RunLog]) -> Path:
    store = RunLogStore(folder / "store")
    for run in runs:
        store.create_run(run)
    return build_index(store.root, folder / "runlog.db")


def test_collisions_odd_values_and_statuses(tmp_path, mlflow_server):
    runs = [
        synthetic_run("odd-1", "t", 3, extra={"acc@top:5": 0.75, "blob": "b" * 7000, "nan": float("nan"),
                                               "big": float("inf"), "small": float("-inf")}),
        synthetic_run("odd-2", "t", 2, status="PROCESSING"),
        synthetic_run("odd-3", "t", 2, status="FAIL"),
    ]
    db = synthetic_db(tmp_path, runs)
    result = run_export("--all", "--experiment", "odd-values", "--workers", "3", db=db, uri=mlflow_server.uri)
    assert result.exit_code == 0, result.output
    client = MlflowClient(mlflow_server.uri)
    found = runs_of(client, "odd-values")
    assert {r: found[r].info.status for r in found} == {"odd-1": "FINISHED", "odd-2": "KILLED", "odd-3": "FAILED"}
    run = found["odd-1"]
    assert history(client, run, "loss") == [(0, 1.0, 1740823230250), (1, 0.5, 1740823230250), (2, 1 / 3, 1740823230250)]
    assert history(client, run, "evaluate/loss") == [(0, 0.125, 1740823530250)]
    assert history(client, run, "acc_top_5") == [(0, 0.75, 1740823230250)]
    assert math.isnan(client.get_metric_history(run.info.run_id, "nan")[0].value)
    # MLflow's SQL stores keep +/-inf as the largest finite doubles (as MLflow documents).
    assert history(client, run, "big") == [(0, sys.float_info.max, 1740823230250)]
    assert history(client, run, "small") == [(0, -sys.float_info.max, 1740823230250)]
    params = run.data.params
    assert (params["lr"], params["model"], params["note_0"], params["flag_0"]) == ("0.01", "tiny", "first", "true")
    assert params["report.labels_0"] == '["a","b"]'
    assert params["blob_0"] == "b" * 6000
    assert json.loads(run.data.tags["runlog.truncated"]) == [{"param": "blob_0", "length": 7000, "kept": 6000}]
    assert json.loads(run.data.tags["runlog.renamed"]) == [
        {"kind": "metric", "mlflow": "acc_top_5", "step_name": "train", "key": "acc@top:5"}
    ]


def test_changed_run_is_updated_and_conflicts_name_the_run(tmp_path, mlflow_server):
    uri = mlflow_server.uri
    db = synthetic_db(tmp_path / "a", [synthetic_run("grow-1", "t", 2, status="PROCESSING")])
    assert run_export("grow-1", "--experiment", "grow", db=db, uri=uri).exit_code == 0
    # The run went on: more points, finished. The next export brings MLflow up to date.
    db = synthetic_db(tmp_path / "b", [synthetic_run("grow-1", "t", 4)])
    again = run_export("grow-1", "--experiment", "grow", db=db, uri=uri)
    assert again.exit_code == 0, again.output
    # acc of step 1 was 1/2 of 2 points, is 1/4 of 4 now: logged again, later, so MLflow's value is the new one.
    assert again.stdout.splitlines()[-1] == (
        "1 run exported (1 resumed), 0 skipped as already in MLflow, 0 failed; 5 metric points and 0 params sent "
        "(1 changed point logged again)"
    )
    client = MlflowClient(uri)
    run = runs_of(client, "grow")["grow-1"]
    assert run.info.status == "FINISHED"
    assert [step for step, _, _ in history(client, run, "loss")] == [0, 1, 2, 3]
    acc = history(client, run, "acc")
    assert [(step, value) for step, value, _ in acc] == [(0, 0.0), (1, 0.25), (1, 0.5), (2, 0.5), (3, 0.75)]
    assert max(acc[1:3], key=lambda point: point[2])[1] == 0.25
    # A value that changed can not be changed in MLflow: a clear error naming the run and param.
    changed = synthetic_run("grow-1", "t", 4)
    changed.steps["train"].user_defined_metrics["note"] = "second"
    db = synthetic_db(tmp_path / "c", [changed])
    refused = run_export("grow-1", "--experiment", "grow", db=db, uri=uri)
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: run grow-1: param note_0 is 'first' in MLflow run {run.info.run_id} but 'second' in runlog; "
        "MLflow cannot change a param: export it again with `runlog export mlflow grow-1 --replace` "
        "(deletes that MLflow run and exports the run anew)\n"
    )


def test_deleted_experiment_is_a_clear_error(fixture_db, mlflow_server):
    client = MlflowClient(mlflow_server.uri)
    client.delete_experiment(client.create_experiment("gone-exp"))
    result = run_export("case1-simple", "--experiment", "gone-exp", db=fixture_db, uri=mlflow_server.uri)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: run case1-simple: MLflow experiment 'gone-exp' is deleted: restore it (mlflow experiments restore) "
        "or choose another with --experiment\n"
    )


def test_refused_request_names_the_run_and_the_others_go_on(fixture_db, mlflow_server):
    with sqlite3.connect(fixture_db) as conn:  # a clock before 1970: MLflow refuses the timestamp
        conn.execute("UPDATE metrics SET timestamp_ms = -5 WHERE run_id = 'case2-metrics'")
    result = run_export("case1-simple", "case2-metrics", "--experiment", "refused", "--copy", db=fixture_db, uri=mlflow_server.uri)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "1 run exported, 0 skipped as already in MLflow, 1 failed; 0 metric points and 2 params sent"
    assert result.stderr == (
        "error: run case2-metrics: MLflow refused the request (INVALID_PARAMETER_VALUE): Invalid value -5 for "
        "parameter 'metrics[0].timestamp' supplied: metric 'accuracy' (value=0.875). "
        "Timestamp must be a nonnegative long (64-bit integer)\n"
    )


def test_transient_errors_are_retried(fixture_db, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # keep the test quick
    with FlakyProxy(mlflow_server.uri, failures=2) as proxy:
        result = run_export("legacy-track-this", "--experiment", "flaky", "--copy", db=fixture_db, uri=proxy.uri)
    assert result.exit_code == 0, result.output
    assert proxy.failed == 2
    assert result.stdout.splitlines()[-1] == "1 run exported, 0 skipped as already in MLflow, 0 failed; 10 metric points and 7 params sent"
    client = MlflowClient(mlflow_server.uri)
    run = runs_of(client, "flaky")["legacy-track-this"]
    assert history(client, run, "loss") == [(0, 0.9, API_TS), (1, 0.5, API_TS), (2, 0.2, API_TS)]


# -- interrupted exports ----------------------------------------------------------------------

RUNS, POINTS = 16, 1200  # each run: 2 x 1200 + 1 points, so three log_batch calls


def export_process(db: Path, uri: str, experiment: str, workers: int = 1) -> subprocess.Popen:
    env = dict(os.environ, MLFLOW_HTTP_REQUEST_MAX_RETRIES="2", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1")
    return subprocess.Popen(
        [sys.executable, "-m", "runlog.cli", "export", "mlflow", "--all", "--db", str(db), "--tracking-uri", uri,
         "--experiment", experiment, "--copy", "--workers", str(workers), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )


def wait_for_runs(client: MlflowClient, experiment: str, process: subprocess.Popen, at_least: int = 1) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        found = client.get_experiment_by_name(experiment)
        if found and len(client.search_runs([found.experiment_id])) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"export ended or stalled before {at_least} runs appeared: {process.communicate()}")


def assert_complete(client: MlflowClient, experiment: str) -> None:
    found = runs_of(client, experiment)
    assert sorted(found) == sorted(f"bulk-{i:02d}" for i in range(RUNS))
    for run in found.values():
        assert run.data.tags["runlog.export_complete"] == "true"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == POINTS
        assert len(client.get_metric_history(run.info.run_id, "acc")) == POINTS
        assert len(client.get_metric_history(run.info.run_id, "evaluate/loss")) == 1
        assert run.data.params == {
            "lr": "0.01", "model": "tiny", "note_0": "first", "flag_0": "true", "report.labels_0": '["a","b"]'
        }


@pytest.fixture
def bulk_db(tmp_path) -> Path:
    return synthetic_db(tmp_path, [synthetic_run(f"bulk-{i:02d}", "bulk", POINTS) for i in range(RUNS)])


def test_killed_exporter_is_completed_by_the_next_export(bulk_db, mlflow_server):
    client = MlflowClient(mlflow_server.uri)
    process = export_process(bulk_db, mlflow_server.uri, "bulk-killed")
    wait_for_runs(client, "bulk-killed", process, at_least=2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    before = runs_of(client, "bulk-killed")
    assert sum(r.data.tags.get("runlog.export_complete") == "true" for r in before.values()) < RUNS, "not interrupted"

    result = run_export("--all", "--experiment", "bulk-killed", "--copy", db=bulk_db, uri=mlflow_server.uri)
    assert result.exit_code == 0, result.output
    assert_complete(client, "bulk-killed")
    again = run_export("--all", "--experiment", "bulk-killed", "--copy", db=bulk_db, uri=mlflow_server.uri)
    assert again.stdout.splitlines()[-1] == f"0 runs exported, {RUNS} skipped as already in MLflow, 0 failed; 0 metric points and 0 params sent"


def test_server_gone_mid_export_then_back(bulk_db, mlflow_server):
    client = MlflowClient(mlflow_server.uri)
    process = export_process(bulk_db, mlflow_server.uri, "bulk-server", workers=2)
    wait_for_runs(client, "bulk-server", process, at_least=2)
    mlflow_server.kill()
    try:
        stdout, stderr = process.communicate(timeout=90)
    finally:
        mlflow_server.start()
    assert process.returncode == 1
    lines = stderr.splitlines()
    assert lines and all(line.startswith("error: run bulk-") for line in lines), stderr
    assert any("unreachable" in line for line in lines), stderr
    failed = int(stdout.split(" skipped as already in MLflow, ")[1].split(" failed")[0])
    assert failed == len(lines) and failed > 0

    result = run_export("--all", "--experiment", "bulk-server", "--copy", db=bulk_db, uri=mlflow_server.uri)
    assert result.exit_code == 0, result.output
    assert_complete(client, "bulk-server")
