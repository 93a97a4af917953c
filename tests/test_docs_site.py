"""The docs site builds with ``mkdocs build --strict`` (no broken link, anchor or missing
page), and its reference pages are the code's: the CLI reference lists every option of
every command exactly as ``--help`` does, and the Python API page documents every name
that ``runlog`` exports.

The site is built once for the module, into a temporary folder, as `make docs` builds it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import click
import pytest

import runlog
from conftest import REPO
from runlog.cli import cli

pytest.importorskip("mkdocs_click", reason="the docs site needs the docs extra: pip install 'runlog-store[docs]'")

WIDTH = "80"  # the terminal width of the build and of the --help compared with it


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", COLUMNS=WIDTH)
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return site


def test_every_page_is_built(site):
    """(A page missing from the nav, or a nav entry without its page, fails the build.)"""
    pages = [p.stem for p in sorted((REPO / "docs").glob("*.md"))]
    missing = [stem for stem in pages if not (site / ("" if stem == "index" else stem) / "index.html").is_file()]
    assert len(pages) >= 14 and missing == []


class CommandSections(HTMLParser):
    """The code blocks of the CLI reference page, by command and by the label before them:
    ``sections["runlog-exec"]["Options:"]``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, dict[str, str]] = {}
        self.command = self.label = None
        self.in_label = self.in_pre = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        ident = dict(attrs).get("id") or ""
        if re.fullmatch(r"h\d", tag) and ident.startswith("runlog"):
            self.command, self.label = ident, None
            self.sections[ident] = {}
        elif tag == "strong":
            self.in_label, self.text = True, []
        elif tag == "pre":
            self.in_pre, self.text = True, []

    def handle_endtag(self, tag):
        if tag == "strong" and self.in_label:
            self.in_label, self.label = False, "".join(self.text)
        elif tag == "pre" and self.in_pre:
            self.in_pre = False
            if self.command and self.label:
                self.sections[self.command][self.label] = "".join(self.text).rstrip("\n")

    def handle_data(self, data):
        if self.in_label or self.in_pre:
            self.text.append(data)


def commands(group: click.Group, parent: click.Context):
    """``(anchor, path, context)`` of every command under ``group``, groups included."""
    for name, command in sorted(group.commands.items()):
        ctx = click.Context(command, info_name=name, parent=parent)
        yield ctx.command_path.replace(" ", "-"), ctx.command_path.split()[1:], ctx
        if isinstance(command, click.Group):
            yield from commands(command, ctx)


ROOT = click.Context(cli, info_name="runlog")
COMMANDS = [("runlog", [], ROOT), *commands(cli, ROOT)]


def unwrapped(text: str) -> str:
    """``text`` on one line, as click wrapped it (at spaces, and after hyphens)."""
    return " ".join(re.sub(r"-\n\s+", "-", text).split())


@pytest.mark.parametrize("anchor, path, ctx", COMMANDS, ids=[anchor for anchor, _, _ in COMMANDS])
def test_the_cli_reference_lists_every_option_as_help_does(site, anchor, path, ctx):
    """The page's usage and options of each command are what `runlog ... --help` prints
    in a terminal as wide as the build's; each option's names and help are on it."""
    parser = CommandSections()
    parser.feed((site / "cli" / "index.html").read_text())
    section = parser.sections[anchor]
    shown = subprocess.run([sys.executable, "-m", "runlog", *path, "--help"], capture_output=True, text=True,
                           env=dict(os.environ, COLUMNS=WIDTH), check=True).stdout
    usage = shown.split("\n\n")[0]
    options = shown.split("Options:\n", 1)[1].split("\n\n")[0].rstrip("\n")
    assert (section["Usage:"], section["Options:"]) == (usage.removeprefix("Usage: "), options)
    page = unwrapped(section["Options:"])
    for param in ctx.command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record:
            names, help_text = record
            assert unwrapped(names) in page and unwrapped(help_text) in page, f"{anchor}: {names}"


def test_the_python_api_page_documents_every_exported_name(site):
    """Each name in ``runlog.__all__`` has its own entry: a new one needs its ``::: runlog.NAME``."""
    anchors = set(re.findall(r'id="(runlog\.[\w.]+)"', (site / "python-api" / "index.html").read_text()))
    assert {f"runlog.{name}" for name in runlog.__all__} - anchors == set()
