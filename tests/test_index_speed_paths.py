"""The fast paths of issue 7 give the same answers as the plain ones (no timing here).

* a first ingest builds the secondary metrics indexes at its end, and open_db() rebuilds
  them when such an ingest was killed before that;
* the leaderboard's per-run index seeks equal ranking every point with a window function;
* compare_runs' one-pass latest metrics equal the latest_metrics view.
"""

from __future__ import annotations

import random
import sqlite3

from runlog.index import queries, reports
from runlog.index import ingest, open_db
from runlog.index.schema import BULK_INDEXES, PAGE_SIZE
from runlog.index.writer import fill_latest

# The leaderboard as first written: rank every numeric point of the key within its run.
REFERENCE_LEADERBOARD = """WITH latest AS (
    SELECT m.run_id, m.step_name, m.step, m.value,
        row_number() OVER (PARTITION BY m.run_id ORDER BY m.step DESC, m.timestamp_ms DESC, m.step_name DESC) AS rank_in_run
    FROM metrics m
    WHERE m.key = :key AND m.kind = 'numeric'
)
SELECT r.run_id, r.tag, r.status, r.start_time, l.step_name, l.step, l.value
FROM latest l JOIN runs r ON r.run_id = l.run_id
WHERE l.rank_in_run = 1
ORDER BY l.value IS NULL,
    CASE WHEN :direction = 'asc' THEN l.value END ASC,
    CASE WHEN :direction = 'asc' THEN NULL ELSE l.value END DESC,
    r.run_id"""


