"""A real MLflow tracking server for the tests, on a free loopback port.

>>> server = MlflowServer(tmp_path)   # doctest: +SKIP
>>> server.start(); server.uri        # doctest: +SKIP
'http://127.0.0.1:40123'
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

MLFLOW_BIN = Path(sys.executable).with_name("mlflow")
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


class MlflowServer:
    """``mlflow server`` with a SQLite backend under ``root``; restartable on the same port
    and database, so a test can stop it mid-export and bring it back."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / "server.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            str(MLFLOW_BIN),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--default-artifact-root",
            str(self.root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]

    def start(self) -> None:
        if not MLFLOW_BIN.exists():
            pytest.skip(f"mlflow server not installed at {MLFLOW_BIN}: run `make install`")
        log = open(self.log_path, "ab")
        # A session of its own, so stop() reaches the workers uvicorn starts.
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=server_env(), start_new_session=True
        )
        log.close()
        self.wait_healthy()

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.healthy():
                return
            time.sleep(0.25)
        self.stop()
        log = self.log_path.read_text(errors="replace")[-4000:]
        pytest.fail(
            f"mlflow server did not answer {self.uri}/health within {START_TIMEOUT_S}s "
            f"(exit code {self.process.returncode}); server log:\n{log}"
        )

    def stop(self) -> None:
        """Terminate the server's process group, then kill it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Kill the server at once (a server that goes away mid-export)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


_shared: MlflowServer | None = None


@pytest.fixture(scope="session")
def mlflow_server(request, tmp_path_factory) -> MlflowServer:
    """One real MLflow tracking server for the whole test session, shared by every
    module that imports this fixture (a plain session fixture would start one per module)."""
    global _shared
    if _shared is None:
        _shared = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
        request.config.add_cleanup(_shared.stop)
        _shared.start()
    elif not _shared.healthy():
        _shared.start()
    return _shared
