"""The index's commands: ``ingest``, ``query``, ``runs``, ``show``, ``metrics``,
``compare`` and ``schema``."""

from __future__ import annotations

import sys

import click

from ..output import one_line
from ..store import DEFAULT_STORE
from .common import ProgressBar, db_option, echo_rows, endpoint_option, format_option, friendly_errors, read_index


@click.command(name="ingest")
@click.argument("paths", nargs=-1, type=click.Path())
@db_option
@click.option("--prune", is_flag=True, help="Remove runs whose source file or folder is gone.")
@click.option("--strict", is_flag=True, help="Stop at the first bad file instead of skipping it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@endpoint_option
@friendly_errors
def ingest_command(paths, db_path, prune, strict, quiet, endpoint_url):
    """Index run logs into the SQLite index (incremental: unchanged files are skipped).

    PATH is a store folder, one run-log file or a chunked run folder (default
    .run_log_store), or a URL of one (s3://bucket/prefix). Every generation of
    runnable/magnus and both layouts are read.
    A bad file is reported on stderr and in the ingest_errors table while the
    others are indexed; the exit code is then 1.

    \b
    Example:
        runlog ingest .run_log_store --db runlog.db --prune
        runlog ingest s3://team-runs/prod --endpoint-url http://127.0.0.1:9000
    """
    from ..index import ingest

    with ProgressBar("ingesting", quiet) as bar:
        report = ingest(paths or [DEFAULT_STORE], db_path, prune=prune, strict=strict,
                        progress=lambda done, total: bar.step(total), endpoint_url=endpoint_url)
    for path, message in report.errors:
        click.echo(one_line(f"error: {path}: {message}"), err=True)
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)


def _params_option(func):
    return click.option(
        "-p", "--param", "params", type=(str, str), multiple=True, metavar="NAME VALUE",
        help="Bind :NAME to VALUE (repeatable).",
    )(func)


@click.command(name="query")
@click.argument("sql", required=False)
@click.option("--named", help="Run a named query instead of SQL (see --list).")
@click.option("--list", "list_named", is_flag=True, help="List the named queries and their parameters.")
@_params_option
@format_option
@db_option
@friendly_errors
def query_command(sql, named, list_named, params, fmt, db_path):
    """Run read-only SQL (or a named query) against the index.

    Parameters are bound, never spliced into the SQL. Statements that would
    write (INSERT, DELETE, ATTACH, VACUUM INTO, PRAGMA writable_schema...) are refused.

    \b
    Example:
        runlog query "select run_id, status from runs where tag = :tag" -p tag exp-a
        runlog query --named leaderboard -p key accuracy
    """
    from ..index.queries import NAMED_QUERIES, run_named, run_sql

    if list_named:
        echo_rows([{"name": n, "params": " ".join(q.params), "title": q.title, "description": q.description}
                   for n, q in NAMED_QUERIES.items()], fmt)
        return
    if bool(sql) == bool(named):
        raise click.UsageError("give either SQL or --named NAME")
    with read_index(db_path) as db:
        columns, rows = run_named(db, named, dict(params)) if named else run_sql(db, sql, dict(params))
    echo_rows(rows, fmt, columns)


@click.command(name="runs")
@click.option("--tag", help="Only runs with this tag.")
@click.option("--status", help="Only runs with this status (SUCCESS, FAIL, PROCESSING, CREATED).")
@click.option("--metric", "metrics", multiple=True, metavar="KEY", help="Add a column with the latest value of KEY (repeatable).")
@format_option
@db_option
@friendly_errors
def runs_command(tag, status, metrics, fmt, db_path):
    """List runs: id, tag, status, start, duration, steps, and chosen metrics.

    \b
    Example:
        runlog runs --tag exp-a --metric accuracy --metric loss
    """
    from ..index.reports import list_runs

    with read_index(db_path) as db:
        columns, rows = list_runs(db, tag=tag, status=status, metrics=metrics)
    echo_rows(rows, fmt, columns)


@click.command(name="show")
@click.argument("run_id")
@format_option
@db_option
@friendly_errors
def show_command(run_id, fmt, db_path):
    """Show one run: the step tree with branches, attempts, params and a metrics summary.

    --format json prints the whole document; csv and nl print the steps.

    \b
    Example:
        runlog show case4-branches-chunked
    """
    from ..output import json_safe
    from ..index.reports import render_run, show_run

    with read_index(db_path) as db:
        detail = show_run(db, run_id)
    if fmt == "table":
        click.echo(render_run(detail))
    elif fmt == "json":
        import json

        click.echo(json.dumps(json_safe(detail), indent=2, allow_nan=False))
    else:
        columns = ["run_id", "step_name", "name", "branch", "step_type", "status", "message", "mock", "position"]
        echo_rows([{c: s[c] for c in columns} for s in detail["steps"]], fmt, columns)


@click.command(name="metrics")
@click.argument("run_id")
@click.option("--key", help="Only this metric.")
@click.option("--step-name", help="Only metrics of this step (internal name, e.g. par.branch1.train).")
@format_option
@db_option
@friendly_errors
def metrics_command(run_id, key, step_name, fmt, db_path):
    """Metric history of a run: every point, by step.

    \b
    Example:
        runlog metrics legacy-track-this --key loss
    """
    from ..index.reports import metric_history

    with read_index(db_path) as db:
        columns, rows = metric_history(db, run_id, key=key, step_name=step_name)
    echo_rows(rows, fmt, columns)


@click.command(name="compare")
@click.argument("run_ids", nargs=-1, required=True)
@format_option
@db_option
@friendly_errors
def compare_command(run_ids, fmt, db_path):
    """Params and latest metrics of runs side by side; differing rows are marked *.

    \b
    Example:
        runlog compare magnus-env-metrics magnus-env-metrics-chunked
    """
    from ..index.reports import compare_runs

    if len(run_ids) < 2:
        raise click.UsageError("compare needs at least two run ids")
    with read_index(db_path) as db:
        columns, rows = compare_runs(db, list(run_ids))
    echo_rows(rows, fmt, columns)


@click.command(name="schema")
@click.option("--sql", "as_sql", is_flag=True, help="The SQLite DDL of the index (the default).")
@click.option("--json", "as_json", is_flag=True, help="The JSON Schema of a run log.")
def schema_command(as_sql, as_json):
    """Print the index's SQLite DDL, or the run-log JSON Schema.

    \b
    Example:
        runlog schema --sql > schema/index.sql
        runlog schema --json > schema/runlog.schema.json
    """
    if as_sql and as_json:
        raise click.UsageError("choose one of --sql and --json")
    if as_json:
        from ..models import run_log_json_schema_text

        click.echo(run_log_json_schema_text(), nl=False)
    else:
        from ..index.schema import schema_sql

        click.echo(schema_sql(), nl=False)
