"""The ``runlog`` command line: parses options, calls the library, renders.

Every command's work is done by a library function usable without click.
Exit codes: 0 all done, 1 some input failed, 2 usage error.
"""

from __future__ import annotations

import functools
import os
import sys

import click

from . import __version__
from .errors import RunlogError
from .output import FORMATS, render
from .store import DEFAULT_STORE, LAYOUTS


def default_db() -> str:
    return os.environ.get("RUNLOG_DB") or "runlog.db"


def db_option(func):
    """``--db``: the SQLite index (default ``$RUNLOG_DB``, else ``./runlog.db``)."""
    return click.option(
        "--db",
        "db_path",
        default=default_db,
        show_default="$RUNLOG_DB or runlog.db",
        type=click.Path(dir_okay=False),
        help="SQLite index file.",
    )(func)


def format_option(func):
    """``--format``: table, json, csv or nl, the same on every command that prints rows."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format (json renders NaN/Infinity as strings).",
    )(func)


def store_option(func):
    func = click.option(
        "--layout",
        type=click.Choice(LAYOUTS),
        default=lambda: os.environ.get("RUNLOG_LAYOUT", "file-system"),
        show_default="$RUNLOG_LAYOUT or file-system",
        help="Layout for new runs (existing runs keep theirs).",
    )(func)
    return click.option(
        "--store",
        default=lambda: os.environ.get("RUNLOG_STORE", DEFAULT_STORE),
        show_default=f"$RUNLOG_STORE or {DEFAULT_STORE}",
        help="Run-log store folder.",
    )(func)


def friendly_errors(func):
    """Turn runlog's own errors into one-line click errors (exit 1), never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RunlogError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def echo_rows(rows, fmt: str, columns=None) -> None:
    click.echo(render(rows, fmt, columns))


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


@cli.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("--run-id", required=True, help="Run to add the step to (created when missing).")
@click.option("--step", "step_name", required=True, help="Step name; COMPOSITE.BRANCH.NAME puts it in a branch.")
@click.option("--tag", default="", help="Tag of the run when it is created.")
@store_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(run_id, step_name, tag, store, layout, command):
    """Run COMMAND as one step of a run and record it.

    One argument is shell text; several are a command line. Variables the
    command exports as RUNNABLE_TRACK_<key>[_STEP_<n>] become the step's
    metrics, and so do track_this() calls of a Python child. Output is kept in
    the catalog as <step>.execution.log. The exit code is the command's.

    \b
    Example:
        runlog exec --run-id r1 --step train -- python train.py --lr 0.1
        runlog exec --run-id r1 --step report -- 'export RUNNABLE_TRACK_score=0.9'
    """
    from .execute import exec_step

    try:
        code = exec_step(run_id, step_name, list(command), tag=tag, store=store, layout=layout)
    except RunlogError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


def main() -> None:  # pragma: no cover - console entry point
    cli(prog_name="runlog")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
