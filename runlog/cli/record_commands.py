"""``runlog exec``: a command recorded as a step of a run."""

from __future__ import annotations

import sys

import click

from ..errors import RunlogError
from .common import click_error, endpoint_option, store_option


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("--run-id", required=True, help="Run to add the step to (created when missing).")
@click.option("--step", "step_name", required=True, help="Step name; COMPOSITE.BRANCH.NAME puts it in a branch.")
@click.option("--tag", default="", help="Tag of the run when it is created.")
@store_option
@endpoint_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(run_id, step_name, tag, store, layout, endpoint_url, command):
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
    from ..record.execute import exec_step

    try:
        code = exec_step(run_id, step_name, list(command), tag=tag, store=store, layout=layout,
                         endpoint_url=endpoint_url)
    except RunlogError as exc:
        raise click_error(exc) from None
    sys.exit(code)
