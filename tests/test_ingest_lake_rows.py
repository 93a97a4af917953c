"""Ingest and the lake read a run log into the same rows: for every real run log
(examples/real-logs, tests/data), generated runs of every format and layout, and
logs with hostile values put in, the rows ingest hands to SQLite equal, table by
table, the rows the lake's reader gathers for Parquet; a log that one path refuses,
the other refuses too, with the same message. Rows come in the same order too."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pyarrow", reason="the lake needs pyarrow: pip install 'runlog-store[lake]'")

from bench.generate import FORMATS, Shape, make_run, write_run  # noqa: E402
from conftest import REPO, fixture_sources  # noqa: E402
from row_checks import put_hostile, same  # noqa: E402
from runlog.errors import BadRunLog  # noqa: E402
from runlog.index import ingest  # noqa: E402
from runlog.index.writer import IndexWriter  # noqa: E402
from runlog.lake.reader import RunReader, SourceRef, run_name  # noqa: E402
from runlog.lake.tables import TABLES  # noqa: E402

HELD_OUT = sorted((REPO / "tests" / "data").glob("*.json"))


def through_ingest(source: Path, db: Path, monkeypatch) -> dict[str, list[tuple]] | str:
    """The rows ingest writes for ``source`` (its only source), or its error message."""
    seen = {}
    replace_run = IndexWriter.replace_run

    def spy(writer, key, old_run_id, flat, stat, digest):
        seen.update({table: [flat.run] if table == "runs" else list(getattr(flat, table)) for table in TABLES})
        return replace_run(writer, key, old_run_id, flat, stat, digest)

    with monkeypatch.context() as patched:
        patched.setattr(IndexWriter, "replace_run", spy)
        report = ingest([source], db)
    if report.errors:
        [(_, message)] = report.errors
        return message
    seen["runs"] = [run[:12] + ("now",) + run[13:] for run in seen["runs"]]  # the time of ingest
    return seen


def through_lake(source: Path, layout: str) -> dict[str, list[tuple]] | str:
    """The rows the lake's reader gathers for ``source``, or its error message."""
    key = str(source)
    try:
        rows, _, points, _ = RunReader(None, "now").read(SourceRef(key, layout, run_name(key), 0, 0, 0))
    except BadRunLog as exc:  # named as ingest names it: a chunk inside a run folder by its file name
        return exc.reason if exc.path == key else f"{os.path.relpath(exc.path, key)}: {exc.reason}"
    assert points == rows.rows("metrics")
    return {table: rows.table_rows(table) for table in TABLES}


def assert_same_rows(source: Path, layout: str, db: Path, monkeypatch) -> None:
    indexed, laked = through_ingest(source, db, monkeypatch), through_lake(source, layout)
    if isinstance(indexed, str) or isinstance(laked, str):
        assert isinstance(indexed, str) and isinstance(laked, str), (indexed, laked)
        if "cannot store" not in indexed:  # SQLite and Parquet refuse different values
            assert indexed == laked
        return
    for table in TABLES:
        assert same(indexed[table], laked[table]), (source.name, table)


def sources() -> list[tuple[str, Path]]:
    return [(p.name, p) for p in fixture_sources() + HELD_OUT]


@pytest.mark.parametrize("name, source", sources(), ids=[n for n, _ in sources()])
def test_every_real_run_log_gives_the_same_rows(name, source, tmp_path, monkeypatch):
    assert_same_rows(source, "chunked-fs" if source.is_dir() else "file-system", tmp_path / "runlog.db", monkeypatch)


@pytest.mark.parametrize("fmt", FORMATS)
def test_generated_runs_of_every_format_give_the_same_rows(fmt, tmp_path, monkeypatch):
    rng = random.Random(5)
    for index, increments in enumerate((3, 40, 600)):  # 600: long enough for tiles
        store = tmp_path / f"store-{index}"
        store.mkdir()
        run = make_run(index, Shape(1, 6, 4, increments), fmt, rng)
        write_run(store, run, fmt, version=1_700_000_000_000_000_000)
        [source] = store.iterdir()
        assert_same_rows(source, "chunked-fs" if source.is_dir() else "file-system", tmp_path / f"{index}.db",
                         monkeypatch)


def test_hostile_values_give_the_same_rows_or_the_same_error(tmp_path, monkeypatch):
    rng = random.Random(23)
    bases = [json.loads(p.read_text()) for p in fixture_sources() + HELD_OUT if p.is_file()]
    bases += [make_run(i, Shape(1, 5, 3, 5), f, rng) for i, f in enumerate(FORMATS) if f.endswith("file-system")]
    failed = 0
    for index in range(80):
        data = json.loads(json.dumps(rng.choice(bases)))
        for _ in range(rng.choice((1, 2))):
            put_hostile(data, rng)
        source = tmp_path / f"hostile-{index}.json"
        source.write_text(json.dumps(data))
        assert_same_rows(source, "file-system", tmp_path / f"{index}.db", monkeypatch)
        failed += isinstance(through_lake(source, "file-system"), str)
    assert 5 < failed < 75  # both refused and taken logs were compared


def test_a_mutated_chunk_gives_the_same_rows_or_the_same_error(tmp_path, monkeypatch):
    rng = random.Random(29)
    chunked = [p for p in fixture_sources() if p.is_dir()]
    for index in range(12):
        folder = tmp_path / f"chunked-{index}"
        shutil.copytree(chunked[index % len(chunked)], folder)
        target = folder / rng.choice(sorted(p.name for p in folder.iterdir()))
        data = json.loads(target.read_text())
        put_hostile(data, rng)
        target.write_text(json.dumps(data))
        assert_same_rows(folder, "chunked-fs", tmp_path / f"{index}.db", monkeypatch)