def _index_sql(path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    finally:
        conn.close()


def test_first_ingest_leaves_the_same_indexes_as_a_new_index(tmp_path, fixture_store):
    open_db(tmp_path / "empty.db").close()
    report = ingest([fixture_store], tmp_path / "full.db")
    assert report.ingested == 6 and report.failed == 0
    assert _index_sql(tmp_path / "full.db") == _index_sql(tmp_path / "empty.db")
    assert set(BULK_INDEXES) <= set(_index_sql(tmp_path / "full.db"))
    conn = sqlite3.connect(tmp_path / "full.db")
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    conn.close()


def test_indexes_of_a_killed_first_ingest_are_rebuilt_on_open(tmp_path, fixture_store):
    db = tmp_path / "runlog.db"
    ingest([fixture_store], db)
    expected = _index_sql(db)
    conn = sqlite3.connect(db)
    for name in BULK_INDEXES:  # what a first ingest killed before its end leaves
        conn.execute(f"DROP INDEX {name}")
    conn.commit()
    conn.close()
    assert not set(BULK_INDEXES) & set(_index_sql(db))
    open_db(db).close()
    assert _index_sql(db) == expected


def test_reingest_keeps_the_indexes(tmp_path, fixture_store):
    db = tmp_path / "runlog.db"
    ingest([fixture_store], db)
    expected = _index_sql(db)
    report = ingest([fixture_store], db)
    assert report.unchanged == 6
    assert _index_sql(db) == expected


def _tricky_index(path) -> sqlite3.Connection:
    """Runs whose latest point of ``loss`` ties on step across steps, has NULL timestamps,
    or is not numeric; one run has only a text ``loss``, one has none."""
    db = open_db(path)
    conn = db.conn
    rng = random.Random(3)
    conn.execute("BEGIN")
    for r in range(12):
        run_id = f"run-{r:02d}"
        conn.execute("INSERT INTO runs (run_id, tag, status, start_time) VALUES (?, 'x', 'SUCCESS', ?)",
                     (run_id, f"2025-01-01 00:00:{r:02d}"))
        if r == 11:
            continue
        for step_name in ("a", "b", "c"):
            top = rng.choice((2, 3))
            for step in range(top + 1):
                kind = "text" if (r == 10 or (step == top and rng.random() < 0.3)) else "numeric"
                value = None if kind == "text" else rng.choice((0.5, 1.0, rng.random()))
                stamp = rng.choice((None, 1000, 2000))
                conn.execute(
                    "INSERT INTO metrics (run_id, step_name, key, step, value, value_text, kind, timestamp_ms) "
                    "VALUES (?, ?, 'loss', ?, ?, ?, ?, ?)",
                    (run_id, step_name, step, value, "t" if kind == "text" else None, kind, stamp))
                conn.execute(
                    "INSERT INTO metrics (run_id, step_name, key, step, value, value_text, kind, timestamp_ms) "
                    "VALUES (?, ?, 'acc', ?, ?, NULL, 'numeric', ?)", (run_id, step_name, step, rng.random(), stamp))
        fill_latest(conn, run_id)
    conn.execute("COMMIT")
    return db


def test_leaderboard_equals_ranking_every_point(tmp_path):
    db = _tricky_index(tmp_path / "runlog.db")
    for key in ("loss", "acc", "missing"):
        for direction in ("desc", "asc"):
            params = {"key": key, "direction": direction}
            _, rows = queries.run_named(db, "leaderboard", params)
            expected = db.conn.execute(REFERENCE_LEADERBOARD, params).fetchall()
            assert [tuple(row.values()) for row in rows] == expected
    _, rows = queries.run_named(db, "leaderboard", {"key": "loss"})
    assert len(rows) == 10  # run-10 has only text, run-11 nothing


def test_compare_runs_metrics_equal_the_latest_metrics_view(tmp_path):
    db = _tricky_index(tmp_path / "runlog.db")
    columns, rows = reports.compare_runs(db, ["run-00", "run-01"])
    got = {(row["step_name"], row["name"]): (row["run-00"], row["run-01"]) for row in rows if row["what"] == "metric"}
    expected: dict[tuple, list] = {}
    for i, run_id in enumerate(("run-00", "run-01")):
        for step_name, key, value in db.conn.execute(
            "SELECT step_name, key, coalesce(value, value_text) FROM latest_metrics WHERE run_id = ?", (run_id,)
        ):
            expected.setdefault((step_name, key), [None, None])[i] = value
    assert got == {k: tuple(v) for k, v in expected.items()}
    assert len(got) == 6


def test_latest_tables_equal_computing_them_from_every_point(tmp_path, fixture_store):
    """step_latest (behind the latest_metrics view) and run_latest, kept by ingest, hold
    exactly what a scan of every metric row gives, also after a run is re-ingested."""
    db_path = tmp_path / "runlog.db"
    ingest([fixture_store], db_path)
    run_file = fixture_store / "legacy-track-this.json"
    run_file.write_text(run_file.read_text().replace('"2": 0.2', '"2": 0.25, "3": 0.1'))
    assert ingest([fixture_store], db_path).ingested == 1
    conn = open_db(db_path).conn
    by_step = conn.execute("""SELECT m.run_id, m.step_name, m.key, m.step, m.value, m.value_text, m.kind FROM metrics m
        WHERE m.step = (SELECT max(x.step) FROM metrics x
                        WHERE x.run_id = m.run_id AND x.step_name = m.step_name AND x.key = m.key)
        ORDER BY 1, 2, 3""").fetchall()
    assert conn.execute("SELECT * FROM latest_metrics ORDER BY 1, 2, 3").fetchall() == by_step
    assert ("legacy-track-this", "emit api metrics", "loss", 3, 0.1, None, "numeric") in by_step
    by_run = conn.execute("""SELECT run_id, key, step_name, step, value FROM (
        SELECT m.*, row_number() OVER (PARTITION BY run_id, key
                                       ORDER BY step DESC, timestamp_ms DESC, step_name DESC) AS rank
        FROM metrics m WHERE kind = 'numeric') WHERE rank = 1 ORDER BY 1, 2""").fetchall()
    assert conn.execute("SELECT run_id, key, step_name, step, value FROM run_latest ORDER BY 1, 2").fetchall() == by_run
    assert len(by_run) > 20
