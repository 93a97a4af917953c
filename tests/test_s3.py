"""Run-log stores in S3: a real S3 API server (moto, its own process, loopback), many
writer processes, incremental ingest from a bucket, and the ways storage fails."""

from __future__ import annotations

import itertools
import json
import sys

import pytest
from click.testing import CliRunner

pytest.importorskip("moto.server", reason="the S3 tests need moto[server]: pip install -e '.[test]'")
pytest.importorskip("s3fs", reason="the S3 tests need s3fs: pip install -e '.[test]'")

from runlog import Run, RunLogStore, track_this  # noqa: E402
from runlog.store.objects import base as objectstore  # noqa: E402
from runlog.cli import cli  # noqa: E402
from runlog.errors import MissingExtra, RunlogError, StorageError  # noqa: E402
from runlog.index import ingest  # noqa: E402
from runlog.store import is_url, redact  # noqa: E402
from runlog.store.objects import S3Storage, open_storage  # noqa: E402
from runlog.store.objects.lease import lease  # noqa: E402

from object_store_cases import (  # noqa: E402
    comparable,
    exec_cmd,
    put_steps_from_threads,
    record_pipeline,
    rows,
    run_all,
    seed,
)
from s3_server import TEST_ENV, MadeUpListing, S3Server  # noqa: E402

