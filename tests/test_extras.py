"""Each optional extra, missing: the command that needs it stops with one line naming
the extra to install (exit 1) and writes nothing. The package is hidden from import
here, so these run with every extra installed (make test), and without them (make
test-base) they show what a user of the base install sees."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from conftest import copy_fixture_runs
from loopback import free_port
from runlog.cli import cli
from runlog.index import ingest


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with a store of the fixture runs and its index."""
    root = tmp_path_factory.mktemp("extras")
    assert ingest([copy_fixture_runs(root / "store")], root / "runlog.db").failed == 0
    return root


@pytest.mark.timeout(60)  # were the package not hidden, serve would go on serving
@pytest.mark.parametrize("module, extra, command", [
    ("datasette", "datasette", ["serve", "--db", "runlog.db", "--port", str(free_port())]),
    ("mlflow", "mlflow", ["export", "mlflow", "--all", "--tracking-uri", "http://127.0.0.1:9"]),
    ("pyarrow", "lake", ["lake", "build", "store", "lake"]),
    ("duckdb", "lake", ["query", "--lake", "lake", "select 1"]),
    ("s3fs", "s3", ["ingest", "s3://bucket/runs", "--db", "s3.db"]),
    ("gcsfs", "gs", ["ingest", "gs://bucket/runs", "--db", "gs.db"]),
])
def test_a_missing_extra_is_one_line_naming_it(work, monkeypatch, module, extra, command):
    monkeypatch.chdir(work)
    for name in {module, *(n for n in sys.modules if n.startswith(f"{module}."))}:  # as if not installed
        monkeypatch.setitem(sys.modules, name, None)  # (and restored after the test)
    before = files(work)
    result = CliRunner().invoke(cli, command)
    package = "mlflow-skinny" if module == "mlflow" else module
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, "", f"Error: this needs {package}, which is not installed: pip install 'runlog-store[{extra}]'\n")
    assert files(work) == before


def files(folder) -> list[str]:
    """What is in ``folder``, but the side files SQLite keeps beside an index it reads."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm")))
