"""Run-log stores in object storage, one suite for every provider: S3 (a real S3 API
server, moto) and Google Cloud Storage (fake-gcs-server, the Go emulator), each in its
own process on a loopback port. Conditional writes, leases, many writer processes,
incremental ingest from a bucket, paged listings, and the ways storage fails.

A test that takes ``provider`` runs once per provider (tests/object_store_cases.py),
and skips for a provider whose packages are missing, saying which; a test marked
``only("s3")`` or ``only("gs")`` checks what only that provider has.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from object_store_cases import (
    PROVIDERS,
    comparable,
    exec_cmd,
    put_steps_from_threads,
    record_pipeline,
    rows,
    run_all,
    seed,
)
from runlog import Run, RunLogStore, track_this
from runlog.cli import cli
from runlog.errors import MissingExtra, RunlogError, StorageError
from runlog.index import ingest
from runlog.store import is_url, redact

_buckets = itertools.count()
ONE_RUN = "1 run ingested, 0 unchanged, 0 failed, 0 pruned; 1 metric point written\n"


def only(scheme: str):
    """Run a test that takes ``provider`` for this provider alone."""
    return pytest.mark.parametrize("provider", [scheme], indirect=True)


@pytest.fixture(scope="module", params=list(PROVIDERS))
def provider(request, tmp_path_factory):
    """A provider with its server started, once per module."""
    provider = PROVIDERS[request.param](tmp_path_factory.mktemp(request.param))
    provider.server.start()
    yield provider
    provider.server.stop()


@pytest.fixture
def bucket(provider, monkeypatch) -> str:
    """A new bucket, with runlog pointed at the provider's server."""
    provider.use(monkeypatch)
    name = f"runs-{next(_buckets)}"
    provider.create_bucket(name)
    return name


# -- the store ------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_runs_written_to_a_bucket_read_back_and_index_like_local_ones(tmp_path, provider, bucket, layout):
    url = provider.url(bucket, "store")
    record_pipeline(url, layout)
    record_pipeline(tmp_path / "store", layout)
    remote, local = RunLogStore(url), RunLogStore(tmp_path / "store")
    assert isinstance(remote, RunLogStore) and type(remote).__name__ == "RemoteRunLogStore"
    got, want = remote.get_run(f"demo-{layout}"), local.get_run(f"demo-{layout}")
    assert got.status == want.status == "SUCCESS"
    assert list(got.steps) == list(want.steps) == ["train", "par", "success"]
    assert sorted(got.steps["par"].branches) == ["par.left", "par.right"]
    assert got.steps["train"].user_defined_metrics == want.steps["train"].user_defined_metrics
    assert got.run_config["run_log_store"]["log_folder"] == url
    [info] = remote.list_runs()
    assert (info.run_id, info.status, info.tag, info.layout) == (f"demo-{layout}", "SUCCESS", "exp", layout)
    key = f"store/demo-{layout}.json" if layout == "file-system" else f"store/demo-{layout}/RunLog.json"
    assert json.loads(provider.get(bucket, key))["status"] == "SUCCESS"
    db, local_db = tmp_path / "remote.db", tmp_path / "local.db"
    assert ingest([url], db).ingested == 1
    assert ingest([tmp_path / "store"], local_db).ingested == 1
    assert comparable(db) == comparable(local_db)


def test_conditional_writes_create_once_and_replace_only_the_version_read(provider, bucket):
    from runlog.store.objects import open_storage

    storage = open_storage(provider.url(bucket, "cw"))
    first = storage.create("a.json", b"1")
    assert first is not None and storage.create("a.json", b"2") is None
    data, version = storage.read_versioned("a.json")
    assert data == b"1"
    second = storage.replace("a.json", b"3", version)
    assert second is not None and second != first
    assert storage.replace("a.json", b"4", version) is None  # someone wrote since we read
    assert storage.read("a.json") == b"3"
    provider.delete(bucket, "cw/a.json")
    assert storage.replace("a.json", b"5", second) is None  # deleted since we read: not re-created
    assert not storage.exists("a.json")


