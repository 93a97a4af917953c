"""Servers the tests start for themselves: a process on a free loopback port, its
output in a log file under pytest's tmp_path, stopped when the test is done.

:class:`LoopbackServer` is the common part of the S3 (moto) and GCS (fake-gcs-server)
servers, which also read their request logs; :func:`free_port` serves every test
that needs a port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackServer:
    """Start and stop the process, and read the requests it logged.

    A subclass gives ``command()``, the ``READY_PATH`` that answers once the server is
    up, and ``REQUEST``: a pattern of one logged request, its groups method, path, status.
    """

    NAME = "server"
    START_TIMEOUT_S = 60
    READY_PATH = "/"
    REQUEST: re.Pattern[str]

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / f"{self.NAME}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log, env=self.env())
        log.close()
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.NAME} server exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.endpoint}{self.READY_PATH}", timeout=2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.NAME} server did not start in {self.START_TIMEOUT_S}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # -- the request log ------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request_path(self, path: str) -> str:
        return path

    def requests(self) -> list[tuple[str, str, int]]:
        """``(method, path, status)`` of every request served so far."""
        return [(m, self.request_path(p), int(s)) for m, p, s in self.REQUEST.findall(self.log_text())]

    def mark(self) -> int:
        """How many requests so far: pass to :meth:`requests_since`."""
        return len(self.requests())

    def requests_since(self, mark: int) -> list[tuple[str, str, int]]:
        return self.requests()[mark:]
