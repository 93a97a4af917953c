"""`runlog export mlflow` interrupted again and again: the MLflow server SIGKILLed
mid-export (a dedicated server, restarted on the same backend database), and the
exporter SIGKILLed, in turns; the next export completes with one MLflow run per
runlog run and every metric point exactly once (counted through MlflowClient).

tests/test_mlflow_export.py has the single-interruption cases on the shared server.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlflow_server import REPO_ROOT, MlflowServer, build_index
from runlog.models import RunLog
from runlog.store import RunLogStore

mlflow = pytest.importorskip("mlflow", reason="the tests need full mlflow (pip install 'runlog-store[test]')")
from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.xdist_group("mlflow")

RUNS, POINTS, EXPERIMENT = 6, 1100, "crash-export"


def make_db(folder: Path) -> Path:
    store = RunLogStore(folder / "store")
    for i in range(RUNS):
        attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2025-03-01 10:00:00.000000",
                   "end_time": "2025-03-01 10:00:30.250000"}
        metrics = {"loss": {str(s): 1.0 / (s + 1) for s in range(POINTS)}, "acc": {str(s): s / POINTS for s in range(POINTS)},
                   "note": f"run {i}"}
        store.create_run(RunLog.model_validate({
            "run_id": f"crash-{i:02d}", "tag": "t", "status": "SUCCESS", "parameters": {"lr": 0.01 * i},
            "steps": {"train": {"name": "train", "internal_name": "train", "status": "SUCCESS", "step_type": "task",
                                "attempts": [attempt], "user_defined_metrics": metrics}},
        }))
    return build_index(store.root, folder / "runlog.db")


def exporter(db: Path, uri: str) -> subprocess.Popen:
    env = dict(os.environ, MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0",
               MLFLOW_HTTP_REQUEST_TIMEOUT="10")
    return subprocess.Popen(
        [sys.executable, "-m", "runlog.cli", "export", "mlflow", "--all", "--db", str(db), "--tracking-uri", uri,
         "--experiment", EXPERIMENT, "--workers", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )


def mlflow_runs(client: MlflowClient) -> list:
    found = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([found.experiment_id], max_results=1000) if found else []


def progress(client: MlflowClient) -> tuple[int, int]:
    runs = mlflow_runs(client)
    return len(runs), sum(r.data.tags.get("runlog.export_complete") == "true" for r in runs)


def wait_for_progress(client: MlflowClient, process: subprocess.Popen) -> bool:
    """True once this export created or completed an MLflow run; False if it ended first."""
    start = progress(client)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        now = progress(client)
        if now[0] > start[0] or now[1] > start[1]:
            return True
        time.sleep(0.05)
    return False


def test_server_and_exporter_killed_in_turns(tmp_path):
    kill_in_turns(tmp_path, ["exporter", "server"])


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_server_and_exporter_killed_in_turns_soak(tmp_path):
    kill_in_turns(tmp_path, ["server", "exporter"] * 8)


def kill_in_turns(tmp_path: Path, victims: list[str]) -> None:
    db = make_db(tmp_path)
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    rng = random.Random(6)
    try:
        client = MlflowClient(server.uri)
        interrupted = 0
        for victim in victims:
            process = exporter(db, server.uri)
            if not wait_for_progress(client, process):
                stdout, stderr = process.communicate(timeout=60)
                assert (process.returncode, stderr) == (0, ""), stderr
                break  # this export finished before the kill: the final checks below still apply
            time.sleep(rng.uniform(0.0, 0.4))
            if victim == "server":
                server.kill()
                stdout, stderr = process.communicate(timeout=180)
                server.start()  # same port, same backend database
                if process.returncode == 0:
                    continue  # finished just before the kill
                assert process.returncode == 1, stderr
                lines = stderr.splitlines()
                assert lines and all(line.startswith("error: run crash-") for line in lines), stderr
                assert "Traceback" not in stderr
            else:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
            interrupted += 1
        assert interrupted >= 1

        final = exporter(db, server.uri)
        stdout, stderr = final.communicate(timeout=300)
        assert (final.returncode, stderr) == (0, ""), stderr
        runs = mlflow_runs(client)
        by_id = {r.data.tags["runlog.run_id"]: r for r in runs}
        assert len(runs) == len(by_id) == RUNS, "a runlog run has two MLflow runs"
        for run_id, found in by_id.items():
            i = int(run_id.split("-")[1])
            assert found.data.tags["runlog.export_complete"] == "true"
            for key, values in (("loss", [1.0 / (s + 1) for s in range(POINTS)]), ("acc", [s / POINTS for s in range(POINTS)])):
                history = client.get_metric_history(found.info.run_id, key)
                assert sorted((m.step, m.value) for m in history) == list(enumerate(values)), f"{run_id} {key}"
            assert found.data.params == {"lr": str(0.01 * i), "note_0": f"run {i}"}
        again = exporter(db, server.uri)
        stdout, stderr = again.communicate(timeout=300)
        assert stdout.splitlines()[-1] == f"0 runs exported, {RUNS} skipped as already in MLflow, 0 failed; 0 metric points and 0 params sent"
    finally:
        server.stop()