@only("gs")
def test_gcs_versions_are_generations_sent_as_preconditions(provider, bucket):
    from runlog.store.objects import open_storage

    storage = open_storage(provider.url(bucket, "cw"))
    first = storage.create("a.json", b"1")
    assert storage.create("a.json", b"2") is None
    data, version = storage.read_versioned("a.json")
    assert (data, version) == (b"1", first)  # the version is the object's generation
    second = storage.replace("a.json", b"3", version)
    assert storage.replace("a.json", b"4", version) is None
    provider.delete(bucket, "cw/a.json")
    assert storage.replace("a.json", b"5", second) is None
    statuses = [(p.split("?")[1], s) for m, p, s in provider.server.requests() if m == "POST" and f"/b/{bucket}/o?" in p]
    assert statuses == [("uploadType=multipart&ifGenerationMatch=0", 200),
                        ("uploadType=multipart&ifGenerationMatch=0", 412),
                        (f"uploadType=multipart&ifGenerationMatch={first}", 200),
                        (f"uploadType=multipart&ifGenerationMatch={first}", 412),
                        (f"uploadType=multipart&ifGenerationMatch={second}", 412)]


def test_of_racing_creators_exactly_one_wins(provider, bucket):
    from runlog.store.objects import open_storage

    storage = open_storage(provider.url(bucket, "race"))
    for attempt in range(5):
        with ThreadPoolExecutor(8) as pool:
            won = [v for v in pool.map(lambda n, a=attempt: storage.create(f"k{a}.json", str(n).encode()), range(8)) if v]
        assert len(won) == 1


def test_a_lease_left_by_a_dead_writer_is_taken_over(provider, bucket):
    from runlog.store.objects import open_storage
    from runlog.store.objects.lease import lease

    storage = open_storage(provider.url(bucket, "lease"))
    storage.write(".r.lock", json.dumps({"owner": "gone", "expires": 0}).encode())
    with lease(storage, ".r.lock"):
        assert json.loads(storage.read(".r.lock"))["owner"] != "gone"
    assert not storage.exists(".r.lock")


@only("gs")
def test_a_lease_delete_names_the_generation_it_holds(provider, bucket):
    """GCS refuses (412) a delete whose ifGenerationMatch is not the live generation, so a
    writer never removes a lease another writer took over. fake-gcs-server does not check
    it on DELETE: this proves what runlog sends, not that the emulator refuses."""
    from runlog.store.objects import open_storage
    from runlog.store.objects.lease import lease

    storage = open_storage(provider.url(bucket, "lease"))
    mark = provider.server.mark()
    with lease(storage, ".r.lock"):
        _, held = storage.read_versioned(".r.lock")
    deletes = [(p.split("/o/", 1)[1], s) for m, p, s in provider.server.requests_since(mark) if m == "DELETE"]
    assert deletes == [(f"lease/.r.lock?ifGenerationMatch={held}", 200)]
    assert not storage.exists(".r.lock")


def test_the_lease_admits_one_writer_at_a_time(provider, bucket):
    """Unconditional read-then-write of a counter, under the lease, from 6 threads."""
    from runlog.store.objects import open_storage
    from runlog.store.objects.lease import lease

    storage = open_storage(provider.url(bucket, "excl"))
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


def test_file_system_updates_from_many_threads_lose_nothing(provider, bucket):
    """Read-modify-writes of one object race; the conditional write makes the losers start over."""
    got, want = put_steps_from_threads(provider.url(bucket))
    assert got == want


# -- many hosts: processes writing at once, then ingest -----------------------------


def pipelines(store, cli_args=()):
    """8 branches of one chunked run, 3 steps of one file-system run, 3 file-system runs: all at once."""
    fan = [exec_cmd(store, "chunked-fs", "fan-run", f"fan.b{i}.work", i, cli_args) for i in range(8)]
    shared = [exec_cmd(store, "file-system", "shared-run", f"par.p{i}.work", i, cli_args) for i in range(3)]
    single = [exec_cmd(store, "file-system", f"solo-{i}", "work", i, cli_args) for i in range(3)]
    return fan + shared + single


