"""A real S3 API server for the tests: moto's S3 backend in werkzeug, on a free
loopback port, in its own process, logging every request.

It serves one request at a time, as S3 itself behaves for one key: moto checks
If-Match / If-None-Match and then writes, which threads could interleave.

>>> server = S3Server(tmp_path); server.start()     # doctest: +SKIP
>>> server.endpoint                                 # doctest: +SKIP
'http://127.0.0.1:40123'

Run as a script: ``python tests/s3_server.py PORT``.
"""

from __future__ import annotations

import os
import re
import signal
import sys

from loopback import LoopbackServer

# Credentials the tests use: moto accepts any; these are not secrets.
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class S3Server(LoopbackServer):
    """moto's S3 on a free loopback port; ``requests()`` reads its log."""

    NAME = "s3"
    READY_PATH = "/moto-api/"
    REQUEST = re.compile(r'"(GET|PUT|HEAD|DELETE|POST) (\S+) HTTP/[\d.]+" (\d{3})')

    def command(self) -> list[str]:
        return [sys.executable, __file__, str(self.port)]

    def env(self) -> dict[str, str]:
        return dict(os.environ, **TEST_ENV)

    def log_text(self) -> str:
        return re.sub(r"\x1b\[[0-9;]*m", "", super().log_text())  # werkzeug colours its lines


class MadeUpListing:
    """A prefix of ``n`` file-system runs that exist only as list_objects_v2 pages, to
    measure what streaming a long listing costs without a server holding the runs.

    ``index(db)`` records every run in an index as ingested already (so ingest
    downloads nothing); ``list_page`` replaces ``S3Storage.list_page``. The pages
    are made on demand: the listing itself holds no memory.

    >>> listing = MadeUpListing("s3://bucket/runs", 100_000)   # doctest: +SKIP
    >>> listing.index(db)                                           # doctest: +SKIP
    >>> monkeypatch.setattr(S3Storage, "list_page", listing.list_page)  # doctest: +SKIP
    """

    def __init__(self, url: str, n: int):
        self.url, self.n = url.rstrip("/"), n
        self.prefix = self.url.split("://", 1)[1].partition("/")[2]

    def object(self, i: int):
        import hashlib

        from runlog.store.objects.base import ObjectInfo

        return ObjectInfo(key=f"run-{i:07d}.json", size=1000 + i % 7,
                          tag=f'"{hashlib.md5(str(i).encode()).hexdigest()}"', content_tag=True)

    def index(self, db) -> None:
        import sqlite3

        from runlog.index import ingest
        from runlog.store.objects import open_storage
        from runlog.store import RemoteSource

        ingest([], db)  # the schema
        storage = open_storage(self.url)
        conn = sqlite3.connect(db)
        with conn:
            for start in range(0, self.n, 10_000):
                objects = [self.object(i) for i in range(start, min(start + 10_000, self.n))]
                conn.executemany(
                    "INSERT INTO sources (path, run_id, size, mtime_ns, hash, ingested_at) "
                    "VALUES (?, ?, ?, ?, '', '2020-01-01T00:00:00+00:00')",
                    [(storage.url_of(o.key), o.key, o.size, RemoteSource(storage, o.key, "file-system", [o]).fingerprint)
                     for o in objects])
        conn.close()

    @property
    def list_page(self):
        """A stand-in for S3Storage.list_page (a plain function: set it on the class)."""
        return lambda storage, prefix, args: self.page(args)

    def page(self, args: dict) -> dict:
        start = int(args.get("ContinuationToken") or 0)
        stop = min(start + args["MaxKeys"], self.n)
        page = [self.object(i) for i in range(start, stop)]
        return {"Contents": [{"Key": f"{self.prefix}/{o.key}", "Size": o.size, "ETag": o.tag} for o in page],
                "IsTruncated": stop < self.n, "NextContinuationToken": str(stop) if stop < self.n else None}


def _serve(port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple("127.0.0.1", port, DomainDispatcherApplication(create_backend_app),
               threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
