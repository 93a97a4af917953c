"""The docs stay true: their commands run as shown, their Python examples run (printing
what they show), and every command is documented.

Each ```console block of README.md and docs/*.md runs in a fresh folder standing in
for the docs' ``/tmp/doc``: a ``.run_log_store`` holding the six fixture runs and the
sweep of ``examples/sweep.py``, indexed into ``runlog.db`` first unless the block
starts by ingesting. Every ``$ `` line runs in bash; the lines after it are the output
it must print. Blocks that need a server running beside them (``runlog serve``,
``curl``) run in tests/test_browser.py, the MLflow export's in tests/test_mlflow_export.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from conftest import REPO, doc_blocks, doc_pages, fenced_blocks, fixture_sources, page_name
from runlog.cli import cli

BIN = Path(sys.executable).parent
# Console blocks that other modules run, and the one page each may be on.
SERVER_BLOCKS = {"runlog serve": "docs/web.md", "curl ": "docs/web.md", "runlog export mlflow": "docs/mlflow.md"}


def parse_block(block: str) -> list[tuple[str, str]]:
    """``[(command, expected output)]`` of one console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in steps]


def prepare(folder: Path, ingest: bool) -> None:
    """The docs' /tmp/doc: the six real runs and the sweep of examples/sweep.py in a store."""
    store = folder / ".run_log_store"
    store.mkdir(parents=True)
    for source in fixture_sources():
        if source.is_dir():
            shutil.copytree(source, store / source.name)
        else:
            shutil.copy2(source, store / source.name)
    runpy.run_path(str(REPO / "examples" / "sweep.py"))["main"](str(store))
    if ingest:
        subprocess.run([str(BIN / "runlog"), "ingest", "--quiet"], cwd=folder, check=True, capture_output=True)


RUNNABLE_BLOCKS = [(page, b) for page, b in doc_blocks("console") if not any(c in b for c in SERVER_BLOCKS)]


@pytest.mark.parametrize("page, block", RUNNABLE_BLOCKS,
                         ids=[f"{page}:{parse_block(b)[0][0][:50]}" for page, b in RUNNABLE_BLOCKS])
def test_console_block_runs_as_shown(tmp_path, page, block):
    folder = tmp_path / "doc"
    steps = parse_block(block)
    prepare(folder, ingest=not steps[0][0].startswith("runlog ingest"))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", COLUMNS="200")
    env.pop("RUNLOG_DB", None)
    last_code = 0
    for command, expected in steps:
        if command == "echo $?":  # each line runs in its own shell: answer from the last one
            assert str(last_code) == expected
            continue
        done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        output = done.stdout.rstrip("\n").replace(str(folder), "/tmp/doc")
        if output.startswith("Error: this needs ") and "which is not installed" in output and output != expected:
            pytest.skip(f"`{command}`: {output.removeprefix('Error: ')}")  # an extra this install lacks
        last_code = done.returncode
        assert output == expected, f"{page}: `{command}` printed:\n{output}"


def test_console_blocks_left_here_run_beside_their_server():
    """A block with a server beside it is on the page whose module runs it, so none goes unrun."""
    elsewhere = {(page, command) for page, block in doc_blocks("console")
                 for command in SERVER_BLOCKS if command in block}
    assert {page for page, _ in elsewhere} == set(SERVER_BLOCKS.values())
    assert {(page, command) for page, command in elsewhere if SERVER_BLOCKS[command] != page} == set()


PYTHON_PAGES = sorted({page for page, _ in doc_blocks("python")})


@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_python_examples_run(tmp_path, monkeypatch, page):
    """A page's ```python blocks, in order and sharing their names (as a notebook's cells
    do), in an empty folder; or, for a page that opens an index (``runlog.open(``), in
    the docs' /tmp/doc with its ``runlog.db``. A ```text block right after a python block
    is what that block prints."""
    blocks = fenced_blocks((REPO / page).read_text())
    if any(language == "python" and "runlog.open(" in code for language, code in blocks):
        prepare(tmp_path, ingest=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # a plot is drawn without a screen
    scope = {"__name__": "docs"}
    for number, (language, code) in enumerate(blocks):
        if language != "python":
            continue
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{page}, block {number + 1}", "exec"), scope)
        except ImportError as exc:  # MissingExtra too
            pytest.skip(f"{page}: {exc}")  # a frame library or matplotlib this install lacks
        after = blocks[number + 1] if number + 1 < len(blocks) else ("", "")
        if after[0] == "text":
            assert printed.getvalue().rstrip("\n") == after[1].rstrip("\n"), f"{page}, block {number + 1} printed"


def test_plain_runlog_exec_commands_run(tmp_path):
    """Commands in plain ``` blocks that start with `runlog exec` run in order."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    commands = [line for _, block in doc_blocks("") for line in block.splitlines() if line.startswith("runlog exec ")]
    assert commands
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr}"


TRY_IT = [(page, block) for page, block in doc_blocks("bash") if block.startswith("pip install runlog-store\n")]


@pytest.mark.parametrize("page, block", TRY_IT, ids=[page for page, _ in TRY_IT])
def test_try_it_after_pip_install(tmp_path, page, block):
    """The commands after ``pip install runlog-store`` work in an empty folder, with no
    setting of the user's: they record one run, index it and show it."""
    assert {"README.md", "docs/index.md"} <= {name for name, _ in TRY_IT}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOG_")}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    printed = {}
    for command in block.splitlines()[1:]:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{page}: `{command}` failed:\n{done.stderr}"
        printed[command.split("#")[0].strip()] = done.stdout
    runs = printed["runlog runs --metric loss --metric f1"].splitlines()
    assert runs[0].split() == ["run_id", "tag", "status", "start_time", "duration_s", "steps", "loss", "f1"]
    row = runs[2].split()
    assert (row[:2], row[-3:]) == (["hello", "SUCCESS"], ["2", "0.25", "0.8"])
    assert printed["runlog show hello"].startswith("run hello  status SUCCESS")


def all_commands(group: click.Group, prefix: str = "runlog"):
    for name, command in sorted(group.commands.items()):
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{prefix} {name}")


GUIDE = {page_name(page): page.read_text() for page in doc_pages() if page_name(page) != "docs/cli.md"}


@pytest.mark.parametrize("name, command", list(all_commands(cli)), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_with_an_example_and_is_documented(name, command):
    """Beyond the generated reference (docs/cli.md), a guide page shows the command."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, [*name.split()[1:], "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"{name} --help has no example"
    guides = [page for page, text in GUIDE.items() if f"`{name}" in text or f"$ {name}" in text or f"\n{name} " in text]
    assert guides, f"{name} is on no guide page of the docs"
