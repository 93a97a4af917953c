"""Two `runlog ingest` processes on one index at once, while `runlog query` and
`runlog serve` (its JSON API, listening on loopback only) read it: all finish, nothing
is "locked", and readers only ever see whole runs. An index locked for longer than
the writers' busy timeout gives a one-line error."""

from __future__ import annotations

import json
import sqlite3
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from click.testing import CliRunner

from bench.generate import Shape, generate
from loopback import free_port
from runlog.index import db as index_db
from runlog.cli import cli as runlog_cli
from runlog.index import ingest

from .helpers import cli, per_run_counts

SHAPE = Shape(runs=120, steps=5, keys=4, increments=25)
WHOLE_RUNS_SQL = (
    "SELECT r.run_id, (SELECT count(*) FROM metrics m WHERE m.run_id = r.run_id) AS points, "
    "(SELECT count(*) FROM steps s WHERE s.run_id = r.run_id) AS steps, "
    "(SELECT count(DISTINCT m.run_id) FROM metrics m WHERE m.run_id NOT IN (SELECT run_id FROM runs)) AS orphans "
    "FROM runs r"
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path, dict]:
    """Two store folders (60 runs each, all four formats) and the clean counts of every run."""
    root = tmp_path_factory.mktemp("concurrent-ingest")
    everything = root / "all"
    generate(everything, SHAPE)
    clean_db = root / "clean.db"
    assert ingest([everything], clean_db).failed == 0
    clean = per_run_counts(clean_db)
    halves = (root / "a", root / "b")
    for folder in halves:
        folder.mkdir()
    for i, entry in enumerate(sorted(everything.iterdir())):
        shutil.move(entry, halves[i % 2] / entry.name)
    return halves[0], halves[1], clean


def check_whole(rows: list, clean: dict, seen: list[int]) -> None:
    for row in rows:
        run_id, points, steps, orphans = (row[k] for k in ("run_id", "points", "steps", "orphans"))
        expected = clean[run_id]
        assert (points, steps) == (expected[2], expected[0]), f"reader saw part of run {run_id}"
        assert orphans == 0, "reader saw metrics of a run not in runs"
    seen.append(len(rows))


def test_two_ingests_with_query_and_serve_reading(stores, tmp_path):
    pytest.importorskip("datasette", reason="runlog serve needs datasette: pip install 'runlog-store[datasette]'")
    a, b, clean = stores
    db = tmp_path / "runlog.db"
    empty = tmp_path / "empty"
    empty.mkdir()
    made = subprocess.run(cli("ingest", str(empty), "--db", str(db), "-q"), capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr

    port = free_port()
    server = subprocess.Popen(cli("serve", "--db", str(db), "--port", str(port)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr.readline().startswith(f"Serving {db} read-only at http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/{db.stem}.json?" + urllib.parse.urlencode({"sql": WHOLE_RUNS_SQL, "_shape": "array"})
        wait_for(url)
        assert listening_addresses(port) == {"127.0.0.1"}  # loopback only, by default
        http_seen: list[int] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def http_reader():
            try:
                while not stop.is_set():
                    with urllib.request.urlopen(url, timeout=30) as response:
                        check_whole(json.loads(response.read()), clean, http_seen)
                    time.sleep(0.02)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        reader = threading.Thread(target=http_reader)
        reader.start()
        # One ingest commits in small batches (many lock hand-overs), the other as shipped;
        # they overlap on every run (A then B, and B then A).
        ingests = [
            subprocess.Popen(cli("ingest", str(a), str(b), "--db", str(db), "-q", small_batches=True),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
            subprocess.Popen(cli("ingest", str(b), str(a), "--db", str(db), "-q"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        ]
        query_seen: list[int] = []
        while any(p.poll() is None for p in ingests) or not query_seen:
            done = subprocess.run(cli("query", WHOLE_RUNS_SQL, "--db", str(db), "--format", "json"),
                                  capture_output=True, text=True, timeout=120)
            assert (done.returncode, done.stderr) == (0, "")
            check_whole(json.loads(done.stdout), clean, query_seen)
        outputs = [p.communicate(timeout=300) for p in ingests]
        stop.set()
        reader.join(timeout=60)
        assert not errors, errors[0]
        with urllib.request.urlopen(url, timeout=30) as response:  # after both ingests: every run
            check_whole(json.loads(response.read()), clean, http_seen)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for proc, (stdout, stderr) in zip(ingests, outputs):
        assert (proc.returncode, stderr) == (0, ""), stderr
        assert re.fullmatch(r"\d+ runs? ingested, \d+ unchanged, 0 failed, 0 pruned; \d+ metric points? written\n", stdout)
    assert per_run_counts(db) == clean
    assert http_seen and http_seen[-1] == len(clean), http_seen[-3:]
    assert query_seen[-1] <= len(clean)


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (Linux: /proc/net/tcp, tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    found.add(address)
    return found




def wait_for(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_ingest_into_an_index_locked_too_long_is_one_line(fixture_store, tmp_path, monkeypatch):
    db = tmp_path / "runlog.db"
    index_db.open_db(db).close()
    monkeypatch.setattr(index_db, "WRITE_BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, in the middle of its transaction
    try:
        result = CliRunner().invoke(runlog_cli, ["ingest", str(fixture_store), "--db", str(db), "-q"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot write index {db}: database is locked: another process is writing it; try again when it is done\n"
    )
    again = CliRunner().invoke(runlog_cli, ["ingest", str(fixture_store), "--db", str(db), "-q"])
    assert (again.exit_code, again.stdout) == (0, "6 runs ingested, 0 unchanged, 0 failed, 0 pruned; 53 metric points written\n")
