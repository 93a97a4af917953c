"""Shared test fixtures. Topic-specific fixtures live in their own test modules."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "examples" / "real-logs"  # real runnable/magnus run logs (see its README)


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", help="run the long crash/fuzz variants")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    group_by_module(items)
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="long soak variant: run with --soak (make soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def group_by_module(items) -> None:
    """Under ``pytest -n N --dist loadgroup`` (make test), each module runs in one worker,
    so its module-scoped fixtures (an index, a server, a browser) are built once; and
    every module that talks to the MLflow server runs in the same worker, so one server
    serves them all. A test's own ``xdist_group`` mark wins."""
    mlflow_modules = {item.path for item in items if "mlflow_server" in getattr(item, "fixturenames", ())}
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = "mlflow" if item.path in mlflow_modules else item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(group))


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``[(language, content)]`` of every fenced block of a Markdown text, in order."""
    blocks, language, lines = [], None, []
    for line in text.split("\n"):
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(lines)))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The real run logs of runnable/magnus in examples/real-logs."""
    return FIXTURES


def fixture_sources() -> list[Path]:
    """Every run (a .json file or a chunked run folder) among the fixtures."""
    found = []
    for layout_dir in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for entry in sorted(layout_dir.iterdir()):
            if entry.suffix == ".json" or (entry / "RunLog.json").is_file():
                found.append(entry)
    return found


def docs_runs(store: Path) -> Path:
    """``store`` holding the runs the docs show: the six real ones (both layouts) and the
    sweep of examples/sweep.py."""
    import runpy

    store.mkdir(parents=True, exist_ok=True)
    for source in fixture_sources():
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, store / source.name)
    runpy.run_path(str(REPO / "examples" / "sweep.py"))["main"](str(store))
    return store


@pytest.fixture
def fixture_store(tmp_path, fixtures_dir) -> Path:
    """A store folder holding a copy of every fixture run (both layouts)."""
    store = tmp_path / "store"
    store.mkdir()
    for source in fixture_sources():
        if source.is_dir():
            shutil.copytree(source, store / source.name)
        else:
            shutil.copy2(source, store / source.name)
    return store
