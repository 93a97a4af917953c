"""The README stays true: its commands run as shown, and every command is documented.

Each ```console block runs in a fresh folder standing in for the README's
``/tmp/doc``: a ``.run_log_store`` holding the six fixture runs and the sweep of
``examples/sweep.py``, indexed into
``runlog.db`` first unless the block starts by ingesting. Every ``$ `` line runs
in bash; the lines after it are the output it must print. Blocks that need a
server running beside them (``runlog serve``, ``curl``) run in tests/test_browser.py,
the MLflow export's in tests/test_mlflow_export.py.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from conftest import REPO, fenced_blocks, fixture_sources
from runlog.cli import cli

README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent
SERVER_COMMANDS = ("runlog serve", "curl ", "runlog export mlflow")


def console_blocks() -> list[str]:
    return [content for language, content in fenced_blocks(README) if language == "console"]


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
    """The README's /tmp/doc: the six real runs and the sweep of examples/sweep.py in a store."""
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


RUNNABLE_BLOCKS = [b for b in console_blocks() if not any(c in b for c in SERVER_COMMANDS)]


@pytest.mark.parametrize("block", RUNNABLE_BLOCKS, ids=[parse_block(b)[0][0][:50] for b in RUNNABLE_BLOCKS])
def test_console_block_runs_as_shown(tmp_path, block):
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
        assert output == expected, f"`{command}` printed:\n{output}"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for code in [content for language, content in fenced_blocks(README) if language == "python"]:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_readme_plain_runlog_commands_run(tmp_path):
    """Commands in plain ``` blocks that start with `runlog exec` run in order."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    commands = [
        line for language, block in fenced_blocks(README) if language == "" for line in block.splitlines()
        if line.startswith("runlog exec ")
    ]
    assert commands
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr}"


def all_commands(group: click.Group, prefix: str = "runlog"):
    for name, command in sorted(group.commands.items()):
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{prefix} {name}")


@pytest.mark.parametrize("name, command", list(all_commands(cli)), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_with_an_example_and_is_documented(name, command):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, [*name.split()[1:], "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"{name} --help has no example"
    assert f"`{name}" in README or f"$ {name}" in README or f"\n{name} " in README, f"{name} is not in the README"
