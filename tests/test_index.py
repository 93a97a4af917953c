"""runlog.index.ingester: the schema, and ingest of every fixture format into exact rows."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from runlog.index import flatten
from runlog.errors import BadRunLog, RunlogError
from runlog.index import SCHEMA_VERSION, ingest, open_db, schema_sql
from runlog.index.db import ensure_schema

REPO = Path(__file__).resolve().parent.parent
HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def age(path: Path) -> None:
    """Give a store the mtimes of files written long ago (not 'racy')."""
    for item in [path, *path.rglob("*")]:
        os.utime(item, ns=(HOUR_AGO_NS, HOUR_AGO_NS))


def dump(db_path) -> str:
    """Every row of every table, in a stable order."""
    conn = sqlite3.connect(db_path)
    try:
        out = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"):
            out.append(f"{table}: {conn.execute(f'SELECT * FROM {table} ORDER BY 1, 2, 3').fetchall()!r}")
        return "\n".join(out)
    finally:
        conn.close()


@pytest.fixture
def indexed(fixture_store, tmp_path):
    db = tmp_path / "runlog.db"
    report = ingest([fixture_store], db)
    assert (report.ingested, report.failed, report.errors) == (6, 0, [])
    return db


# -- schema --------------------------------------------------------------------


def test_schema_file_is_current():
    # schema/index.sql is generated: `runlog schema --sql > schema/index.sql`
    assert (REPO / "schema" / "index.sql").read_text() == schema_sql()


def test_tables_match_flatten_columns_and_indexes_exist(tmp_path):
    db = open_db(tmp_path / "x.db")
    expected = {
        "runs": flatten.RUN_COLUMNS, "steps": flatten.STEP_COLUMNS, "attempts": flatten.ATTEMPT_COLUMNS,
        "metrics": flatten.METRIC_COLUMNS, "params": flatten.PARAM_COLUMNS, "catalog": flatten.CATALOG_COLUMNS,
        "code_identities": flatten.CODE_IDENTITY_COLUMNS,
        "sources": ("path", "run_id", "size", "mtime_ns", "hash", "ingested_at"),
        "ingest_errors": ("path", "error", "seen_at"),
    }
    for table, columns in expected.items():
        assert tuple(db[table].columns_dict) == columns, table
    assert db["latest_metrics"].columns_dict.keys() == {"run_id", "step_name", "key", "step", "value", "value_text", "kind"}
    assert list(db["run_summary"].columns_dict) == [
        "run_id", "tag", "status", "start_time", "duration_s", "steps", "failed_steps"]
    assert [(i.name, i.columns) for i in db["metrics"].indexes if not i.name.startswith("sqlite_")] == [
        ("metrics_key_run_step", ["key", "run_id", "step"]),
        ("metrics_run_key_step", ["run_id", "key", "step"]),
    ]
    assert db["metrics"].pks == ["run_id", "step_name", "key", "step"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_ensure_schema_writes_nothing_when_current(tmp_path):
    db = open_db(tmp_path / "x.db")
    before = db.conn.total_changes
    ensure_schema(db.conn)
    assert db.conn.total_changes == before
    db.close()


def test_newer_schema_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RunlogError, match="schema version 99, newer than this runlog"):
        open_db(tmp_path / "x.db")
    with pytest.raises(RunlogError, match="schema version 99"):
        open_db(tmp_path / "x.db", readonly=True)


def test_readonly_open_of_missing_or_foreign_file(tmp_path):
    with pytest.raises(RunlogError, match=r"no index at .*nothing.db: build it with `runlog ingest STORE --db .*nothing.db`"):
        open_db(tmp_path / "nothing.db", readonly=True)
    assert not (tmp_path / "nothing.db").exists()
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(RunlogError, match="is not a runlog index"):
        open_db(tmp_path / "other.db", readonly=True)
    (tmp_path / "text.db").write_text("not a database at all, just some text " * 20)
    with pytest.raises(RunlogError, match="cannot open index .*text.db: file is not a database"):
        open_db(tmp_path / "text.db")


# -- exact rows from the real fixtures ---------------------------------------------


def test_runs_rows(indexed):
    got = rows(indexed, "SELECT run_id, tag, status, format, layout, use_cached, start_time, end_time FROM runs ORDER BY run_id")
    assert got == [
        ("case1-simple", "study", "SUCCESS", "g3", "file-system", 0, "2026-11-26 09:27:35.361541", "2026-11-26 09:27:35.435223"),
        ("case2-metrics", "exp-a", "SUCCESS", "g3", "file-system", 0, "2026-11-26 09:27:41.754843", "2026-11-26 09:27:41.840436"),
        ("case4-branches-chunked", "branches", "SUCCESS", "g3", "chunked-fs", 0, "2026-11-26 09:27:49.095961", "2026-11-26 09:27:49.633450"),
        ("legacy-track-this", "legacy-demo", "SUCCESS", "g2", "file-system", 0, "2026-11-26 09:29:11.834054", "2026-11-26 09:29:12.296394"),
        ("magnus-env-metrics", "magnus-demo", "SUCCESS", "g1", "file-system", 0, "2026-11-26 09:30:01.737691", "2026-11-26 09:30:02.071181"),
        ("magnus-env-metrics-chunked", "magnus-demo", "SUCCESS", "g1", "chunked-fs", 0, "2026-11-26 09:30:03.075233", "2026-11-26 09:30:03.314966"),
    ]
    duration = rows(indexed, "SELECT duration_s FROM runs WHERE run_id = 'case2-metrics'")[0][0]
    assert duration == pytest.approx(0.085593)


def test_seed_era_step_series(indexed):
    got = rows(indexed, "SELECT step_name, key, step, value, value_text, kind FROM metrics "
                        "WHERE run_id = 'legacy-track-this' AND key IN ('loss', 'env_loss', 'eggs.Ham', 'is_it_true', 'env_flag') "
                        "ORDER BY key, step")
    assert got == [
        ("emit api metrics", "eggs.Ham", 0, None, "world", "text"),
        ("emit api metrics", "eggs.Ham", 1, None, "universe", "text"),
        ("emit env metrics", "env_flag", 0, None, "true", "bool"),
        ("emit env metrics", "env_loss", 0, 0.8, None, "numeric"),
        ("emit env metrics", "env_loss", 2, 0.3, None, "numeric"),
        ("emit api metrics", "is_it_true", 0, None, "false", "bool"),
        ("emit api metrics", "loss", 0, 0.9, None, "numeric"),
        ("emit api metrics", "loss", 1, 0.5, None, "numeric"),
        ("emit api metrics", "loss", 2, 0.2, None, "numeric"),
    ]
    # timestamp_ms is the attempt's end time read as UTC
    assert set(rows(indexed, "SELECT timestamp_ms FROM metrics WHERE run_id = 'legacy-track-this' AND key = 'loss'")) == {
        (1795685351835,)}


def test_magnus_metrics_lower_case_eggs_and_bools(indexed):
    for run_id in ("magnus-env-metrics", "magnus-env-metrics-chunked"):
        got = rows(indexed, "SELECT step_name, key, step, value, value_text, kind FROM metrics WHERE run_id = ? "
                            "ORDER BY step_name, key, step", (run_id,))
        assert got == [
            ("parallel.left.left_metrics", "left_score", 0, 0.5, None, "numeric"),
            ("parallel.right.right_metrics", "right_score", 0, 0.25, None, "numeric"),
            ("shell", "answer", 0, 42.0, None, "numeric"),
            ("shell", "camelcase", 0, 1.0, None, "numeric"),
            ("shell", "count", 0, 12.0, None, "numeric"),
            ("shell", "eggs.ham", 0, None, "world", "text"),
            ("shell", "eggs.ham", 1, None, "universe", "text"),
            ("shell", "is_it_true", 0, None, "true", "bool"),
            ("shell", "spam", 0, None, "hello", "text"),
            ("shell", "spam", 1, None, "hey", "text"),
        ]


def test_g3_list_metric_is_a_series_and_models_flatten(indexed):
    got = rows(indexed, "SELECT key, step, value, value_text, kind FROM metrics WHERE run_id = 'case2-metrics' ORDER BY key, step")
    assert got == [
        ("accuracy", 0, 0.875, None, "numeric"),
        ("converged", 0, None, "true", "bool"),
        ("eval_report.labelName", 0, None, "positive", "text"),
        ("eval_report.precision", 0, 0.8, None, "numeric"),
        ("eval_report.recall", 0, 0.7, None, "numeric"),
        ("loss_curve", 0, 0.9, None, "numeric"),
        ("loss_curve", 1, 0.61, None, "numeric"),
        ("loss_curve", 2, 0.42, None, "numeric"),
        ("loss_curve", 3, 0.33, None, "numeric"),
        ("n_epochs", 0, 4.0, None, "numeric"),
    ]
    params = rows(indexed, "SELECT step_name, attempt_number, direction, key, kind, value, value_text FROM params "
                           "WHERE run_id = 'case2-metrics' AND key IN ('doubled_rows', 'train_config') ORDER BY step_name, direction, key")
    assert params == [
        ("", 0, "run", "doubled_rows", "json", 200.0, "200"),
        ("", 0, "run", "train_config", "json", None, '{"lr":0.01,"layers":[64,32]}'),
        ("prepare", 1, "output", "doubled_rows", "json", 200.0, "200"),
        ("train", 1, "input", "doubled_rows", "json", 200.0, "200"),
        ("train", 1, "output", "train_config", "json", None, '{"lr":0.01,"layers":[64,32]}'),
    ]


def test_chunked_branches_with_internal_names(indexed):
    got = rows(indexed, "SELECT step_name, branch, step_type, position FROM steps WHERE run_id = 'case4-branches-chunked' ORDER BY position")
    assert got == [
        ("parallel_step", "", "parallel", 0),
        ("parallel_step.branch1.score a", "parallel_step.branch1", "task", 1),
        ("parallel_step.branch1.echo a", "parallel_step.branch1", "task", 2),
        ("parallel_step.branch1.success", "parallel_step.branch1", "success", 3),
        ("parallel_step.branch2.score b", "parallel_step.branch2", "task", 4),
        ("parallel_step.branch2.success", "parallel_step.branch2", "success", 5),
        ("map_step", "", "map", 6),
        ("map_step.1.inner", "map_step.1", "task", 7),
        ("map_step.1.success", "map_step.1", "success", 8),
        ("map_step.2.inner", "map_step.2", "task", 9),
        ("map_step.2.success", "map_step.2", "success", 10),
        ("map_step.3.inner", "map_step.3", "task", 11),
        ("map_step.3.success", "map_step.3", "success", 12),
        ("collect", "", "task", 13),
        ("success", "", "success", 14),
    ]
    assert rows(indexed, "SELECT step_name, value FROM metrics WHERE run_id = 'case4-branches-chunked' AND key = 'chunk_score' ORDER BY 1") == [
        ("map_step.1.inner", 0.1), ("map_step.2.inner", 0.2), ("map_step.3.inner", 0.3)]
    # composite steps have no attempts; G3 code identities sit on the attempt
    assert rows(indexed, "SELECT count(*) FROM attempts WHERE run_id = 'case4-branches-chunked' AND step_name IN ('parallel_step', 'map_step')") == [(0,)]
    assert rows(indexed, "SELECT DISTINCT attempt_number FROM code_identities WHERE run_id = 'case4-branches-chunked'") == [(1,)]
    magnus = rows(indexed, "SELECT step_name, branch FROM steps WHERE run_id = 'magnus-env-metrics-chunked' AND branch != '' ORDER BY position")
    assert magnus == [
        ("parallel.left.left_metrics", "parallel.left"), ("parallel.left.success", "parallel.left"),
        ("parallel.right.right_metrics", "parallel.right"), ("parallel.right.success", "parallel.right"),
    ]


def test_catalog_code_identities_and_views(indexed):
    assert rows(indexed, "SELECT * FROM catalog WHERE run_id = 'legacy-track-this' AND step_name = 'emit api metrics'") == [(
        "legacy-track-this", "emit api metrics", "emit_api_metrics.execution.log",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "legacy-track-this/emit_api_metrics.execution.log", ".catalog", "put")]
    assert rows(indexed, "SELECT attempt_number, code_identifier, code_identifier_dependable FROM code_identities "
                         "WHERE run_id = 'legacy-track-this' AND step_name = 'success'") == [
        (0, "af336f59a247678ca8e4d4b9424e408b72fe74d7", 1)]
    assert rows(indexed, "SELECT step, value FROM latest_metrics WHERE run_id = 'legacy-track-this' AND key = 'env_loss'") == [(2, 0.3)]
    assert rows(indexed, "SELECT * FROM run_summary WHERE run_id = 'case4-branches-chunked'") == [
        ("case4-branches-chunked", "branches", "SUCCESS", "2026-11-26 09:27:49.095961", pytest.approx(0.537489), 15, 0)]


def test_magnus_chunk_versions_resolve_to_the_newest(tmp_path, fixtures_dir):
    run = tmp_path / "store" / "magnus-env-metrics-chunked"
    shutil.copytree(fixtures_dir / "magnus-0.5-chunked-fs" / "magnus-env-metrics-chunked", run)
    current = next(run.glob("StepLog-shell-*.json"))
    version = int(current.stem.rsplit("-", 1)[1])
    data = json.loads(current.read_text())
    for delta, answer in ((+5, 99.0), (-5, 1.0)):  # a newer and an older version of the same chunk
        data["user_defined_metrics"]["answer"] = answer
        (run / f"StepLog-shell-{version + delta}.json").write_text(json.dumps(data))
    db = tmp_path / "x.db"
    assert ingest([tmp_path / "store"], db).ingested == 1
    assert rows(db, "SELECT value FROM metrics WHERE key = 'answer'") == [(99.0,)]


# -- incremental ingest -------------------------------------------------------------


def test_reingest_of_unchanged_input_writes_nothing(fixture_store, tmp_path):
    age(fixture_store)
    db = tmp_path / "x.db"
    first = ingest([fixture_store], db)
    assert (first.ingested, first.unchanged, first.metric_points) == (6, 0, 53)
    before = dump(db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    wal = (tmp_path / "x.db-wal").read_bytes() if (tmp_path / "x.db-wal").exists() else b""
    second = ingest([fixture_store], db)
    assert (second.ingested, second.unchanged, second.failed, second.metric_points) == (0, 6, 0, 0)
    assert dump(db) == before
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert ((tmp_path / "x.db-wal").read_bytes() if (tmp_path / "x.db-wal").exists() else b"") == wal


def test_changed_source_replaces_the_runs_rows(fixture_store, tmp_path):
    age(fixture_store)
    db = tmp_path / "x.db"
    ingest([fixture_store], db)
    path = fixture_store / "legacy-track-this.json"
    data = json.loads(path.read_text())
    metrics = data["steps"]["emit api metrics"]["user_defined_metrics"]
    metrics["loss"] = {"0": 0.7}
    del metrics["spam"]
    path.write_text(json.dumps(data))
    report = ingest([fixture_store], db)
    assert (report.ingested, report.unchanged) == (1, 5)
    assert rows(db, "SELECT step, value FROM metrics WHERE run_id = 'legacy-track-this' AND key = 'loss'") == [(0, 0.7)]
    assert rows(db, "SELECT count(*) FROM metrics WHERE run_id = 'legacy-track-this' AND key = 'spam'") == [(0,)]
    assert report.metric_points == rows(db, "SELECT count(*) FROM metrics WHERE run_id = 'legacy-track-this'")[0][0]


def test_touched_file_with_same_content_is_confirmed_unchanged_by_hash(fixture_store, tmp_path):
    age(fixture_store)
    db = tmp_path / "x.db"
    ingest([fixture_store], db)
    before = dump(db)
    os.utime(fixture_store / "case1-simple.json", ns=(HOUR_AGO_NS + 10**9, HOUR_AGO_NS + 10**9))
    report = ingest([fixture_store], db)
    assert (report.ingested, report.unchanged) == (0, 6)
    assert rows(db, "SELECT mtime_ns FROM sources WHERE path LIKE '%case1-simple.json'") == [(HOUR_AGO_NS + 10**9,)]
    # only the sources row learnt the new mtime
    assert [t for t in dump(db).splitlines() if not t.startswith("sources:")] == [
        t for t in before.splitlines() if not t.startswith("sources:")]


def test_racy_rewrite_with_same_size_and_mtime_is_caught(tmp_path, fixtures_dir):
    store = tmp_path / "store"
    store.mkdir()
    path = store / "case1-simple.json"
    shutil.copy(fixtures_dir / "v0.50-file-system" / "case1-simple.json", path)
    db = tmp_path / "x.db"
    ingest([store], db)
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace('"tag": "study"', '"tag": "STUDY"'))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    report = ingest([store], db)
    assert report.ingested == 1
    assert rows(db, "SELECT tag FROM runs") == [("STUDY",)]


def test_chunked_folder_change_is_seen(fixture_store, tmp_path):
    age(fixture_store)
    db = tmp_path / "x.db"
    ingest([fixture_store], db)
    run = fixture_store / "case4-branches-chunked"
    branch = run / "BranchLog-map_step.3.json"
    branch.write_text(branch.read_text().replace('"value": 0.3', '"value": 0.35'))
    report = ingest([fixture_store], db)
    assert (report.ingested, report.unchanged) == (1, 5)
    assert rows(db, "SELECT value FROM metrics WHERE step_name = 'map_step.3.inner' AND key = 'chunk_score'") == [(0.35,)]


def test_prune_removes_runs_whose_source_is_gone(fixture_store, tmp_path):
    db = tmp_path / "x.db"
    ingest([fixture_store], db)
    (fixture_store / "case1-simple.json").unlink()
    shutil.rmtree(fixture_store / "case4-branches-chunked")
    kept = ingest([fixture_store], db)
    assert (kept.pruned, rows(db, "SELECT count(*) FROM runs")) == (0, [(6,)])
    report = ingest([fixture_store], db, prune=True)
    assert report.pruned == 2
    remaining = rows(db, "SELECT run_id FROM runs ORDER BY run_id")
    assert remaining == [("case2-metrics",), ("legacy-track-this",), ("magnus-env-metrics",), ("magnus-env-metrics-chunked",)]
    for table in ("steps", "attempts", "metrics", "params", "catalog", "code_identities", "sources"):
        assert rows(db, f"SELECT count(*) FROM {table} WHERE run_id IN ('case1-simple', 'case4-branches-chunked')") == [(0,)]


@pytest.fixture
def other(tmp_path):
    """A second store folder, empty."""
    (tmp_path / "other").mkdir()
    return tmp_path / "other"


def test_a_run_moved_to_another_folder_is_taken_over(indexed, fixture_store, other):
    shutil.move(fixture_store / "case1-simple.json", other / "case1-simple.json")
    report = ingest([other], indexed)
    assert (report.ingested, report.failed) == (1, 0)
    assert rows(indexed, "SELECT source_path FROM runs WHERE run_id = 'case1-simple'") == [(str(other / "case1-simple.json"),)]
    assert rows(indexed, "SELECT path FROM sources WHERE run_id = 'case1-simple'") == [(str(other / "case1-simple.json"),)]


def test_the_same_run_id_from_two_live_sources_is_an_error(indexed, fixture_store, other):
    shutil.copy(fixture_store / "case1-simple.json", other / "copy.json")
    report = ingest([other], indexed)
    assert report.failed == 1
    assert report.errors == [(str(other / "copy.json"),
                              f"run_id 'case1-simple' is already indexed from {fixture_store / 'case1-simple.json'}: remove one of the two")]


# -- bad input ------------------------------------------------------------------------


BAD_FILES = [
    ("notjson.json", "{bad", "is not JSON (line 1, column 2: Expecting property name enclosed in double quotes)"),
    ("list.json", "[1, 2]", "is JSON but not a run log (top level is an array, not an object)"),
    ("null.json", "null", "is JSON but not a run log (top level is null, not an object)"),
    ("string.json", '"run"', "is JSON but not a run log (top level is a string, not an object)"),
    ("number.json", "1.5", "is JSON but not a run log (top level is a number, not an object)"),
    ("boolean.json", "true", "is JSON but not a run log (top level is a boolean, not an object)"),
    ("noid.json", '{"steps": {}}', "run_id: Field required"),
    ("empty.json", "", "is empty"),
    ("steps.json", '{"run_id": "x", "steps": {"a": {"name": "a"}}}', "steps.a.internal_name: Field required"),
]


@pytest.mark.parametrize("name, text, message", BAD_FILES)
def test_a_bad_file_is_reported_and_the_others_ingested(fixture_store, tmp_path, name, text, message):
    (fixture_store / name).write_text(text)
    db = tmp_path / "x.db"
    report = ingest([fixture_store], db)
    assert (report.ingested, report.failed) == (6, 1)
    assert report.errors == [(str(fixture_store / name), message)]
    assert rows(db, "SELECT path, error FROM ingest_errors") == [(str(fixture_store / name), message)]
    # fixed: ingested, and its error row is gone
    shutil.copy(fixture_store / "case1-simple.json", fixture_store / name)
    data = json.loads((fixture_store / name).read_text())
    data["run_id"] = "fixed"
    (fixture_store / name).write_text(json.dumps(data))
    again = ingest([fixture_store], db)
    assert (again.ingested, again.failed) == (1, 0)
    assert rows(db, "SELECT count(*) FROM ingest_errors") == [(0,)]


def test_bad_chunk_inside_a_run_folder_names_the_chunk(fixture_store, tmp_path):
    run = fixture_store / "magnus-env-metrics-chunked"
    next(run.glob("StepLog-shell-*.json")).write_text("[]")
    report = ingest([fixture_store], tmp_path / "x.db")
    assert report.failed == 1
    path, message = report.errors[0]
    assert path == str(run)
    assert message.startswith("StepLog-shell-") and message.endswith(".json: is not a JSON object (top level is an array)")


def test_a_failed_rewrite_keeps_the_previous_rows_whole(fixture_store, tmp_path):
    db = tmp_path / "x.db"
    ingest([fixture_store], db)
    before = rows(db, "SELECT * FROM metrics WHERE run_id = 'legacy-track-this' ORDER BY 2, 3, 4")
    path = fixture_store / "legacy-track-this.json"
    # A lone surrogate is valid JSON that SQLite cannot store: the write fails midway.
    path.write_text(path.read_text().replace('"camelkey": 1', '"camelkey": 1, "bad\\udc00": 2'))
    report = ingest([fixture_store], db)
    assert report.failed == 1
    assert report.errors[0][1].startswith("holds a value SQLite cannot store")
    assert rows(db, "SELECT * FROM metrics WHERE run_id = 'legacy-track-this' ORDER BY 2, 3, 4") == before


def test_strict_stops_at_the_first_error(fixture_store, tmp_path):
    (fixture_store / "aaa-bad.json").write_text("{")
    db = tmp_path / "x.db"
    with pytest.raises(BadRunLog, match=r"aaa-bad.json: is not JSON"):
        ingest([fixture_store], db, strict=True)
    assert rows(db, "SELECT count(*) FROM runs") == [(0,)]
    assert rows(db, "SELECT count(*) FROM ingest_errors") == [(1,)]
    (fixture_store / "zzz-bad.json").write_text("{")
    (fixture_store / "aaa-bad.json").unlink()
    with pytest.raises(BadRunLog, match=r"zzz-bad.json"):
        ingest([fixture_store], db, strict=True)
    assert rows(db, "SELECT count(*) FROM runs") == [(6,)]  # the runs before the error stay


def test_missing_path_and_single_sources(tmp_path, fixtures_dir):
    db = tmp_path / "x.db"
    report = ingest([
        tmp_path / "nope",
        fixtures_dir / "v0.50-file-system" / "case2-metrics.json",
        fixtures_dir / "v0.50-chunked-fs" / "case4-branches-chunked",
        fixtures_dir / "v0.50-file-system" / "case2-metrics.json",  # twice: once
    ], db)
    assert (report.ingested, report.failed) == (2, 1)
    assert report.errors == [(str(tmp_path / "nope"), "no such file or folder")]
    assert rows(db, "SELECT count(*) FROM ingest_errors") == [(0,)]


def test_progress_callback(fixture_store, tmp_path):
    calls = []
    ingest([fixture_store], tmp_path / "x.db", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]


def test_readonly_database_refuses_writes(indexed):
    db = open_db(indexed, readonly=True)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            db.execute("DELETE FROM runs")
        assert db.refusals == ["DELETE from runs"]
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (6,)
    finally:
        db.close()


@pytest.mark.parametrize("layout", ["file-system", "chunked-fs"])
def test_runs_written_by_the_store_keep_non_finite_metrics(tmp_path, layout):
    from runlog.models import RunLog
    from runlog.store import RunLogStore

    run = RunLog.model_validate({"run_id": "r1", "steps": {"s": {
        "name": "s", "internal_name": "s", "user_defined_metrics": {"up": float("inf"), "odd": float("nan")}}}})
    RunLogStore(tmp_path / "store", layout).create_run(run)
    ingest([tmp_path / "store"], tmp_path / "x.db")
    assert rows(tmp_path / "x.db", "SELECT key, value, value_text FROM metrics ORDER BY key") == [
        ("odd", None, "NaN"), ("up", float("inf"), None)]
