"""The lake (runlog lake build, runlog query --lake): the same answers as the SQLite
index from DuckDB, Polars and Spark; incremental rebuilds that read only listings;
shards; bad input; killed and concurrent builders."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytest.importorskip("pyarrow", reason="the lake needs pyarrow: pip install 'runlog-store[lake]'")
pytest.importorskip("duckdb", reason="the lake needs duckdb: pip install 'runlog-store[lake]'")

from click.testing import CliRunner  # noqa: E402

from bench.common import age  # noqa: E402
from bench.generate import FORMATS, Shape, generate, make_run, write_run  # noqa: E402
from conftest import REPO, fixture_sources  # noqa: E402
from runlog.cli import cli  # noqa: E402
from runlog.index import ingest, open_db  # noqa: E402
from runlog.index.queries import run_named, run_sql  # noqa: E402
from runlog.lake import TABLES, build_lake, open_lake  # noqa: E402
from runlog.lake.dest import LakeDest  # noqa: E402

BIN = Path(sys.executable).parent
FIXTURE_RUNS = len(fixture_sources())
# Several thousand small runs in all four formats and layouts, and the real ones.
SHAPE = Shape(runs=3000, steps=5, keys=3, increments=4)


def copy_fixtures(store: Path) -> None:
    for source in fixture_sources():
        if source.is_dir():
            shutil.copytree(source, store / source.name)
        else:
            shutil.copy2(source, store / source.name)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A generated store, its SQLite index and its lake (built by 2 worker processes)."""
    root = tmp_path_factory.mktemp("lake")
    store = root / "store"
    generate(store, SHAPE)
    copy_fixtures(store)
    age(store, 3600)
    ingest([store], root / "runlog.db")
    report = build_lake([store], root / "lake", workers=2)
    assert report.failed == 0 and report.written == SHAPE.runs + len(fixture_sources())
    return root