@pytest.fixture(scope="module")
def local_pipelines_db(tmp_path_factory):
    """The index of :func:`pipelines` run into a local folder: what a bucket's must equal."""
    root = tmp_path_factory.mktemp("local-pipelines")
    run_all(pipelines(str(root / "store")), root)
    assert ingest([root / "store"], root / "local.db").ingested == 5
    return root / "local.db"


def test_many_writer_processes_then_incremental_ingest_matches_a_local_store(tmp_path, provider, bucket,
                                                                             local_pipelines_db, monkeypatch):
    store = provider.url(bucket, "x")
    run_all(pipelines(store, provider.cli_args(monkeypatch)), tmp_path)
    provider.use(monkeypatch)
    db = tmp_path / "remote.db"
    first = ingest([store], db)
    assert (first.ingested, first.failed, first.errors) == (5, 0, [])
    assert comparable(db) == comparable(local_pipelines_db)
    runs, steps, metrics = comparable(db)
    assert [r[:2] for r in runs] == [("fan-run", "SUCCESS"), ("shared-run", "SUCCESS"),
                                     ("solo-0", "SUCCESS"), ("solo-1", "SUCCESS"), ("solo-2", "SUCCESS")]
    assert [s[1] for s in steps if s[0] == "fan-run" and s[2] == "work"] == [f"fan.b{i}.work" for i in range(8)]
    assert ("fan-run", "fan", "fan", "", "parallel", "SUCCESS") in steps
    assert [m[4] for m in metrics if m[0] == "fan-run" and m[2] == "score"] == [float(i) for i in range(8)]
    assert rows(db, "SELECT source_path FROM runs WHERE run_id = 'fan-run'") == [(f"{store}/fan-run",)]

    # Unchanged: recognised from the listing alone, nothing downloaded.
    mark = provider.server.mark()
    again = ingest([store], db)
    assert (again.ingested, again.unchanged) == (0, 5)
    assert provider.downloads(provider.server.requests_since(mark), bucket) == []

    # Change two runs, one by a `runlog exec` process and one in this process, and delete
    # one: only the changed ones are downloaded, and --prune drops the deleted one.
    run_all([exec_cmd(store, "chunked-fs", "fan-run", "fan.b8.work", 8)], tmp_path)
    with Run.attach("solo-0", store=store) as run:
        with run.step("more"):
            track_this(score=100)
    provider.delete(bucket, "x/solo-2.json")
    mark = provider.server.mark()
    third = ingest([store], db, prune=True)
    assert (third.ingested, third.unchanged, third.pruned, third.failed) == (2, 2, 1, 0)
    fetched = provider.downloads(provider.server.requests_since(mark), bucket)
    assert fetched and all(p.startswith(("x/fan-run/", "x/solo-0.json")) for p in fetched), fetched
    assert rows(db, "SELECT run_id FROM runs ORDER BY 1") == [("fan-run",), ("shared-run",), ("solo-0",), ("solo-1",)]
    assert rows(db, "SELECT count(*) FROM steps WHERE run_id = 'fan-run' AND name = 'work'") == [(9,)]
    assert rows(db, "SELECT value FROM metrics WHERE run_id = 'solo-0' AND step_name = 'more' AND key = 'score'") == [(100.0,)]
    assert rows(db, "SELECT count(*) FROM sources") == [(4,)]


