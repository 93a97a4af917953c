"""The ``runlog`` command line: parses options, calls the library, renders.

Every command's work is done by a library function usable without click; the
commands live by concern (:mod:`.record_commands`, :mod:`.index_commands`,
:mod:`.read_commands`, :mod:`.web_commands`, :mod:`.export_commands`, :mod:`.lake_commands`), what they
share in :mod:`.common`.
Exit codes: 0 all done, 1 some input failed, 2 usage error.
"""

from __future__ import annotations


import click

from .. import __version__
from .export_commands import export_group
from .index_commands import ingest_command, schema_command, upgrade_command
from .lake_commands import lake_group
from .read_commands import (
    compare_command,
    keys_command,
    metrics_command,
    query_command,
    runs_command,
    show_command,
)
from .record_commands import exec_command
from .web_commands import serve_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runlog")
def cli():
    """Keep, query and move the run logs of data and ML pipelines.

    \b
    Example:
        runlog exec --run-id demo-1 --step train -- python train.py
        runlog ingest .run_log_store
        runlog runs --metric loss
    """


for command in (exec_command, ingest_command, query_command, runs_command, keys_command, show_command,
                metrics_command, compare_command, schema_command, upgrade_command, serve_command, export_group,
                lake_group):
    cli.add_command(command)


def main() -> None:  # pragma: no cover - console entry point
    cli(prog_name="runlog")