def normal(value):
    """A value as both engines' rows compare: times as aware UTC datetimes, NaN as a marker."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def rows_of(db, sql: str, params=None, named: str | None = None) -> list[dict]:
    return (run_named(db, named, params) if named else run_sql(db, sql, params))[1]


def sqlite_rows(db_path: Path, sql: str, params=None, named: str | None = None) -> list[dict]:
    db = open_db(db_path, readonly=True)
    try:
        return rows_of(db, sql, params, named)
    finally:
        db.close()


def lake_rows(dest, sql: str, params=None, named: str | None = None, endpoint_url=None) -> list[dict]:
    with open_lake(str(dest), endpoint_url) as db:
        return rows_of(db, sql, params, named)


TIME_COLUMNS = {"start_time", "end_time", "ingested_at"}


def as_lake(row: dict) -> dict:
    """A SQLite row typed as the lake types it (times parsed as UTC, epoch ms as a time, flags as bools)."""
    from runlog.lake.tables import utc_time

    out = {}
    for key, value in row.items():
        if key in TIME_COLUMNS and isinstance(value, str):
            value = utc_time(value)
        elif key == "timestamp_ms" and isinstance(value, int):
            value = datetime.fromtimestamp(value / 1000, timezone.utc)
        elif key in ("use_cached", "mock", "code_identifier_dependable") and value is not None:
            value = bool(value)
        out[key] = normal(value)
    return out


def same_rows(sqlite: list[dict], lake: list[dict]) -> None:
    assert [as_lake(r) for r in sqlite] == [{k: normal(v) for k, v in r.items()} for r in lake]


def questions(index) -> list[tuple[str, dict]]:
    """Named queries to ask both: leaderboards, the history of chosen runs (one of each
    format, the real ones too), tags, failed steps, parameter differences."""
    asked = [("leaderboard", {"key": "key_1", "direction": "asc"}), ("leaderboard", {"key": "step1/key_1"}),
             ("leaderboard", {"key": "loss", "direction": "min"}), ("runs_by_tag", {"tag": "experiment-3"}),
             ("failed_steps", {}), ("param_diff", {"run_a": "bench-000004", "run_b": "bench-000007"})]
    chosen = ["bench-000001", "bench-000002", "bench-000003", "bench-000004", "legacy-track-this",
              "case4-branches-chunked", "magnus-env-metrics"]
    for run_id in chosen:
        names = rows_of(index, "SELECT name FROM run_metrics WHERE run_id = :r ORDER BY count DESC, name LIMIT 3",
                        {"r": run_id})
        asked += [("metric_history", {"run_id": run_id, "key": row["name"]}) for row in names]
    return asked


def compare_everything(db_path: Path, dest, endpoint_url=None, whole_tables: bool = True) -> None:
    index = open_db(db_path, readonly=True)
    lake = open_lake(str(dest), endpoint_url)
    try:
        for table in TABLES:
            count = f"SELECT count(*) AS n FROM {table}"
            assert rows_of(index, count) == rows_of(lake, count), table
        for table, order in (("runs", "run_id"), ("run_metrics", "run_id, name"), ("run_params", "run_id, name")):
            if not whole_tables:
                break
            sql = f"SELECT * FROM {table} ORDER BY {order}"
            same_rows([{k: v for k, v in r.items() if k != "ingested_at"} for r in rows_of(index, sql)],
                      [{k: v for k, v in r.items() if k != "ingested_at"} for r in rows_of(lake, sql)])
        asked = questions(index) if whole_tables else questions(index)[:3] + questions(index)[6:9]
        assert len(asked) > (20 if whole_tables else 5)
        for name, params in asked:
            want = rows_of(index, "", params, named=name)
            assert want or name == "failed_steps", (name, params)
            same_rows(want, rows_of(lake, "", params, named=name))
    finally:
        index.close()
        lake.close()


def test_duckdb_over_the_lake_answers_as_sqlite(built):
    compare_everything(built / "runlog.db", built / "lake")


def test_query_lake_cli_prints_what_the_index_prints(built):
    args = ["query", "--named", "leaderboard", "-p", "key", "key_2", "--limit", "5"]
    runner = CliRunner()
    index = runner.invoke(cli, [*args, "--db", str(built / "runlog.db")])
    lake = runner.invoke(cli, [*args, "--lake", str(built / "lake")])
    assert index.exit_code == lake.exit_code == 0
    assert lake.output == index.output and "bench-" in lake.output
    refused = runner.invoke(cli, ["query", "--lake", str(built / "lake"), "COPY runs TO '/tmp/x.csv'"])
    assert refused.exit_code == 1 and "read-only" in refused.output and "Traceback" not in refused.output
    missing = runner.invoke(cli, ["query", "--lake", str(built / "nowhere"), "select 1"])
    assert missing.exit_code == 1 and "runlog lake build" in missing.output


def test_polars_reads_the_lake(built):
    pl = pytest.importorskip("polars", reason="polars is not installed (pip install polars)")
    lake = built / "lake"
    metrics = pl.scan_parquet(str(lake / "metrics" / "*.parquet")).select(pl.len()).collect().item()
    assert metrics == sqlite_rows(built / "runlog.db", "SELECT count(*) AS n FROM metrics")[0]["n"]
    runs = pl.read_parquet(str(lake / "runs" / "*.parquet"))
    assert runs.schema["start_time"] == pl.Datetime("us", "UTC") and runs.height == SHAPE.runs + FIXTURE_RUNS


def test_spark_reads_the_lake(built):
    pytest.importorskip("pyspark", reason="Spark is tested only where pyspark (and Java 17) are installed: "
                                          "pip install 'runlog-store[spark]'")
    if shutil.which("java") is None:
        pytest.skip("pyspark is installed but there is no java on PATH")
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[1]").appName("runlog-test").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    try:
        for table in TABLES:
            frame = spark.read.parquet(str(built / "lake" / table))
            frame.createOrReplaceTempView(table)
            count = sqlite_rows(built / "runlog.db", f"SELECT count(*) AS n FROM {table}")[0]["n"]
            assert frame.count() == count, table
        board = spark.sql("SELECT m.run_id, m.last FROM run_metrics m WHERE m.name = 'key_1' "
                          "ORDER BY m.last ASC, m.run_id LIMIT 20").collect()
        want = sqlite_rows(built / "runlog.db", "", {"key": "key_1", "direction": "asc"}, named="leaderboard")[:20]
        assert [(r["run_id"], r["last"]) for r in board] == [(r["run_id"], r["value"]) for r in want]
    finally:
        spark.stop()


def test_an_index_file_as_source_gives_the_same_lake(built, tmp_path):
    report = build_lake([built / "runlog.db"], tmp_path / "from-index")
    assert report.failed == 0 and report.written == SHAPE.runs + FIXTURE_RUNS
    compare_everything(built / "runlog.db", tmp_path / "from-index")


def test_rebuilding_unchanged_input_reads_only_listings_and_writes_nothing(built, monkeypatch):
    lake = built / "lake"
    before = {p: p.stat().st_mtime_ns for p in lake.rglob("*")}
    read = LakeDest.read
    touched = []
    monkeypatch.setattr(LakeDest, "read", lambda self, key: touched.append(key) or read(self, key))
    for name in ("put", "put_many", "create", "delete"):
        monkeypatch.setattr(LakeDest, name, lambda self, *args, name=name: touched.append(name))
    report = build_lake([built / "store"], lake, workers=2)
    assert (report.written, report.buckets_written, report.failed) == (0, 0, 0)
    assert report.unchanged == SHAPE.runs + FIXTURE_RUNS
    assert touched == ["_runlog/lake.json"]  # the descriptor; the rest came from two listings
    assert {p: p.stat().st_mtime_ns for p in lake.rglob("*")} == before


# -- small stores: changes, faults, shards ------------------------------------------

SMALL = Shape(runs=48, steps=5, keys=3, increments=4)


@pytest.fixture
def small(tmp_path):
    store = tmp_path / "store"
    generate(store, SMALL)
    age(store, 3600)
    return store


def lake_snapshot(dest: Path) -> dict[str, list]:
    """Every table's rows, sorted, ``ingested_at`` aside (it is the build's time)."""
    out = {}
    with open_lake(str(dest)) as db:
        for table in TABLES:
            rows = run_sql(db, f"SELECT * FROM {table}")[1]
            out[table] = sorted(repr(sorted((k, normal(v)) for k, v in r.items() if k != "ingested_at"))
                                for r in rows)
    return out


def change(store: Path, indexes: list[int]) -> None:
    """New values for these runs, in their own layouts (files dated half an hour ago)."""
    import random

    for index in indexes:
        fmt = FORMATS[index % len(FORMATS)]
        write_run(store, make_run(index, SMALL, fmt, random.Random(time.time_ns())), fmt, version=2 + index)
        name = f"bench-{index:06d}"
        target = store / name if (store / name).is_dir() else store / f"{name}.json"
        if target.is_dir():
            age(target, 1800)
        else:
            moment = time.time_ns() - 1800 * 10**9
            os.utime(target, ns=(moment, moment))


def test_a_rebuild_rewrites_only_the_buckets_whose_runs_changed(small, tmp_path):
    dest = tmp_path / "lake"
    build_lake([small], dest, buckets=16)
    files = {p: p.stat().st_mtime_ns for p in (dest / "metrics").iterdir()}
    change(small, [3, 10])
    shutil.rmtree(small / "bench-000005")  # a chunked run folder (FORMATS[5 % 4])
    report = build_lake([small], dest, prune=True)
    assert (report.written, report.removed, report.failed) == (2, 1, 0)
    from runlog.lake.state import bucket_name, bucket_of

    touched = {bucket_name(bucket_of(f"bench-{i:06d}", 16)) for i in (3, 5, 10)}
    rewritten = {p.name[5:11] for p, t in files.items() if p.exists() and p.stat().st_mtime_ns != t or not p.exists()}
    assert rewritten == touched
    fresh = tmp_path / "fresh"
    build_lake([small], fresh, buckets=16)
    assert lake_snapshot(dest) == lake_snapshot(fresh)


def test_shards_fill_one_lake_as_one_build_does(small, tmp_path):
    for shard in ((0, 3), (1, 3), (2, 3)):
        build_lake([small], tmp_path / "sharded", shard=shard, buckets=8)
    build_lake([small], tmp_path / "whole", buckets=8)
    assert lake_snapshot(tmp_path / "sharded") == lake_snapshot(tmp_path / "whole")
    with pytest.raises(Exception, match="at most 8 shards"):
        build_lake([small], tmp_path / "sharded", shard=(0, 9))


def test_a_bad_run_log_is_reported_and_skipped(small, tmp_path):
    (small / "broken.json").write_text('{"run_id": ')
    (small / "wrong.json").write_text('{"run_id": "wrong", "steps": {"s": {"name": 3}}}')
    age(small, 3600)
    runner = CliRunner()
    for _ in range(2):  # the second build reads nothing, and still reports them
        result = runner.invoke(cli, ["lake", "build", str(small), str(tmp_path / "lake"), "--quiet"])
        assert result.exit_code == 1
        assert f"error: {small / 'broken.json'}: is not JSON" in result.output
        assert f"error: {small / 'wrong.json'}: steps.s.name: Input should be a valid string" in result.output
        assert "2 failed" in result.output
    assert lake_rows(tmp_path / "lake", "SELECT count(*) AS n FROM runs") == [{"n": SMALL.runs}]
    strict = runner.invoke(cli, ["lake", "build", str(small), str(tmp_path / "strict"), "--strict", "-q"])
    assert strict.exit_code == 1 and "Traceback" not in strict.output


CRASHING_CHILD = """
import os, signal, sys
import runlog.lake.dest as dest
calls = {"n": 0}
real_replace, real_delete = os.replace, dest.LakeDest.delete
def counted(*args):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
def replace(*args, **kwargs):
    counted()
    return real_replace(*args, **kwargs)
