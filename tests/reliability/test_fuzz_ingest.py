"""Hostile and broken input to `runlog ingest`: every bad file gets exactly one error
line naming it (no traceback), every good file is ingested, the index stays valid.

Hypothesis writes batches of files into a store folder and runs the real CLI on it
(in-process, click's runner): raw garbage, fixtures cut short or with a bad byte, and
mutations of the real fixtures (a random field at a random path replaced by a
hostile value: huge and tiny numbers, NaN/Infinity, 10**400 and 5,000-digit ints,
nesting far past the recursion limit, very long keys and strings, lone surrogates,
wrong types). Each batch also holds an untouched fixture, which must be ingested.
Special files (empty, a directory, symlink loops, dangling symlinks, a FIFO,
unreadable files) are checked one by one.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runlog.cli import cli

from conftest import FIXTURES

FILE_FIXTURES = sorted(FIXTURES.glob("*/*.json"))
CHUNKED_FIXTURES = sorted(p for p in FIXTURES.glob("*/*") if (p / "RunLog.json").is_file())
HOLE = "@@runlog-fuzz-hole@@"
_counter = itertools.count()
SOAK_FACTOR = 10  # the soak variants (pytest --soak) run this many times the examples


def fuzz(examples: int, given_args: dict):
    """The test at ``examples`` examples, and its soak variant (``<name>_soak``) at SOAK_FACTOR times more."""
    def make(body):
        module = globals()
        for name, count, marks in ((body.__name__, examples, []), (body.__name__ + "_soak", examples * SOAK_FACTOR, [pytest.mark.soak, pytest.mark.timeout(3600)])):
            test = settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
                given(**given_args)(body))
            for mark in marks:
                test = mark(test)
            module[name] = test
        return module[body.__name__]
    return make


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


# JSON text that no Python value round-trips through json.dumps: spliced in as text.
HOSTILE_TEXT = [
    "1e308", "-1e308", "5e-324", "-5e-324", "1e309", "-1e400", "-0.0", "0", "-1", "NaN", "Infinity", "-Infinity",
    "null", "true", "false", "[]", "{}", '""', '" "', "1" + "0" * 400, "-" + "9" * 5000, "9" * 19, "1" + "0" * 19,
    '"\\ud800"', '"\\udfff x"', '"\\u0000"', '"a\\nb\\r\\u001b[31m"', '"../../etc/passwd"', '"a/b\\\\c"',
    '"' + "x" * 100_000 + '"', '{"' + "k" * 100_000 + '": 1}', '{"": 1, "1": {"2": 3}}', '{"0": {"0": {"0": 1}}}',
    '{"9999999999999999999": 1}', '{"-1": 2}', '[["a", 1], ["b"]]', "[1, 2.5, NaN, Infinity]",
    *(nested(d, k) for d in (50, 400, 900, 995, 1100, 5000, 100_000) for k in ("list", "dict")),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
hostile = st.sampled_from(HOSTILE_TEXT) | json_values.map(json.dumps)


# -- checking a batch ------------------------------------------------------------


def ingest_batch(root: Path, db: Path, sources: list[Path], good: list[Path]) -> None:
    """Ingest ``root``; each source is ingested or named by exactly one error line."""
    result = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--quiet"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        indexed = {Path(p) for (p,) in conn.execute("SELECT source_path FROM runs")}
    finally:
        conn.close()
    failed = 0
    for source in sources:
        named = [line for line in lines if line.startswith(f"error: {source}: ")]
        assert len(named) + (source in indexed) == 1, (source, named, source in indexed)
        failed += len(named)
    assert len(lines) == failed, lines
    assert all(source in indexed for source in good)
    assert result.exit_code == (1 if failed else 0)


def new_batch(work: Path) -> tuple[Path, list[Path]]:
    """A fresh store folder holding one untouched fixture (with a run_id of its own)."""
    n = next(_counter)
    root = work / f"batch-{n}"
    root.mkdir()
    data = json.loads(FILE_FIXTURES[n % len(FILE_FIXTURES)].read_text())
    data["run_id"] = f"good-{n}"
    good = root / f"good-{n}.json"
    good.write_text(json.dumps(data))
    return root, [good]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- raw garbage ----------------------------------------------------------------------

garbage = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(HOSTILE_TEXT).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@fuzz(250, {"files": st.lists(garbage, min_size=1, max_size=10)})
def test_raw_garbage(work, files):
    root, good = new_batch(work)
    sources = list(good)
    for i, content in enumerate(files):
        path = root / f"garbage-{i}.json"
        path.write_bytes(content)
        sources.append(path)
    ingest_batch(root, work / "garbage.db", sources, good)


# -- broken fixtures: cut short, a bad byte ---------------------------------------------


@fuzz(200, {"data": st.data()})
def test_cut_and_corrupted_fixtures(work, data):
    root, good = new_batch(work)
    sources = list(good)
    for i in range(data.draw(st.integers(1, 6))):
        raw = data.draw(st.sampled_from(FILE_FIXTURES)).read_bytes()
        at = data.draw(st.integers(0, len(raw)))
        how = data.draw(st.sampled_from(["cut", "byte", "insert"]))
        if how == "cut":
            raw = raw[:at]
        elif how == "byte":
            raw = raw[:at] + bytes([data.draw(st.sampled_from([0x80, 0xC3, 0xFF, 0xFE, 0x00, 0xED]))]) + raw[at + 1 :]
        else:
            raw = raw[:at] + data.draw(st.sampled_from([b"{", b"]", b",", b'"', b"\\", b"NaN", b"\xff\xfe"])) + raw[at:]
        path = root / f"broken-{i}.json"
        path.write_bytes(raw)
        sources.append(path)
    ingest_batch(root, work / "broken.db", sources, good)


# -- mutations of the real fixtures ------------------------------------------------------


def mutate(data, doc):
    """Replace the value at a random path of ``doc`` by HOLE; return the new document."""
    if not isinstance(doc, (dict, list)) or not doc or data.draw(st.integers(0, 3)) == 0:
        return HOLE
    if isinstance(doc, dict):
        key = data.draw(st.sampled_from(sorted(doc)))
        return {**doc, key: mutate(data, doc[key])}
    index = data.draw(st.integers(0, len(doc) - 1))
    return [*doc[:index], mutate(data, doc[index]), *doc[index + 1 :]]


def mutated_text(data, doc: dict) -> str:
    text = json.dumps(mutate(data, doc), indent=data.draw(st.sampled_from([None, 2])))
    return text.replace(json.dumps(HOLE), data.draw(hostile), 1)


@fuzz(400, {"data": st.data()})
def test_mutated_file_fixtures(work, data):
    root, good = new_batch(work)
    sources = list(good)
    for i in range(data.draw(st.integers(1, 6))):
        doc = json.loads(data.draw(st.sampled_from(FILE_FIXTURES)).read_text())
        doc["run_id"] = f"{root.name}-m{i}"
        path = root / f"mutated-{i}.json"
        path.write_text(mutated_text(data, doc), encoding="utf-8", errors="surrogatepass")
        sources.append(path)
    ingest_batch(root, work / "mutated.db", sources, good)


@fuzz(150, {"data": st.data()})
def test_mutated_chunked_fixtures(work, data):
    root, good = new_batch(work)
    sources = list(good)
    for i in range(data.draw(st.integers(1, 2))):
        fixture = data.draw(st.sampled_from(CHUNKED_FIXTURES))
        folder = root / f"chunked-{i}"
        folder.mkdir()
        for chunk in fixture.iterdir():
            (folder / chunk.name).write_bytes(chunk.read_bytes())
        head = json.loads((folder / "RunLog.json").read_text())
        head["run_id"] = f"{root.name}-c{i}"
        (folder / "RunLog.json").write_text(json.dumps(head))
        target = folder / data.draw(st.sampled_from(sorted(p.name for p in folder.iterdir())))
        target.write_text(mutated_text(data, json.loads(target.read_text())), encoding="utf-8", errors="surrogatepass")
        sources.append(folder)
    ingest_batch(root, work / "chunked.db", sources, good)


# -- special files ------------------------------------------------------------------------------


def make_special(root: Path, kind: str) -> Path:
    path = root / f"{kind}.json"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "blank":
        path.write_bytes(b" \n\t\n")
    elif kind == "directory":
        path.mkdir()
        (path / "inside.json").write_text("{}")
    elif kind == "symlink-loop":
        os.symlink(root / "loop-b.json", path)
        os.symlink(path, root / "loop-b.json")
    elif kind == "self-symlink":
        os.symlink(path, path)
    elif kind == "dangling-symlink":
        os.symlink(root / "nowhere" / "gone.json", path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "unreadable":
        path.write_text(json.dumps({"run_id": "unreadable", "steps": {}}))
        path.chmod(0)
    elif kind == "deep-list":
        path.write_text(nested(100_000, "list"))
    elif kind == "deep-dict":
        path.write_text('{"run_id": "deep", "tag": ' + nested(100_000, "dict") + "}")
    elif kind == "huge-int":
        path.write_text('{"run_id": "huge", "parameters": {"x": ' + "9" * 5000 + "}}")
    elif kind == "non-utf8":
        path.write_bytes(b'{"run_id": "caf\xe9", "steps": {}}')
    elif kind == "utf16":
        path.write_bytes(json.dumps({"run_id": "utf16", "steps": {}}).encode("utf-16"))
    elif kind == "top-level-list":
        path.write_text("[1, 2]")
    return path


SPECIAL = [
    "empty", "blank", "directory", "symlink-loop", "self-symlink", "dangling-symlink", "fifo",
    "deep-list", "deep-dict", "huge-int", "non-utf8", "utf16", "top-level-list",
]
if os.geteuid() != 0:  # root reads through chmod 000; the dangling symlink stands in for it
    SPECIAL.append("unreadable")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files(tmp_path, kind):
    root, good = new_batch(tmp_path)
    bad = make_special(root, kind)
    sources = [*good, bad] + ([root / "loop-b.json"] if kind == "symlink-loop" else [])
    ingest_batch(root, tmp_path / "special.db", sources, good)
    assert bad not in {Path(p) for p in indexed_paths(tmp_path / "special.db")}


def indexed_paths(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [p for (p,) in conn.execute("SELECT source_path FROM runs")]
    finally:
        conn.close()


def test_all_special_files_in_one_batch(tmp_path):
    root, good = new_batch(tmp_path)
    sources = [*good, *(make_special(root, k) for k in SPECIAL), root / "loop-b.json"]
    ingest_batch(root, tmp_path / "special.db", sources, good)
    assert indexed_paths(tmp_path / "special.db") == [str(good[0])]
