"""MLflow credentials from the environment never reach outputs, run logs, the index or MLflow.

MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD and a tracking URI with
user:password@ are set for: `runlog export mlflow` to an unreachable and to a real
server, the live tracker (a pipeline with RUNLOG_EXPERIMENT_TRACKER=mlflow) against
both, and `runlog exec`. Every stdout/stderr, every file of the store, the SQLite
index (its bytes, WAL included) and the MLflow runs' tags and params are searched
for each secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlflow_server import REPO_ROOT, free_port, mlflow_server  # noqa: F401  (fixture)

mlflow = pytest.importorskip("mlflow", reason="the tests need full mlflow (pip install 'runlog-store[test]')")

TOKEN, USER, PASSWORD = "tok-SECRET-7f3a9c", "user-SECRET-2b8d", "pw-SECRET-5e1f0a"
URI_USER, URI_PASSWORD = "uriuser-SECRET-91c", "uripw-SECRET-44d2"
SECRETS = (TOKEN, USER, PASSWORD, URI_USER, URI_PASSWORD)

PIPELINE = textwrap.dedent(
    """
    import sys
    from runlog import Run, track_this
    with Run.start(run_id=sys.argv[2], store=sys.argv[1], tag="secrets") as run:
        with run.step("train"):
            for i in range(3):
                track_this(step=i, loss=1 / (i + 1))
            track_this(note="hello")
    print("pipeline done", run.run_log.status)
    """
)


def secret_env(uri: str) -> dict[str, str]:
    host = uri.split("://", 1)[1]
    env = dict(os.environ, MLFLOW_TRACKING_TOKEN=TOKEN, MLFLOW_TRACKING_USERNAME=USER, MLFLOW_TRACKING_PASSWORD=PASSWORD,
               MLFLOW_TRACKING_URI=f"http://{URI_USER}:{URI_PASSWORD}@{host}",
               MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    return env


def run(args: list[str], env: dict[str, str], outputs: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=180)
    outputs += [done.stdout, done.stderr]
    return done


def runlog(*args: str) -> list[str]:
    return [sys.executable, "-m", "runlog.cli", *args]


def assert_no_secret(outputs: list[str], *folders: Path) -> None:
    for text in outputs:
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into output: {text[-500:]}"
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for secret in SECRETS:
                    assert secret.encode() not in data, f"{secret} leaked into {path}"


def record_and_index(tmp_path: Path, env: dict[str, str], outputs: list[str], prefix: str) -> tuple[Path, Path]:
    """A pipeline with the live tracker, and `runlog exec` steps; then an index of them."""
    store, db = tmp_path / "store", tmp_path / "runlog.db"
    tracked = dict(env, RUNLOG_EXPERIMENT_TRACKER="mlflow")
    done = run([sys.executable, "-c", PIPELINE, str(store), f"{prefix}-api"], tracked, outputs)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("pipeline done SUCCESS\n")
    done = run(runlog("exec", "--run-id", f"{prefix}-exec", "--step", "shell", "--tag", "secrets", "--store", str(store),
                      "--", "export RUNNABLE_TRACK_score=0.5; echo trained"), tracked, outputs)
    assert (done.returncode, done.stdout) == (0, "trained\n"), done.stderr
    done = run(runlog("ingest", str(store), "--db", str(db), "-q"), env, outputs)
    assert done.returncode == 0, done.stderr
    return store, db


def test_unreachable_server_leaks_nothing(tmp_path):
    outputs: list[str] = []
    env = secret_env(f"http://127.0.0.1:{free_port()}")
    store, db = record_and_index(tmp_path, env, outputs, "gone")
    assert any("MLflow tracker, run gone-api: MLflow tracking server http://***@127.0.0.1:" in o for o in outputs)
    done = run(runlog("export", "mlflow", "--all", "--db", str(db), "-q"), env, outputs)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot reach MLflow tracking server http://***@127.0.0.1:"), done.stderr
    assert done.stderr.count("\n") == 1
    assert_no_secret(outputs, store, tmp_path)


def test_real_server_leaks_nothing(tmp_path, mlflow_server):  # noqa: F811
    from mlflow import MlflowClient

    outputs: list[str] = []
    env = secret_env(mlflow_server.uri)
    store, db = record_and_index(tmp_path, env, outputs, "live")
    # the live tracker sent both runs to experiment "secrets" already: a second copy, on purpose
    done = run(runlog("export", "mlflow", "--all", "--db", str(db), "-q", "--experiment", "secrets-export", "--copy"),
               env, outputs)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("2 runs exported, "), done.stdout
    client = MlflowClient(mlflow_server.uri)
    texts = []
    for name in ("secrets", "secrets-export"):
        experiment = client.get_experiment_by_name(name)
        for found in client.search_runs([experiment.experiment_id]):
            texts += [repr(found.data.tags), repr(found.data.params), found.info.run_name or ""]
    assert any("'runlog.run_id': 'live-api'" in t for t in texts)
    assert_no_secret(outputs + texts, store, tmp_path)