def delete(self, key):
    counted()
    return real_delete(self, key)
dest.os.replace = replace
dest.LakeDest.delete = delete
from runlog.lake import build_lake
build_lake([sys.argv[1]], sys.argv[2])
"""


def test_a_killed_build_leaves_a_readable_lake_and_the_next_build_completes_it(small, tmp_path):
    dest = tmp_path / "lake"
    build_lake([small], dest, buckets=4)
    change(small, list(range(0, SMALL.runs, 3)))  # a third of the runs, in every bucket
    before = lake_snapshot(dest)
    kills = 0
    for kill_at in (3, 11, 1, 6, 100):  # in a bucket's files, between them and its state, after it
        done = subprocess.run([sys.executable, "-c", CRASHING_CHILD, str(small), str(dest), str(kill_at)],
                              cwd=REPO, capture_output=True, text=True)
        if done.returncode == 0:  # the build got to its end before that point
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        kills += 1
        snapshot = lake_snapshot(dest)  # every file whole: DuckDB reads all of them
        assert len(snapshot["runs"]) == len(before["runs"])
    assert kills >= 3
    report = build_lake([small], dest)
    assert report.failed == 0
    fresh = tmp_path / "fresh"
    build_lake([small], fresh, buckets=4)
    assert lake_snapshot(dest) == lake_snapshot(fresh)
    assert not list(dest.rglob(".*.tmp"))


def test_two_builders_of_the_same_shard_at_once_do_not_corrupt_each_other(small, tmp_path):
    dest = tmp_path / "lake"
    command = [str(BIN / "runlog"), "lake", "build", str(small), str(dest), "--buckets", "4", "--quiet"]
    builders = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    outputs = [b.communicate(timeout=240) for b in builders]
    assert [b.returncode for b in builders] == [0, 0], outputs
    written = sorted(int(out.split(" runs written")[0]) for out, _ in outputs)
    assert written[0] + written[1] >= SMALL.runs  # each bucket built once, by whichever came first
    fresh = tmp_path / "fresh"
    build_lake([small], fresh, buckets=4)
    assert lake_snapshot(dest) == lake_snapshot(fresh)
    from runlog.lake.state import published

    assert all(len(states) == 1 for states in published(LakeDest(dest)).values())


# -- object storage ----------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    pytest.importorskip("moto.server", reason="the S3 tests need moto[server]: pip install -e '.[test]'")
    pytest.importorskip("s3fs", reason="the S3 tests need s3fs: pip install -e '.[test]'")
    from s3_server import TEST_ENV, S3Server

    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    saved = {name: os.environ.get(name) for name in TEST_ENV}
    os.environ.update(TEST_ENV)
    import boto3

    boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket="lake")
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


def test_a_lake_in_s3_answers_as_sqlite_and_a_rebuild_only_lists(built, s3):
    url = "s3://lake/runs"
    report = build_lake([built / "runlog.db"], url, buckets=4, endpoint_url=s3.endpoint)
    assert report.failed == 0 and report.written == SHAPE.runs + FIXTURE_RUNS
    # every table's count, the leaderboards and histories (whole tables are compared on local disk)
    compare_everything(built / "runlog.db", url, endpoint_url=s3.endpoint, whole_tables=False)
    mark = s3.mark()
    again = build_lake([built / "runlog.db"], url, endpoint_url=s3.endpoint)
    assert (again.written, again.buckets_written, again.unchanged) == (0, 0, SHAPE.runs + FIXTURE_RUNS)
    requests = [(m, p.split("?")[0], "list-type" in p) for m, p, _ in s3.requests_since(mark)]
    assert {m for m, _, _ in requests} <= {"GET", "HEAD"}  # no PUT, no DELETE
    assert {p for m, p, listing in requests if not listing} == {"/lake/runs/_runlog/lake.json"}  # + listings


def test_runs_in_s3_build_a_lake_in_s3(s3, tmp_path):
    import boto3

    client = boto3.client("s3", endpoint_url=s3.endpoint)
    client.create_bucket(Bucket="store")
    local = tmp_path / "store"
    generate(local, Shape(runs=8, steps=5, keys=2, increments=3))
    for path in local.rglob("*.json"):
        client.put_object(Bucket="store", Key=f"runs/{path.relative_to(local).as_posix()}", Body=path.read_bytes())
    age(local, 3600)
    ingest([local], tmp_path / "runlog.db")
    report = build_lake(["s3://store/runs"], "s3://lake/from-s3", buckets=4, endpoint_url=s3.endpoint)
    assert (report.written, report.failed) == (8, 0)
    for table in TABLES:
        count = f"SELECT count(*) AS n FROM {table}"
        assert sqlite_rows(tmp_path / "runlog.db", count) == \
            lake_rows("s3://lake/from-s3", count, endpoint_url=s3.endpoint), table
    runner = CliRunner()
    shown = runner.invoke(cli, ["query", "--lake", "s3://lake/from-s3", "--endpoint-url", s3.endpoint,
                                "select run_id from runs order by run_id limit 2", "--format", "csv"])
    assert shown.exit_code == 0 and shown.output == "run_id\nbench-000000\nbench-000001\n"