_buckets = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = S3Server(tmp_path_factory.mktemp("s3"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def s3env(monkeypatch, server):
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    return server


@pytest.fixture
def bucket(s3env):
    import boto3

    name = f"runs-{next(_buckets)}"
    boto3.client("s3", endpoint_url=s3env.endpoint).create_bucket(Bucket=name)
    return name


def s3client(server):
    import boto3

    return boto3.client("s3", endpoint_url=server.endpoint)


def gets(requests, bucket):
    """The GetObject requests (not LIST: those carry ``?list-type``) made on ``bucket``."""
    return sorted(p for m, p, _ in requests if m == "GET" and p.startswith(f"/{bucket}/") and "?" not in p)


# -- the store ------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_runs_written_to_s3_read_back_like_local_ones(tmp_path, bucket, s3env, layout):
    record_pipeline(f"s3://{bucket}/store", layout)
    record_pipeline(tmp_path / "store", layout)
    remote, local = RunLogStore(f"s3://{bucket}/store"), RunLogStore(tmp_path / "store")
    assert isinstance(remote, RunLogStore) and type(remote).__name__ == "RemoteRunLogStore"
    got, want = remote.get_run(f"demo-{layout}"), local.get_run(f"demo-{layout}")
    assert got.status == want.status == "SUCCESS"
    assert list(got.steps) == list(want.steps) == ["train", "par", "success"]
    assert sorted(got.steps["par"].branches) == ["par.left", "par.right"]
    assert got.steps["train"].user_defined_metrics == want.steps["train"].user_defined_metrics
    assert got.run_config["run_log_store"]["log_folder"] == f"s3://{bucket}/store"
    [info] = remote.list_runs()
    assert (info.run_id, info.status, info.tag, info.layout) == (f"demo-{layout}", "SUCCESS", "exp", layout)
    key = f"store/demo-{layout}.json" if layout == "file-system" else f"store/demo-{layout}/RunLog.json"
    assert json.loads(s3client(s3env).get_object(Bucket=bucket, Key=key)["Body"].read())["status"] == "SUCCESS"


def test_conditional_writes_create_once_and_replace_only_the_version_read(bucket):
    storage = open_storage(f"s3://{bucket}/cw")
    first = storage.create("a.json", b"1")
    assert first is not None and storage.create("a.json", b"2") is None
    data, version = storage.read_versioned("a.json")
    assert data == b"1"
    assert storage.replace("a.json", b"3", version) is not None
    assert storage.replace("a.json", b"4", version) is None  # someone wrote since we read
    assert storage.read("a.json") == b"3"


def test_a_lease_left_by_a_dead_writer_is_taken_over(bucket):
    storage = open_storage(f"s3://{bucket}/lease")
    storage.write(".r.lock", json.dumps({"owner": "gone", "expires": 0}).encode())
    with lease(storage, ".r.lock"):
        assert json.loads(storage.read(".r.lock"))["owner"] != "gone"
    assert not storage.exists(".r.lock")


def test_file_system_updates_from_many_threads_lose_nothing(bucket):
    """Read-modify-writes of one object race; If-Match makes the losers start over."""
    got, want = put_steps_from_threads(f"s3://{bucket}")
    assert got == want


# -- many hosts: processes writing at once, then ingest -----------------------------


def pipelines(store, endpoint=None):
    """8 branches of one chunked run, 3 steps of one file-system run, 3 file-system runs: all at once."""
    fan = [exec_cmd(store, "chunked-fs", "fan-run", f"fan.b{i}.work", i, endpoint) for i in range(8)]
    shared = [exec_cmd(store, "file-system", "shared-run", f"par.p{i}.work", i, endpoint) for i in range(3)]
    single = [exec_cmd(store, "file-system", f"solo-{i}", "work", i, endpoint) for i in range(3)]
    return fan + shared + single


def test_many_writers_then_incremental_ingest_matches_a_local_store(tmp_path, bucket, s3env):
    store = f"s3://{bucket}/x"
    env_cwd = tmp_path / "work"
    env_cwd.mkdir()
    run_all(pipelines(store, endpoint=s3env.endpoint), env_cwd)
    run_all(pipelines(str(tmp_path / "local")), env_cwd)

    db, local_db = tmp_path / "s3.db", tmp_path / "local.db"
    first = ingest([store], db)
    assert (first.ingested, first.failed, first.errors) == (5, 0, [])
    assert ingest([tmp_path / "local"], local_db).ingested == 5
    assert comparable(db) == comparable(local_db)
    runs, steps, metrics = comparable(db)
    assert [r[:2] for r in runs] == [("fan-run", "SUCCESS"), ("shared-run", "SUCCESS"),
                                     ("solo-0", "SUCCESS"), ("solo-1", "SUCCESS"), ("solo-2", "SUCCESS")]
    assert [s[1] for s in steps if s[0] == "fan-run" and s[2] == "work"] == [f"fan.b{i}.work" for i in range(8)]
    assert ("fan-run", "fan", "fan", "", "parallel", "SUCCESS") in steps
    assert [m[4] for m in metrics if m[0] == "fan-run" and m[2] == "score"] == [float(i) for i in range(8)]
    assert rows(db, "SELECT source_path FROM runs WHERE run_id = 'fan-run'") == [(f"s3://{bucket}/x/fan-run",)]

    # Unchanged: recognised from the listing alone, nothing downloaded.
    mark = s3env.mark()
    again = ingest([store], db)
    assert (again.ingested, again.unchanged) == (0, 5)
    assert gets(s3env.requests_since(mark), bucket) == []

    # Change two runs and delete one: only the changed ones are downloaded.
    run_all([exec_cmd(store, "chunked-fs", "fan-run", "fan.b8.work", 8),
             exec_cmd(store, "file-system", "solo-0", "more", 100)], env_cwd)
    s3client(s3env).delete_object(Bucket=bucket, Key="x/solo-2.json")
    mark = s3env.mark()
    third = ingest([store], db, prune=True)
    assert (third.ingested, third.unchanged, third.pruned, third.failed) == (2, 2, 1, 0)
    fetched = gets(s3env.requests_since(mark), bucket)
    assert fetched and all(p.startswith((f"/{bucket}/x/fan-run/", f"/{bucket}/x/solo-0.json")) for p in fetched)
    assert rows(db, "SELECT run_id FROM runs ORDER BY 1") == [("fan-run",), ("shared-run",), ("solo-0",), ("solo-1",)]
    assert rows(db, "SELECT count(*) FROM steps WHERE run_id = 'fan-run' AND name = 'work'") == [(9,)]
    assert rows(db, "SELECT value FROM metrics WHERE run_id = 'solo-0' AND step_name = 'more' AND key = 'score'") == [(100.0,)]
    assert rows(db, "SELECT count(*) FROM sources") == [(4,)]


def test_cli_ingest_and_exec_take_urls_and_endpoint(tmp_path, bucket, s3env, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    store = f"s3://{bucket}/cli"
    done = runner.invoke(cli, ["exec", "--store", store, "--endpoint-url", s3env.endpoint, "--run-id", "c1",
                               "--step", "work", "--", "export RUNNABLE_TRACK_acc=0.5"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(cli, ["ingest", store, "--endpoint-url", s3env.endpoint, "--db", "i.db", "-q"])
    assert (done.exit_code, done.output) == (0, "1 run ingested, 0 unchanged, 0 failed, 0 pruned; 1 metric point written\n")
    assert rows(tmp_path / "i.db", "SELECT value FROM metrics WHERE key = 'acc'") == [(0.5,)]
    single = runner.invoke(cli, ["ingest", f"{store}/c1.json", "--endpoint-url", s3env.endpoint, "--db", "j.db", "-q"])
    assert (single.exit_code, single.output) == (0, "1 run ingested, 0 unchanged, 0 failed, 0 pruned; 1 metric point written\n")


def test_listing_is_paged_and_streamed(tmp_path, bucket, s3env, monkeypatch):
    """Sources come out while later pages are still unread; chunked folders that span
    page boundaries stay whole."""
    from runlog.store import iter_remote_sources

    store = f"s3://{bucket}/p"
    seed(store, 3)
    for i in range(2):
        with Run.start(run_id=f"c{i}", store=store, layout="chunked-fs") as run:
            for n in range(3):
                with run.step(f"s{n}"):
                    track_this(v=n)
    monkeypatch.setattr(objectstore, "LIST_PAGE_SIZE", 2)
    storage = open_storage(store)
    real = S3Storage.list_page
    pages = []
    monkeypatch.setattr(S3Storage, "list_page", lambda self, p, a: pages.append(1) or real(self, p, a))
    sources = iter_remote_sources(storage)
    key, layout, objects = next(sources)
    assert (key, layout, len(objects), len(pages)) == ("c0", "chunked-fs", 5, 3)  # RunLog.json + 4 steps
    rest = [(k, lay, len(objs)) for k, lay, objs in sources]
    assert rest == [("c1", "chunked-fs", 5), ("r0.json", "file-system", 1), ("r1.json", "file-system", 1),
                    ("r2.json", "file-system", 1)]
    assert len(pages) == 7  # 13 objects, 2 a page
    monkeypatch.setattr(S3Storage, "list_page", real)
    report = ingest([store], tmp_path / "i.db")
    assert (report.ingested, report.failed) == (5, 0)
    assert rows(tmp_path / "i.db", "SELECT count(*) FROM steps WHERE run_id = 'c1'") == [(4,)]


def test_ingest_streams_the_listing_with_progress(tmp_path, bucket, s3env, monkeypatch):
    """Ingest starts on the first page; the total is known once the listing has ended."""
    from runlog.index import sources as remote_store

    store = f"s3://{bucket}/st"
    seed(store, 8)
    monkeypatch.setattr(objectstore, "LIST_PAGE_SIZE", 2)
    monkeypatch.setattr(remote_store, "LOOKAHEAD", 2)
    real = S3Storage.list_page
    pages = []
    monkeypatch.setattr(S3Storage, "list_page", lambda self, p, a: pages.append(1) or real(self, p, a))
    seen = []
    report = ingest([store], tmp_path / "i.db", progress=lambda done, total: seen.append((done, total, len(pages))))
    assert (report.ingested, report.failed) == (8, 0)
    assert seen[0] == (1, None, 1)  # one page of four listed
    assert [done for done, _, _ in seen] == list(range(1, 9))
    assert seen[-1][:2] == (8, 8) and max(p for _, _, p in seen) == 4


def test_memory_stays_flat_however_long_the_listing(tmp_path, bucket, s3env, monkeypatch):
    """A listing of 40,000 unchanged runs costs no more memory than one of 5,000.
    The listing's pages are made up and the index already knows every run, so nothing
    is downloaded: only the streaming counts."""
    import tracemalloc

    def measure(n):
        listing = MadeUpListing(f"s3://{bucket}/runs{n}", n)
        db = tmp_path / f"{n}.db"
        listing.index(db)
        monkeypatch.setattr(S3Storage, "list_page", listing.list_page)
        monkeypatch.setattr(S3Storage, "read", lambda self, key: pytest.fail(f"downloaded {key}"))
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


def test_server_gone_mid_listing_keeps_whole_runs_and_prunes_nothing(tmp_path, monkeypatch):
    """Runs listed before the server went away are ingested, each whole; runs the
    listing never reached stay in the index, even with --prune."""
    own = S3Server(tmp_path / "own")
    own.start()
    try:
        for name, value in TEST_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", own.endpoint)
        s3client(own).create_bucket(Bucket="bkt")
        seed("s3://bkt/s", 12)  # keys in order: r0 r1 r10 r11 r2 ... r9
        db = tmp_path / "i.db"
        assert ingest(["s3://bkt/s"], db).ingested == 12
        for i in (0, 1):  # changed: ingest downloads these again
            with Run.attach(f"r{i}", store="s3://bkt/s") as run:
                with run.step("again"):
                    track_this(v=100 + i)
        s3client(own).delete_object(Bucket="bkt", Key="s/r9.json")  # a complete listing would prune it
        monkeypatch.setattr(objectstore, "LIST_PAGE_SIZE", 2)
        real = S3Storage.list_page
        calls = []

        def list_then_die(self, prefix, args):
            calls.append(1)
            if len(calls) == 4:
                own.stop()
            return real(self, prefix, args)

        monkeypatch.setattr(S3Storage, "list_page", list_then_die)
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
    finally:
        own.stop()


def test_server_gone_while_downloading_stops_ingest_with_whole_runs_only(tmp_path, monkeypatch):
    from runlog.index import sources as remote_store

    own = S3Server(tmp_path / "own")
    own.start()
    try:
        for name, value in TEST_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", own.endpoint)
        client = s3client(own)
        client.create_bucket(Bucket="bkt")
        seed(tmp_path / "local", 12)
        for path in sorted((tmp_path / "local").glob("*.json")):
            client.put_object(Bucket="bkt", Key=f"s/{path.name}", Body=path.read_bytes())
        monkeypatch.setattr(remote_store, "PREFETCH_AHEAD", 2)

        def progress(done, total):
            if done == 3:
                own.stop()

        with pytest.raises(StorageError) as caught:
            ingest(["s3://bkt/s"], tmp_path / "i.db", progress=progress)
        assert str(caught.value).startswith("cannot reach s3://bkt/s (")
        indexed = rows(tmp_path / "i.db", "SELECT run_id, (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id) "
                                          "FROM runs r ORDER BY 1")
        assert 3 <= len(indexed) < 12
        # The first runs in key order, each whole (its step s and success).
        assert indexed == [(run_id, 2) for run_id in sorted(f"r{i}" for i in range(12))[:len(indexed)]]
        assert rows(tmp_path / "i.db", "SELECT count(*) FROM sources") == [(len(indexed),)]
    finally:
        own.stop()


def test_object_deleted_between_listing_and_reading(tmp_path, bucket, s3env, monkeypatch):
    seed(f"s3://{bucket}/d", 3)
    client = s3client(s3env)
    real = S3Storage.list_page

    def list_then_delete(self, prefix, args):
        page = real(self, prefix, args)
        client.delete_object(Bucket=bucket, Key="d/r1.json")
        return page

    monkeypatch.setattr(S3Storage, "list_page", list_then_delete)
    report = ingest([f"s3://{bucket}/d"], tmp_path / "i.db")
    assert (report.ingested, report.failed) == (2, 1)
    assert report.errors == [(f"s3://{bucket}/d/r1.json",
                              "was deleted after it was listed: run ingest again (--prune drops it from the index)")]
    assert rows(tmp_path / "i.db", "SELECT run_id FROM runs ORDER BY 1") == [("r0",), ("r2",)]
    monkeypatch.setattr(S3Storage, "list_page", real)
    again = ingest([f"s3://{bucket}/d"], tmp_path / "i.db", prune=True)
    assert (again.ingested, again.unchanged, again.failed) == (0, 2, 0)
    assert rows(tmp_path / "i.db", "SELECT count(*) FROM ingest_errors") == [(0,)]


def test_truncated_objects_are_reported_and_keep_the_previous_rows(tmp_path, bucket, s3env):
    seed(f"s3://{bucket}/t", 2)
    with Run.start(run_id="c", store=f"s3://{bucket}/t", layout="chunked-fs") as run:
        with run.step("s"):
            track_this(v=7)
    db = tmp_path / "i.db"
    assert ingest([f"s3://{bucket}/t"], db).ingested == 3
    client = s3client(s3env)
    whole = client.get_object(Bucket=bucket, Key="t/r0.json")["Body"].read()
    client.put_object(Bucket=bucket, Key="t/r0.json", Body=whole[: len(whole) // 2])
    chunk = next(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="t/c/StepLog-s-")["Contents"])
    client.put_object(Bucket=bucket, Key=chunk, Body=b'{"name": "s", "internal')
    report = ingest([f"s3://{bucket}/t"], db)
    assert (report.ingested, report.unchanged, report.failed) == (0, 1, 2)
    errors = dict(report.errors)
    assert errors[f"s3://{bucket}/t/r0.json"].startswith("is not JSON (line ")
    assert errors[f"s3://{bucket}/t/c"].startswith(f"{chunk.rsplit('/', 1)[1]}: is not JSON (line 1, ")
    # The last good rows stay, whole.
    assert rows(db, "SELECT run_id, step_name, value FROM metrics ORDER BY 1") == [("c", "s", 7.0), ("r0", "s", 0.0), ("r1", "s", 1.0)]


# -- credentials, URLs, the extra --------------------------------------------------------


def test_credentials_never_reach_run_logs_the_index_or_errors(tmp_path, bucket, s3env, monkeypatch):
    secret = "sEcReT-VaLuE-0123456789"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)  # moto takes any secret
    seed(f"s3://{bucket}/c", 1)
    ingest([f"s3://{bucket}/c"], tmp_path / "i.db")
    assert secret.encode() not in s3client(s3env).get_object(Bucket=bucket, Key="c/r0.json")["Body"].read()
    assert secret.encode() not in (tmp_path / "i.db").read_bytes()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    done = CliRunner().invoke(cli, ["ingest", f"s3://{bucket}/c", "--db", str(tmp_path / "i.db"), "-q"])
    assert done.exit_code == 1
    assert done.output.startswith(f"Error: cannot reach s3://{bucket}/c (") and secret not in done.output
    assert done.output.count("\n") == 1


def test_redact_and_is_url():
    assert redact("s3://AKIA:topsecret@bucket/x") == "s3://***@bucket/x"
    assert redact("s3://bucket/x") == "s3://bucket/x"
    assert [is_url(x) for x in ("s3://b/x", "gs://b", "memory://m", "file:///tmp", "/tmp/x", "rel/x")] == [
        True, True, True, False, False, False]


def test_missing_s3fs_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingExtra) as caught:
        RunLogStore("s3://b/x")
    assert str(caught.value) == "this needs s3fs, which is not installed: pip install 'runlog[s3]'"
    done = CliRunner().invoke(cli, ["ingest", "s3://b/x", "--db", str(tmp_path / "i.db"), "-q"])
    assert (done.exit_code, done.output) == (1, "Error: this needs s3fs, which is not installed: pip install 'runlog[s3]'\n")


def test_unknown_protocol_and_endpoint_for_a_folder_are_one_line_errors(tmp_path):
    with pytest.raises(RunlogError) as caught:
        RunLogStore("nosuchproto://b/x")
    assert str(caught.value) == "nosuchproto://b/x: fsspec does not know the protocol nosuchproto://"
    with pytest.raises(RunlogError) as caught:
        RunLogStore(tmp_path / "s", endpoint_url="http://127.0.0.1:9000")
    assert str(caught.value) == f"--endpoint-url is for s3:// stores, and {tmp_path / 's'} is a folder"


def test_missing_bucket_is_a_clear_error(tmp_path, s3env):
    done = CliRunner().invoke(cli, ["ingest", "s3://no-such-bucket/x", "--db", str(tmp_path / "i.db"), "-q"])
    assert (done.exit_code, done.output) == (1, "Error: s3://no-such-bucket/x: no such bucket: create it, or check the URL\n")


# -- any fsspec protocol: memory:// ----------------------------------------------------------


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_memory_store_round_trip_and_ingest(tmp_path, layout):
    url = f"memory://runlog-test-{layout}-{tmp_path.name}"
    record_pipeline(url, layout)
    record_pipeline(tmp_path / "local", layout)
    assert ingest([url], tmp_path / "m.db").ingested == 1
    assert ingest([tmp_path / "local"], tmp_path / "l.db").ingested == 1
    assert comparable(tmp_path / "m.db") == comparable(tmp_path / "l.db")
    again = ingest([url], tmp_path / "m.db")
    assert (again.ingested, again.unchanged) == (0, 1)
