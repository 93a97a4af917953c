"""A real MLflow tracking server for the tests, on a free loopback port.

>>> server = MlflowServer(tmp_path)   # doctest: +SKIP
>>> server.start(); server.uri        # doctest: +SKIP
'http://127.0.0.1:40123'
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from loopback import free_port

MLFLOW_BIN = Path(sys.executable).with_name("mlflow")
REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 90


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


# -- index databases for the export tests ---------------------------------------


def build_index(store: Path, db_path: Path) -> Path:
    """Index every run of ``store`` into ``db_path``: through ``runlog.index.ingest``
    when it exists, else rows per the index contract (runlog.index.flatten), so the export
    tests do not wait for the index module."""
    try:
        from runlog.index import ingest
    except ImportError:
        ingest = None
    if ingest is not None:
        report = ingest([store], db_path)
        assert not report.errors, report.errors
        return db_path
    import sqlite_utils

    from runlog.index import flatten as f
    from runlog.store import RunLogStore, read_run_file, read_run_folder

    db = sqlite_utils.Database(db_path)
    tables = (
        ("runs", f.RUN_COLUMNS, "run", ["run_id"]),
        ("steps", f.STEP_COLUMNS, "steps", ["run_id", "step_name"]),
        ("metrics", f.METRIC_COLUMNS, "metrics", ["run_id", "step_name", "key", "step"]),
        ("params", f.PARAM_COLUMNS, "params", None),
        ("code_identities", f.CODE_IDENTITY_COLUMNS, "code_identities", None),
    )
    for path, layout in RunLogStore(store).iter_sources():
        run = read_run_folder(path) if layout == "chunked-fs" else read_run_file(path)
        flat = f.flatten_run(run, layout=layout, source_path=str(path))
        for table, columns, attr, pk in tables:
            rows = [getattr(flat, attr)] if attr == "run" else getattr(flat, attr)
            if rows:
                db[table].insert_all(
                    [dict(zip(columns, row)) for row in rows], pk=pk, replace=pk is not None, alter=True
                )
    return db_path


# -- a flaky proxy, for transient errors ------------------------------------------------


class FlakyProxy:
    """A loopback HTTP proxy to ``target`` that answers the first ``failures`` requests
    whose path contains ``path_part`` with HTTP 503, as an overloaded server would."""

    def __init__(self, target: str, path_part: str = "/runs/log-batch", failures: int = 2):
        import http.client
        import http.server
        import threading
        import urllib.parse

        self.failed = 0
        self.forwarded = 0
        proxy = self
        host = urllib.parse.urlsplit(target)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path_part in self.path and proxy.failed < failures:
                    proxy.failed += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                proxy.forwarded += 1
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