def test_cli_exec_and_ingest_take_urls(tmp_path, provider, bucket, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    store = provider.url(bucket, "cli")
    server = provider.cli_args(monkeypatch)
    done = runner.invoke(cli, ["exec", "--store", store, *server, "--run-id", "c1", "--step", "work", "--",
                               "export RUNNABLE_TRACK_acc=0.5"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(cli, ["ingest", store, *server, "--db", "i.db", "-q"])
    assert (done.exit_code, done.output) == (0, ONE_RUN)
    assert rows(tmp_path / "i.db", "SELECT value FROM metrics WHERE key = 'acc'") == [(0.5,)]
    single = runner.invoke(cli, ["ingest", f"{store}/c1.json", *server, "--db", "j.db", "-q"])
    assert (single.exit_code, single.output) == (0, ONE_RUN)


# -- listings ---------------------------------------------------------------------------


def test_listing_is_paged_and_streamed(tmp_path, provider, bucket, monkeypatch):
    """Sources come out while later pages are still unread; each page asks for
    LIST_PAGE_SIZE objects and goes on from the one before; chunked folders that span
    page boundaries stay whole."""
    from runlog.store import iter_remote_sources
    from runlog.store.objects import base as objectstore
    from runlog.store.objects import open_storage

    store = provider.url(bucket, "p")
    seed(store, 3)
    for i in range(2):
        with Run.start(run_id=f"c{i}", store=store, layout="chunked-fs") as run:
            for n in range(3):
                with run.step(f"s{n}"):
                    track_this(v=n)
    monkeypatch.setattr(objectstore, "LIST_PAGE_SIZE", 2)
    storage = open_storage(store)
    real = provider.storage_class.list_page
    pages = []
    monkeypatch.setattr(provider.storage_class, "list_page", lambda self, p, a: pages.append(dict(a)) or real(self, p, a))
    sources = iter_remote_sources(storage)
    key, layout, objects = next(sources)
    assert (key, layout, len(objects), len(pages)) == ("c0", "chunked-fs", 5, 3)  # RunLog.json + 4 steps
    rest = [(k, lay, len(objs)) for k, lay, objs in sources]
    assert rest == [("c1", "chunked-fs", 5), ("r0.json", "file-system", 1), ("r1.json", "file-system", 1),
                    ("r2.json", "file-system", 1)]
    assert len(provider.keys(bucket, "p/")) == 13 and len(pages) == 7  # 2 a page
    assert [(a[provider.page_size_arg], bool(a.get(provider.token_arg))) for a in pages] == [(2, False)] + [(2, True)] * 6
    monkeypatch.setattr(provider.storage_class, "list_page", real)
    report = ingest([store], tmp_path / "i.db")
    assert (report.ingested, report.failed) == (5, 0)
    assert rows(tmp_path / "i.db", "SELECT count(*) FROM steps WHERE run_id = 'c1'") == [(4,)]


def test_ingest_streams_the_listing_with_progress(tmp_path, provider, bucket, monkeypatch):
    """Ingest starts on the first page; the total is known once the listing has ended."""
    from runlog.index import sources as remote_store
    from runlog.store.objects import base as objectstore

    store = provider.url(bucket, "st")
    seed(store, 8)
    monkeypatch.setattr(objectstore, "LIST_PAGE_SIZE", 2)
    monkeypatch.setattr(remote_store, "LOOKAHEAD", 2)
    real = provider.storage_class.list_page
    pages = []
    monkeypatch.setattr(provider.storage_class, "list_page", lambda self, p, a: pages.append(1) or real(self, p, a))
    seen = []
    report = ingest([store], tmp_path / "i.db", progress=lambda done, total: seen.append((done, total, len(pages))))
    assert (report.ingested, report.failed) == (8, 0)
    assert seen[0] == (1, None, 1)  # one page of four listed
    assert [done for done, _, _ in seen] == list(range(1, 9))
    assert seen[-1][:2] == (8, 8) and max(p for _, _, p in seen) == 4


@only("s3")
def test_memory_stays_flat_however_long_the_listing(tmp_path, provider, bucket, monkeypatch):
    """A listing of 40,000 unchanged runs costs no more memory than one of 5,000.
    The listing's pages are made up and the index already knows every run, so nothing
    is downloaded: only the streaming counts."""
    import tracemalloc

    from s3_server import MadeUpListing

    def measure(n):
        listing = MadeUpListing(provider.url(bucket, f"runs{n}"), n)
        db = tmp_path / f"{n}.db"
        listing.index(db)
        monkeypatch.setattr(provider.storage_class, "list_page", listing.list_page)
        monkeypatch.setattr(provider.storage_class, "read", lambda self, key: pytest.fail(f"downloaded {key}"))
        tracemalloc.start()
        try:
            report = ingest([listing.url], db, prune=True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (report.unchanged, report.ingested, report.pruned, report.failed) == (n, 0, 0, 0)
        return peak

    measure(100)  # the first S3 client loads botocore's data: not the listing's cost
    small, large = measure(5_000), measure(40_000)
    # Holding the listing would add ~0.7 KB a run: 24 MB for the 35,000 more.
    assert large - small < 2_000_000, (small, large)


# -- faults ---------------------------------------------------------------------------


@pytest.fixture
def own_s3(tmp_path, monkeypatch):
    """An S3 server of the test's own, to stop mid-ingest, with a bucket ``bkt``."""
    from object_store_cases import S3Provider

    own = S3Provider(tmp_path / "own")
    own.server.start()
    try:
        own.use(monkeypatch)
        own.create_bucket("bkt")
        yield own
    finally:
        own.server.stop()


def test_server_gone_mid_listing_keeps_whole_runs_and_prunes_nothing(tmp_path, own_s3, monkeypatch):
    """Runs listed before the server went away are ingested, each whole; runs the
    listing never reached stay in the index, even with --prune."""
    from runlog.store.objects import base as objectstore

    seed("s3://bkt/s", 12)  # keys in order: r0 r1 r10 r11 r2 ... r9
    db = tmp_path / "i.db"
    assert ingest(["s3://bkt/s"], db).ingested == 12
    for i in (0, 1):  # changed: ingest downloads these again
        with Run.attach(f"r{i}", store="s3://bkt/s") as run:
            with run.step("again"):
                track_this(v=100 + i)
    own_s3.delete("bkt", "s/r9.json")  # a complete listing would prune it
    monkeypatch.setattr(objectstore, "LIST_PAGE_SIZE", 2)
    real = own_s3.storage_class.list_page
    calls = []

    def list_then_die(self, prefix, args):
        calls.append(1)
        if len(calls) == 4:
            own_s3.server.stop()
        return real(self, prefix, args)

    monkeypatch.setattr(own_s3.storage_class, "list_page", list_then_die)
    with pytest.raises(StorageError) as caught:
        ingest(["s3://bkt/s"], db, prune=True)
    message = str(caught.value)
    assert message.startswith("cannot reach s3://bkt/s (") and message.endswith(
        "is the server up? Check --endpoint-url / AWS_ENDPOINT_URL")
    assert "\n" not in message and "testing" not in message
    assert rows(db, "SELECT run_id, step_name, value FROM metrics WHERE step_name = 'again' ORDER BY 1") == [
        ("r0", "again", 100.0), ("r1", "again", 101.0)]
    assert rows(db, "SELECT count(*) FROM runs") == [(12,)]  # r9 is still there: not listed, not pruned
    assert rows(db, "SELECT count(*) FROM sources") == [(12,)]


def test_server_gone_while_downloading_stops_ingest_with_whole_runs_only(tmp_path, own_s3, monkeypatch):
    from runlog.index import sources as remote_store

    seed(tmp_path / "local", 12)
    for path in sorted((tmp_path / "local").glob("*.json")):
        own_s3.put("bkt", f"s/{path.name}", path.read_bytes())
    monkeypatch.setattr(remote_store, "PREFETCH_AHEAD", 2)

    def progress(done, total):
        if done == 3:
            own_s3.server.stop()

    with pytest.raises(StorageError) as caught:
        ingest(["s3://bkt/s"], tmp_path / "i.db", progress=progress)
    assert str(caught.value).startswith("cannot reach s3://bkt/s (")
    indexed = rows(tmp_path / "i.db", "SELECT run_id, (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id) "
                                      "FROM runs r ORDER BY 1")
    assert 3 <= len(indexed) < 12
    # The first runs in key order, each whole (its step s and success).
    assert indexed == [(run_id, 2) for run_id in sorted(f"r{i}" for i in range(12))[:len(indexed)]]
    assert rows(tmp_path / "i.db", "SELECT count(*) FROM sources") == [(len(indexed),)]


def test_object_deleted_between_listing_and_reading(tmp_path, provider, bucket, monkeypatch):
    store = provider.url(bucket, "d")
    seed(store, 3)
    real = provider.storage_class.list_page

    def list_then_delete(self, prefix, args):
        page = real(self, prefix, args)
        provider.delete(bucket, "d/r1.json")
        return page

    monkeypatch.setattr(provider.storage_class, "list_page", list_then_delete)
    report = ingest([store], tmp_path / "i.db")
    assert (report.ingested, report.failed) == (2, 1)
    assert report.errors == [(f"{store}/r1.json",
                              "was deleted after it was listed: run ingest again (--prune drops it from the index)")]
    assert rows(tmp_path / "i.db", "SELECT run_id FROM runs ORDER BY 1") == [("r0",), ("r2",)]
    monkeypatch.setattr(provider.storage_class, "list_page", real)
    again = ingest([store], tmp_path / "i.db", prune=True)
    assert (again.ingested, again.unchanged, again.failed) == (0, 2, 0)
    assert rows(tmp_path / "i.db", "SELECT count(*) FROM ingest_errors") == [(0,)]


def test_truncated_objects_are_reported_and_keep_the_previous_rows(tmp_path, provider, bucket):
    store = provider.url(bucket, "t")
    seed(store, 2)
    with Run.start(run_id="c", store=store, layout="chunked-fs") as run:
        with run.step("s"):
            track_this(v=7)
    db = tmp_path / "i.db"
    assert ingest([store], db).ingested == 3
    whole = provider.get(bucket, "t/r0.json")
    provider.put(bucket, "t/r0.json", whole[: len(whole) // 2])
    chunk = next(key for key in provider.keys(bucket, "t/c/") if key.startswith("t/c/StepLog-s-"))
    provider.put(bucket, chunk, b'{"name": "s", "internal')
    report = ingest([store], db)
    assert (report.ingested, report.unchanged, report.failed) == (0, 1, 2)
    errors = dict(report.errors)
    assert errors[f"{store}/r0.json"].startswith("is not JSON (line ")
    assert errors[f"{store}/c"].startswith(f"{chunk.rsplit('/', 1)[1]}: is not JSON (line 1, ")
    # The last good rows stay, whole.
    assert rows(db, "SELECT run_id, step_name, value FROM metrics ORDER BY 1") == [("c", "s", 7.0), ("r0", "s", 0.0), ("r1", "s", 1.0)]


# -- credentials, buckets, errors ------------------------------------------------------------


@only("s3")
def test_credentials_never_reach_run_logs_the_index_or_errors(tmp_path, provider, bucket, monkeypatch):
    secret = "sEcReT-VaLuE-0123456789"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)  # moto takes any secret
    seed(f"s3://{bucket}/c", 1)
    ingest([f"s3://{bucket}/c"], tmp_path / "i.db")
    assert secret.encode() not in provider.get(bucket, "c/r0.json")
    assert secret.encode() not in (tmp_path / "i.db").read_bytes()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    done = CliRunner().invoke(cli, ["ingest", f"s3://{bucket}/c", "--db", str(tmp_path / "i.db"), "-q"])
    assert done.exit_code == 1
    assert done.output.startswith(f"Error: cannot reach s3://{bucket}/c (") and secret not in done.output
    assert done.output.count("\n") == 1


@only("gs")
def test_an_emulator_gets_no_credentials_and_no_grpc_bucket_lookup(provider, monkeypatch):
    """gcsfs 2026's default class asks each bucket's kind over gRPC, which an emulator
    never answers (each call would wait ~60 s): with STORAGE_EMULATOR_HOST, its base class."""
    import gcsfs.core

    from runlog.store.objects import open_storage

    provider.use(monkeypatch)
    storage = open_storage("gs://b/x")
    assert type(storage.fs) is gcsfs.core.GCSFileSystem and storage.root == "b/x"
    assert storage.fs.credentials.method == "anon"


def test_missing_bucket_is_a_clear_error(tmp_path, provider, monkeypatch):
    provider.use(monkeypatch)
    url = provider.url("no-such-bucket", "x")
    done = CliRunner().invoke(cli, ["ingest", url, "--db", str(tmp_path / "i.db"), "-q"])
    assert (done.exit_code, done.output) == (1, f"Error: {url}: no such bucket: create it, or check the URL\n")


GCS_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS, or run gcloud auth application-default login"


def _http_error(code, message):
    from gcsfs.retry import HttpError

    return HttpError({"code": code, "message": message})


@only("gs")
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
def test_gcs_storage_failures_are_one_line_errors_naming_the_url(provider, monkeypatch, error, message):
    """What gcsfs raises for each failure (after its own retries), as runlog words it."""
    from runlog.store.objects import open_storage

    provider.use(monkeypatch)
    storage = open_storage("gs://b/x")
    with pytest.raises(StorageError) as caught, storage._errors("r.json"):
        raise error()
    assert str(caught.value) == message


# -- without a server: names, the extras, any fsspec protocol ---------------------------------


def test_redact_and_is_url():
    assert redact("s3://AKIA:topsecret@bucket/x") == "s3://***@bucket/x"
    assert redact("s3://bucket/x") == "s3://bucket/x"
    assert [is_url(x) for x in ("s3://b/x", "gs://b", "memory://m", "file:///tmp", "/tmp/x", "rel/x")] == [
        True, True, True, False, False, False]


@pytest.mark.parametrize("scheme, module, extra", [("s3", "s3fs", "s3"), ("gs", "gcsfs", "gs")])
def test_a_missing_provider_package_names_the_extra(monkeypatch, tmp_path, scheme, module, extra):
    """Also true without fsspec at all (make test-base), where no monkeypatch is needed."""
    monkeypatch.setitem(sys.modules, module, None)
    message = f"this needs {module}, which is not installed: pip install 'runlog-store[{extra}]'"
    with pytest.raises(MissingExtra) as caught:
        RunLogStore(f"{scheme}://b/x")
    assert str(caught.value) == message
    done = CliRunner().invoke(cli, ["ingest", f"{scheme}://b/x", "--db", str(tmp_path / "i.db"), "-q"])
    assert (done.exit_code, done.output) == (1, f"Error: {message}\n")


def test_unknown_protocol_and_endpoint_for_a_folder_are_one_line_errors(tmp_path):
    pytest.importorskip("fsspec", reason="URLs need fsspec: pip install 'runlog-store[s3]'")
    with pytest.raises(RunlogError) as caught:
        RunLogStore("nosuchproto://b/x")
    assert str(caught.value) == "nosuchproto://b/x: fsspec does not know the protocol nosuchproto://"
    with pytest.raises(RunlogError) as caught:
        RunLogStore(tmp_path / "s", endpoint_url="http://127.0.0.1:9000")
    assert str(caught.value) == f"--endpoint-url is for s3:// stores, and {tmp_path / 's'} is a folder"


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_memory_store_round_trip_and_ingest(tmp_path, layout):
    pytest.importorskip("fsspec", reason="memory:// stores need fsspec: pip install 'runlog-store[s3]'")
    url = f"memory://runlog-test-{layout}-{tmp_path.name}"
    record_pipeline(url, layout)
    record_pipeline(tmp_path / "local", layout)
    assert ingest([url], tmp_path / "m.db").ingested == 1
    assert ingest([tmp_path / "local"], tmp_path / "l.db").ingested == 1
    assert comparable(tmp_path / "m.db") == comparable(tmp_path / "l.db")
    again = ingest([url], tmp_path / "m.db")
    assert (again.ingested, again.unchanged) == (0, 1)
