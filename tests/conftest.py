"""Shared test fixtures. Topic-specific fixtures live in their own test modules."""

from __future__ import annotations

import csv
import io
import json
import os
import runpy
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "examples" / "real-logs"  # real runnable/magnus run logs (see its README)


def pytest_configure(config):
    # pytest-xdist's mark, set on every test below; registered here too for a run without xdist (make test-base).
    config.addinivalue_line("markers", "xdist_group(name): the tests of one group run in one worker")


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


def script_formats(rows: list[dict]) -> dict[str, str]:
    """The exact csv, tsv and nl text of ``rows`` (the rows a command prints as json),
    written without runlog's renderer: csv as the csv module writes it, tsv tab-separated
    (a value holding a tab, newline, backslash or quote is refused: tests of escaping
    spell it out), nl one JSON object a line. Lists and objects are cells of JSON text."""
    def cell(value) -> str:
        return "" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)

    header = list(rows[0]) if rows else []
    lines = [header] + [[cell(row[c]) for c in header] for row in rows]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    assert not any(ch in value for line in lines for value in line for ch in '\t\n\\"'), lines
    return {"csv": buffer.getvalue(), "tsv": "".join("\t".join(line) + "\n" for line in lines),
            "nl": "".join(json.dumps(row) + "\n" for row in rows)}


def doc_pages() -> list[Path]:
    """README.md and every page of the docs site, in a fixed order."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def page_name(page: Path) -> str:
    """How tests name a page: ``README.md``, ``docs/querying.md``."""
    return page.relative_to(REPO).as_posix()


def doc_blocks(language: str) -> list[tuple[str, str]]:
    """``[(page, content)]`` of every fenced block in ``language`` of README.md and docs/**/*.md,
    page by page in order; ``page`` as :func:`page_name` gives it."""
    return [(page_name(page), content) for page in doc_pages()
            for lang, content in fenced_blocks(page.read_text()) if lang == language]


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


def copy_fixture_runs(store: Path, sweep: bool = False) -> Path:
    """``store``, made, holding a copy of every fixture run (both layouts) and, with
    ``sweep``, the seven runs of examples/sweep.py (the README's runs)."""
    store.mkdir(parents=True)
    for source in fixture_sources():
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, store / source.name)
    if sweep:
        runpy.run_path(str(REPO / "examples" / "sweep.py"))["main"](str(store))
    return store


@pytest.fixture
def fixture_store(tmp_path, fixtures_dir) -> Path:
    """A store folder holding a copy of every fixture run (both layouts)."""
    return copy_fixture_runs(tmp_path / "store")
