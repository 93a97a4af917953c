"""MLflow as the baseline: its SQLite store loaded with ``log_batch``, and a real local server.

The points MLflow gets are read from a runlog index, so both sides hold the same values.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

BATCH = 1000  # MLflow's limit of metrics per log_batch call


@dataclass
class Loaded:
    """What went into MLflow: its run id per runlog run, points logged and time in log_batch."""

    client: object
    experiment_id: str
    run_ids: dict[str, str] = field(default_factory=dict)
    points: int = 0
    calls: int = 0
    seconds: float = 0.0
    full_batch_points: int = 0  # points sent in calls of exactly BATCH metrics
    full_batch_seconds: float = 0.0


def metric_name(step_name: str, key: str) -> str:
    return f"{step_name}/{key}"


def series(conn: sqlite3.Connection, run_id: str, step_name: str | None = None, key: str | None = None) -> list:
    """Numeric points of one run (optionally one step and key) as ``(name, value, timestamp_ms, step)``."""
    rows = conn.execute(
        "SELECT step_name, key, value, coalesce(timestamp_ms, 0), step FROM metrics "
        "WHERE run_id = ? AND kind = 'numeric' AND value IS NOT NULL "
        "AND (? IS NULL OR step_name = ?) AND (? IS NULL OR key = ?) ORDER BY step_name, key, step",
        (run_id, step_name, step_name, key, key),
    ).fetchall()
    return [(metric_name(s, k), v, t, n) for s, k, v, t, n in rows]


def load(client, experiment: str, points_by_run: dict[str, list]) -> Loaded:
    """Create one MLflow run per runlog run (not timed) and ``log_batch`` its points, 1000 a call (timed)."""
    from mlflow.entities import Metric

    loaded = Loaded(client, client.create_experiment(experiment))
    for run_id, points in points_by_run.items():
        mlflow_run = client.create_run(loaded.experiment_id, run_name=run_id)
        loaded.run_ids[run_id] = mlflow_run.info.run_id
        metrics = [Metric(name, value, stamp, step) for name, value, stamp, step in points]
        for start in range(0, len(metrics), BATCH):
            chunk = metrics[start:start + BATCH]
            began = time.perf_counter()
            client.log_batch(mlflow_run.info.run_id, metrics=chunk)
            seconds = time.perf_counter() - began
            loaded.seconds += seconds
            loaded.points += len(chunk)
            loaded.calls += 1
            if len(chunk) == BATCH:
                loaded.full_batch_points += len(chunk)
                loaded.full_batch_seconds += seconds
    return loaded


def sqlite_client(path: Path):
    """An MlflowClient on a SQLite store at ``path`` (created, with MLflow's migrations)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{path}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``mlflow server`` with a SQLite backend (``backend``, else under ``root``) on a free loopback port."""

    def __init__(self, root: Path, workers: int = 1, backend: Path | None = None):
        self.root = root
        self.backend = backend or root / "mlflow.db"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env.pop("MLFLOW_TRACKING_URI", None)
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", f"sqlite:///{self.backend}",
            "--default-artifact-root", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
        ]
        with open(self.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.__exit__()
        raise RuntimeError(f"mlflow server did not start; see {self.root / 'server.log'}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
