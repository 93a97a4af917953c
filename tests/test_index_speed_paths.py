"""The fast paths give the same answers as the plain ones (no timing here).

* a first ingest builds the secondary metrics indexes at its end, and open_db() rebuilds
  them when such an ingest was killed before that;
* run_metrics (run-level names and summaries, kept by ingest), and with it the
  leaderboard and compare, equal computing every answer again from every point;
* step_latest equals the highest step of every (run, step, key).
"""

from __future__ import annotations

import random
import sqlite3

import pytest

from runlog.errors import UsageProblem
from runlog.index import ingest, open_db, queries, runs
from runlog.index.schema import BULK_INDEXES, PAGE_SIZE
from runlog.index.writer import fill_latest, refill_run_tables

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
    """Runs whose steps record ``loss`` and ``acc`` in a random run order, ending on the
    same step or not, with NULL timestamps, NaN, infinities and text points; one run has
    only a text ``loss``, one has no metric."""
    db = open_db(path)
    conn = db.conn
    rng = random.Random(3)
    conn.execute("BEGIN")
    for r in range(12):
        run_id = f"run-{r:02d}"
        conn.execute("INSERT INTO runs (run_id, tag, status, start_time) VALUES (?, 'x', 'SUCCESS', ?)",
                     (run_id, f"2025-01-01 00:00:{r:02d}"))
        order = rng.sample(("a", "b", "c"), 3)
        for position, step_name in enumerate(order):
            conn.execute("INSERT INTO steps (run_id, step_name, name, branch, position) VALUES (?, ?, ?, '', ?)",
                         (run_id, step_name, step_name, position))
        if r == 11:
            continue
        for step_name in order:
            top = rng.choice((2, 3))
            for step in range(top + 1):
                kind = "text" if (r == 10 or (step == top and rng.random() < 0.3)) else "numeric"
                value = None if kind == "text" else rng.choice((0.5, 1.0, None, float("inf"), rng.random()))
                text = "t" if kind == "text" else ("NaN" if value is None else None)
                stamp = rng.choice((None, 1000, 2000))
                conn.execute(
                    "INSERT INTO metrics (run_id, step_name, key, step, value, value_text, kind, timestamp_ms) "
                    "VALUES (?, ?, 'loss', ?, ?, ?, ?, ?)", (run_id, step_name, step, value, text, kind, stamp))
                conn.execute(
                    "INSERT INTO metrics (run_id, step_name, key, step, value, value_text, kind, timestamp_ms) "
                    "VALUES (?, ?, 'acc', ?, ?, NULL, 'numeric', ?)", (run_id, step_name, step, rng.random(), stamp))
        fill_latest(conn, run_id)
        refill_run_tables(conn, run_id)
    conn.execute("COMMIT")
    return db


def reference_run_metrics(conn) -> dict[tuple[str, str], dict]:
    """(run_id, run-level name) -> summaries, computed from every point without runlog's code:
    the plain name goes to the step that comes first in run order, others get step/key."""
    points: dict[tuple, list] = {}
    for run_id, step_name, key, step, value, text, kind, position in conn.execute(
            "SELECT m.run_id, m.step_name, m.key, m.step, m.value, m.value_text, m.kind, s.position "
            "FROM metrics m JOIN steps s ON s.run_id = m.run_id AND s.step_name = m.step_name"):
        points.setdefault((run_id, key, position, step_name), []).append((step, value, text, kind))
    found, first = {}, set()
    for run_id, key, position, step_name in sorted(points):
        name = key if (run_id, key) not in first else f"{step_name}/{key}"
        first.add((run_id, key))
        rows = sorted(points[(run_id, key, position, step_name)])
        values = [(v, s) for s, v, _, _ in rows if v is not None]
        low = min(values, default=(None, None), key=lambda p: (p[0], p[1]))
        high = max(values, default=(None, None), key=lambda p: (p[0], -p[1]))
        found[(run_id, name)] = {
            "count": len(rows), "first": rows[0][1], "last": rows[-1][1], "last_text": rows[-1][2],
            "last_step": rows[-1][0], "min": low[0], "argmin": low[1], "max": high[0], "argmax": high[1],
            "kind": rows[0][3] if len({r[3] for r in rows}) == 1 else "mixed",
            "mean": sum(v for v, _ in values) / len(values) if values else None,
        }
    return found


def test_run_metrics_equal_computing_them_from_every_point(tmp_path):
    db = _tricky_index(tmp_path / "runlog.db")
    expected = reference_run_metrics(db.conn)
    columns = ("count", "first", "last", "last_text", "last_step", "min", "argmin", "max", "argmax", "kind", "mean")
    got = {(row[0], row[1]): dict(zip(columns, row[2:])) for row in db.conn.execute(
        f"SELECT run_id, name, {', '.join(columns)} FROM run_metrics")}
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == pytest.approx(expected[name], nan_ok=True), name
    assert {name for _, name in got} >= {"loss", "acc", "b/loss", "c/acc"}


def test_leaderboard_ranks_the_run_level_last_value(tmp_path):
    db = _tricky_index(tmp_path / "runlog.db")
    expected = reference_run_metrics(db.conn)
    for key in ("loss", "acc", "a/loss"):
        board = [(run_id, s["last"]) for (run_id, name), s in sorted(expected.items())
                 if name == key and (s["kind"] == "numeric" or s["last"] is not None)]
        for direction in ("desc", "asc", "max", "min"):
            _, rows = queries.run_named(db, "leaderboard", {"key": key, "direction": direction})
            wanted = sorted(board, key=lambda b: (b[1] is None, (b[1] or 0) * (1 if direction in ("asc", "min")
                                                                                 else -1), b[0]))
            assert [(row["run_id"], row["value"]) for row in rows] == wanted, (key, direction)
    with pytest.raises(UsageProblem, match="no metric 'missing'"):
        queries.run_named(db, "leaderboard", {"key": "missing"})


def test_compare_equals_the_run_level_values(tmp_path):
    db = _tricky_index(tmp_path / "runlog.db")
    expected = reference_run_metrics(db.conn)
    columns, rows = runs.compare_runs(db, ["run-00", "run-01"], summary="max")
    got = {row["spec"]: (row["run-00"], row["run-01"]) for row in rows}
    names = sorted({name for (run_id, name) in expected if run_id in ("run-00", "run-01")})
    assert set(got) == {f"max:{name}" for name in names}
    for name in names:
        assert got[f"max:{name}"] == tuple(expected.get((r, name), {}).get("max") for r in ("run-00", "run-01"))


def test_latest_tables_equal_computing_them_from_every_point(tmp_path, fixture_store):
    """step_latest (behind the latest_metrics view) and run_metrics, kept by ingest, hold
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
    expected = reference_run_metrics(conn)
    got = {(run_id, name): (last, count) for run_id, name, last, count in conn.execute(
        "SELECT run_id, name, last, count FROM run_metrics")}
    assert got == {k: (v["last"], v["count"]) for k, v in expected.items()}
    assert got[("legacy-track-this", "loss")] == (0.1, 4)
