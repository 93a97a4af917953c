"""The commands that read the index: ``query``, ``runs``, ``keys``, ``show``, ``metrics``
and ``compare``. Each prints rows in any ``--format``; names that match nothing are
errors with the closest names (exit 2)."""

from __future__ import annotations

import json

import click

from ..values import json_safe
from .common import db_option, echo_rows, format_option, friendly_errors, list_options, read_index, sort_rows
from .render import render_run

SPEC_HELP = ("a metric by run-level name (loss = its last value) or SUMMARY:NAME with SUMMARY one of last first "
             "min max mean count argmin argmax; a name with spaces in `backquotes`")


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
@click.option("--lake", "lake", metavar="DEST",
              help="Query the Parquet lake at DEST (a folder or URL; `runlog lake build`) with DuckDB instead.")
@click.option("--endpoint-url", default=None, help="S3-compatible server for an s3:// --lake.")
@list_options
@format_option
@db_option
@friendly_errors
def query_command(sql, named, list_named, params, lake, endpoint_url, sort, limit, fmt, no_headers, db_path):
    """Run read-only SQL (or a named query) against the index, or a lake.

    Parameters are bound, never spliced into the SQL. Statements that would
    write (INSERT, DELETE, ATTACH, VACUUM INTO, PRAGMA writable_schema...) are refused;
    over a lake only SELECT runs.

    \b
    Example:
        runlog query "select run_id, status from runs where tag = :tag" -p tag exp-a
        runlog query --named leaderboard -p key loss -p direction asc
        runlog query --lake lake/ "select count(*) from metrics"
    """
    from ..index.queries import NAMED_QUERIES, run_named, run_sql

    if list_named:
        rows = [{"name": n, "params": " ".join(q.params), "title": q.title, "description": q.description}
                for n, q in NAMED_QUERIES.items()]
        columns = ["name", "params", "title", "description"]
        echo_rows(sort_rows(rows, columns, sort, limit), fmt, columns, not no_headers)
        return
    if bool(sql) == bool(named):
        raise click.UsageError("give either SQL or --named NAME")
    if lake:
        from ..lake import open_lake

        opened = open_lake(lake, endpoint_url)
    else:
        opened = read_index(db_path)
    with opened as db:
        columns, rows = run_named(db, named, dict(params)) if named else run_sql(db, sql, dict(params))
    echo_rows(sort_rows(rows, columns, sort, limit), fmt, columns, not no_headers)


@click.command(name="runs")
@click.option("--metric", "metrics", multiple=True, metavar="SPEC", help=f"Add a column: {SPEC_HELP} (repeatable).")
@click.option("--param", "params", multiple=True, metavar="NAME", help="Add a column with this parameter (repeatable).")
@click.option("--where", metavar="EXPR",
              help="Only runs that match, e.g. \"param:lr in (0.1, 0.01) and min:loss < 0.5\" "
                   "(the filter language: see the docs, Querying).")
@click.option("--sort", "sort", multiple=True, metavar="[-]SPEC",
              help="Sort by a column spec (-SPEC: descending; repeatable for ties; runs without the value last).")
@click.option("--limit", type=click.IntRange(0), metavar="N", help="Print at most N runs.")
@click.option("--tag", help="Only runs with this tag.")
@click.option("--status", help="Only runs with this status (SUCCESS, FAIL, PROCESSING, CREATED; any case).")
@format_option
@db_option
@friendly_errors
def runs_command(metrics, params, where, sort, limit, tag, status, fmt, no_headers, db_path):
    """List runs: id, tag, status, start, duration, steps, then any param and metric
    column; filter, sort and cut by any of them.

    \b
    Example:
        runlog runs --metric loss --metric min:loss --param lr
        runlog runs --param lr --metric min:loss --where "min:loss < 0.5" --sort min:loss --limit 5
    """
    from ..api.answers import run_specs
    from ..index.runs import list_runs

    with read_index(db_path) as db:  # Index.runs(), with the rows as the index holds them, for rendering
        columns, rows = list_runs(db, run_specs(metrics, params, ("--metric", "--param")), where=where, sort=sort,
                                  limit=limit, tag=tag, status=status)
    echo_rows(rows, fmt, columns, not no_headers)


