"""MkDocs hooks of the docs site (mkdocs.yml names this file; the site leaves it out)."""

from __future__ import annotations

import html
import re

from markdown import Markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

COMMAND_HEADING = re.compile(r"#+ runlog\b.*data-toc-label=")  # what mkdocs-click writes for each command
ROLE = re.compile(r":(?:meth|func|class|mod|attr|data|exc):`~?([^`]+)`")  # Sphinx's :meth:`x` in docstrings


class _HelpAsText(Preprocessor):
    """mkdocs-click copies each command's help into the CLI reference as Markdown, but
    click's help is plain text: ``<step>`` would vanish as an HTML tag, ``_STEP_`` turn
    italic, and the commands indented under ``Example:`` fold into its paragraph. Between
    a command's heading and its ``**Usage:**`` this escapes the text (code spans aside)
    and makes the indented examples a code block, as ``--help`` shows them."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_help = False
        for line in lines:
            if COMMAND_HEADING.match(line):
                in_help = True
            elif line == "**Usage:**":
                in_help = False
            elif in_help and line.startswith("    "):
                if out and out[-1].strip() and not out[-1].startswith("    "):
                    out.append("")  # an indented block after a paragraph is code only after a blank line
            elif in_help:
                line = escape_text(line)
            out.append(line)
        return out


def escape_text(line: str) -> str:
    """``line`` as literal text in Markdown; what is in backquotes stays code."""
    parts = line.split("`")
    for index in range(0, len(parts), 2):
        parts[index] = html.escape(parts[index], quote=False).replace("_", r"\_").replace("*", r"\*")
    return "`".join(parts)


class _DocstringsAsMarkdown(Preprocessor):
    """The docstrings that mkdocstrings renders are written for ``help()`` and doctest:
    ``>>>`` lines would read as nested quotes, ``:meth:`start``` as itself. Outside fenced
    blocks, this makes each run of ``>>>``/``...`` lines a Python block (its doctest
    directives aside) and each role its name in code."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        fenced = in_example = False
        for line in lines:
            if line.lstrip().startswith("```"):
                fenced = not fenced
            example = not fenced and line.startswith((">>> ", "... ")) or (in_example and line == "...")
            if example != in_example:
                out.extend(["", "```python"] if example else ["```", ""])
                in_example = example
            if example:
                line = re.sub(r"\s*# doctest:.*$", "", line)
            elif not fenced:
                line = ROLE.sub(lambda role: f"`{role.group(1).rsplit('.', 1)[-1]}`", line)
            out.append(line)
        return [*out, "```"] if in_example else out


class DocsMarkdown(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(_HelpAsText(md), "runlog_help_as_text", 140)  # after mkdocs-click's 141
        md.preprocessors.register(_DocstringsAsMarkdown(md), "runlog_docstrings", 139)


def on_config(config):
    config.markdown_extensions.append(DocsMarkdown())
    return config
