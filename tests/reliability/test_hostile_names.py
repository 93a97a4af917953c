"""Hostile names: refused on write (store, Run API, `runlog exec`), harmless on read.

Names with '/', '\\', '..', NUL, newlines, control characters or over-long lengths
never become paths. Files planted in a store with such names (or with such run_ids
inside) neither let ingest escape the folder nor break it: each is indexed as plain
text or reported on one line, and nothing is written outside the index file.
tests/test_store.py covers the store's own create/get/put_step refusals.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlog import Run
from runlog.cli import cli
from runlog.errors import InvalidName
from runlog.values import one_line

from conftest import FIXTURES

BAD = ["a/b", "a\\b", "..", "../../etc/x", "x\x00y", "new\nline", "cr\rname", "esc\x1b[31m", "tab\tname", "x" * 201]
FIXTURE = FIXTURES / "v0.5-file-system" / "legacy-track-this.json"


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (symlinks not followed)."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


@pytest.mark.parametrize("name", BAD, ids=repr)
def test_run_api_refuses_bad_names(tmp_path, name):
    store = tmp_path / "store"
    with pytest.raises(InvalidName):
        Run.start(run_id=name, store=store)
    with Run.start(run_id="ok", store=store) as run:
        with pytest.raises(InvalidName):
            run.step(name).__enter__()
        with pytest.raises(InvalidName):
            with run.parallel("par") as par:
                par.branch(name)
    with pytest.raises(InvalidName):
        Run.attach(name, store=store, create=True)
    assert tree(tmp_path) <= {"store", "store/ok.json", "store/.ok.lock", "store/.catalog", *tree_catalog(store)}


def tree_catalog(store: Path) -> set[str]:
    return {f"store/{p}" for p in tree(store)} if store.exists() else set()


@pytest.mark.parametrize("name", [n for n in BAD if "\x00" not in n], ids=repr)  # an argv cannot hold NUL
@pytest.mark.parametrize("option", ["--run-id", "--step"])
def test_exec_refuses_bad_names(tmp_path, name, option):
    args = {"--run-id": "ok", "--step": "s"}
    args[option] = name
    result = CliRunner().invoke(cli, ["exec", "--run-id", args["--run-id"], "--step", args["--step"],
                                      "--store", str(tmp_path / "store"), "--", "touch", str(tmp_path / "ran")])
    assert result.exit_code == 2  # a usage error
    what = "run_id" if option == "--run-id" else "step name"
    assert result.stderr.startswith(f"Error: invalid {what} ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    assert tree(tmp_path) == set()  # nothing ran, nothing was written


# -- planted files -----------------------------------------------------------------------------


def fixture_with(run_id: str, **changes) -> str:
    data = json.loads(FIXTURE.read_text())
    data["run_id"] = run_id
    data.update(changes)
    return json.dumps(data)


def plant(store: Path) -> dict[str, Path]:
    """A store of hostile names; returns label -> path."""
    store.mkdir()
    planted = {}
    # A run file whose run_id (and step names) point outside.
    path = store / "escape.json"
    data = json.loads(fixture_with("../../etc/x"))
    data["steps"] = {"../../../tmp/owned": dict(next(iter(data["steps"].values())), internal_name="../../../tmp/owned")}
    path.write_text(json.dumps(data))
    planted["escape"] = path
    # A run folder named with a newline, and chunks with '..', '%2F', newlines in their names.
    folder = store / "bad\nfolder"
    folder.mkdir()
    (folder / "RunLog.json").write_text(fixture_with("newline-folder", steps={}))
    step = next(iter(json.loads(FIXTURE.read_text())["steps"].values()))
    for chunk in ("StepLog-..%2F..-1700000000000000001.json", "StepLog-..-1700000000000000002.json",
                  "StepLog-a\nb-1700000000000000003.json", "BranchLog-..-1700000000000000004.json"):
        (folder / chunk).write_text(json.dumps(dict(step, internal_name=chunk.split("-")[1])))
    planted["folder"] = folder
    for label, name in (("control", "ctl\x01\x1b[2J.json"), ("newline-file", "two\nlines.json"),
                        ("long", "L" * 250 + ".json"), ("backslash", "back\\slash.json"), ("dots", "a..b...json")):
        path = store / name
        path.write_text(fixture_with(f"planted-{label}"))
        planted[label] = path
    # A file name that is not UTF-8.
    raw = os.fsencode(store) + b"/caf\xe9.json"
    with open(raw, "w") as handle:
        handle.write(fixture_with("not-utf8-name"))
    planted["not-utf8"] = Path(os.fsdecode(raw))
    return planted


def test_planted_names_neither_escape_nor_break_ingest(tmp_path):
    store = tmp_path / "store"
    planted = plant(store)
    before = tree(tmp_path)
    db = tmp_path / "runlog.db"
    result = CliRunner().invoke(cli, ["ingest", str(store), "--db", str(db), "-q"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert tree(tmp_path) - before <= {"runlog.db", "runlog.db-wal", "runlog.db-shm"}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        indexed = dict(conn.execute("SELECT source_path, run_id FROM runs"))
        steps = {r for (r,) in conn.execute("SELECT step_name FROM steps WHERE run_id = '../../etc/x'")}
    finally:
        conn.close()
    lines = result.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    for label, path in planted.items():
        named = [line for line in lines if line.startswith(f"error: {one_line(str(path))}: ")]
        assert len(named) + (str(path) in indexed) == 1, (label, named)
    assert len(lines) == sum(str(p) not in indexed for p in planted.values())
    # The run_id and step names are only text in the index.
    assert indexed[str(planted["escape"])] == "../../etc/x"
    assert steps == {"../../../tmp/owned"}
    assert indexed[str(planted["folder"])] == "newline-folder"
    assert not Path("/tmp/owned").exists()