@click.command(name="keys")
@click.option("--like", metavar="PATTERN", help="Only names that match (SQL LIKE: % any text, _ one character).")
@list_options
@format_option
@db_option
@friendly_errors
def keys_command(like, sort, limit, fmt, no_headers, db_path):
    """List every run-level metric and param name: how many runs have it, its kinds,
    and the range of its last value (a param's value).

    \b
    Example:
        runlog keys
        runlog keys --like '%loss%' --format csv
    """
    from ..index.runs import list_keys

    with read_index(db_path) as db:
        columns, rows = list_keys(db, like)
    echo_rows(sort_rows(rows, columns, sort, limit), fmt, columns, not no_headers)


@click.command(name="show")
@click.argument("run_id")
@format_option
@db_option
@friendly_errors
def show_command(run_id, fmt, no_headers, db_path):
    """Show one run: the step tree with branches, attempts, params and a metrics summary.

    --format json prints the whole document; csv, tsv and nl print the steps.

    \b
    Example:
        runlog show case4-branches-chunked
    """
    from ..index.reports import show_run

    with read_index(db_path) as db:
        detail = show_run(db, run_id)
    if fmt == "table":
        click.echo(render_run(detail))
    elif fmt == "json":
        click.echo(json.dumps(json_safe(detail), indent=2, allow_nan=False))
    else:
        columns = ["run_id", "step_name", "name", "branch", "step_type", "status", "message", "mock", "position"]
        echo_rows([{c: s[c] for c in columns} for s in detail["steps"]], fmt, columns, not no_headers)


@click.command(name="metrics")
@click.argument("run_id")
@click.option("--key", help="Only this metric key (in any step; NAME shows its run-level name).")
@click.option("--step-name", help="Only metrics of this step (internal name, e.g. par.branch1.train).")
@list_options
@format_option
@db_option
@friendly_errors
def metrics_command(run_id, key, step_name, sort, limit, fmt, no_headers, db_path):
    """Metric history of a run: every point, by step, with its run-level name.

    \b
    Example:
        runlog metrics legacy-track-this --key loss
    """
    from ..index.reports import metric_history

    with read_index(db_path) as db:
        columns, rows = metric_history(db, run_id, key=key, step_name=step_name)
    echo_rows(sort_rows(rows, columns, sort, limit), fmt, columns, not no_headers)


@click.command(name="compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--metric", "metrics", multiple=True, metavar="SPEC",
              help=f"Only these metric rows: {SPEC_HELP} (repeatable; default: every metric).")
@click.option("--param", "params", multiple=True, metavar="NAME", help="Only these param rows (repeatable; default: every param).")
@click.option("--summary", default="last", show_default=True,
              type=click.Choice(["last", "first", "min", "max", "mean", "count", "argmin", "argmax"]),
              help="The summary shown for every metric when --metric is not given.")
@click.option("--only-diff", is_flag=True, help="Only the rows where the runs differ.")
@format_option
@db_option
@friendly_errors
def compare_command(run_ids, metrics, params, summary, only_diff, fmt, no_headers, db_path):
    """Runs side by side, lined up by run-level name: params, then metrics; differing
    rows are marked *.

    \b
    Example:
        runlog compare magnus-env-metrics magnus-env-metrics-chunked
        runlog compare run-a run-b --summary min --only-diff
    """
    from ..index.runs import compare_runs

    if len(run_ids) < 2:
        raise click.UsageError("compare needs at least two run ids")
    with read_index(db_path) as db:
        columns, rows = compare_runs(db, list(run_ids), metrics, params, summary, only_diff)
    echo_rows(rows, fmt, columns, not no_headers)
