"""runlog installs as a user gets it: ``python -m runlog`` is the command, and a wheel
built from the checkout installs into a fresh virtualenv with its web templates and runs.

The wheel is built offline (``--no-build-isolation``: the test extra brings setuptools)
from a copy of the sources, so the checkout gets no build/ or egg-info. The fresh
virtualenv has no pip and no packages of its own: the wheel goes in with this pip
(``--python``), and a ``.pth`` file lends it this environment's dependencies, without
its editable runlog (``.pth`` files of a lent folder are not read). About 10 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, fixture_sources

pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools (the test extra has it)")


def test_python_m_runlog_is_the_command(tmp_path):
    module = subprocess.run([sys.executable, "-m", "runlog", "--help"], cwd=tmp_path, capture_output=True, text=True)
    command = subprocess.run([str(Path(sys.executable).parent / "runlog"), "--help"], capture_output=True, text=True)
    assert module.returncode == 0, module.stderr
    assert module.stdout.startswith("Usage: runlog [OPTIONS] COMMAND [ARGS]...")
    assert module.stdout == command.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "runlog", source / "runlog", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "--wheel-dir", str(dist), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [built] = dist.glob("*.whl")
    return built


def test_the_wheel_is_runlog_store_with_its_package_data(wheel):
    assert wheel.name.startswith("runlog_store-")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"runlog/__main__.py", "runlog/cli/__init__.py", "runlog/web/plugin.py"} <= set(names)
    for folder in ("runlog/web/templates/", "runlog/web/static/"):
        packaged = {n for n in names if n.startswith(folder)}
        on_disk = {f"{folder}{p.name}" for p in (REPO / folder).iterdir() if p.is_file()}
        assert packaged == on_disk and on_disk, folder
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Name: runlog-store\n" in text and "Provides-Extra: datasette\n" in text


def test_the_wheel_installs_into_a_fresh_virtualenv_and_runs(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    lent = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "lent-dependencies.pth").write_text("\n".join(sorted(lent)) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                           "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNLOG_", "PYTHON"))}
    where = subprocess.run([str(python), "-c", "import runlog.web, pathlib; print(pathlib.Path(runlog.web.__file__).parent)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site) and any((Path(where) / "templates").glob("*.html"))
    runlog = venv / "bin" / "runlog"
    shown = subprocess.run([str(runlog), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.startswith("Usage: runlog [OPTIONS] COMMAND [ARGS]...")
    store = tmp_path / "store"
    store.mkdir()
    for source in fixture_sources():
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, store / source.name)
    ingested = subprocess.run([str(runlog), "ingest", str(store), "--db", str(tmp_path / "x.db"), "-q"],
                              cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (ingested.returncode, ingested.stdout) == (0, "6 runs ingested, 0 unchanged, 0 failed, 0 pruned; "
                                                         "53 metric points written\n")
