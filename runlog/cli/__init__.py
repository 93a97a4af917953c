"""The ``runlog`` command line: parses options, calls the library, renders.

Every command's work is done by a library function usable without click.
Exit codes: 0 all done, 1 some input failed, 2 usage error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time

import click

from .. import __version__
from ..errors import RunlogError
from ..output import FORMATS, one_line, render
from ..store.local import DEFAULT_STORE, LAYOUTS


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
        help="Run-log store folder, or URL (s3://bucket/prefix, any installed fsspec protocol).",
    )(func)


def endpoint_option(func):
    """``--endpoint-url``: an S3-compatible server (MinIO...) for s3:// URLs."""
    return click.option(
        "--endpoint-url",
        default=None,
        show_default="$AWS_ENDPOINT_URL",
        help="S3-compatible server for s3:// URLs, e.g. http://127.0.0.1:9000 (MinIO).",
    )(func)


def click_error(exc: RunlogError) -> click.ClickException:
    """runlog's error as a one-line click error with the exit code it asks for (1 or 2)."""
    error = click.ClickException(one_line(str(exc)))
    error.exit_code = exc.exit_code
    return error


def friendly_errors(func):
    """Turn runlog's own errors into one-line click errors, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RunlogError as exc:
            raise click_error(exc) from None

    return wrapper


def echo_rows(rows, fmt: str, columns=None) -> None:
    click.echo(render(rows, fmt, columns))


@contextlib.contextmanager
def read_index(db_path):
    """The index opened read-only for the length of a command."""
    from ..index.db import open_db

    db = open_db(db_path, readonly=True)
    try:
        yield db
    finally:
        db.close()


class ProgressBar:
    """A progress callback for the library, on stderr; off with --quiet and when stderr
    is not a terminal. A bar when the total is known from the first step; otherwise a
    count that shows the total once it is known (a bucket is ingested while it is
    still being listed). Use as a context manager."""

    REDRAW_SECONDS = 0.2

    def __init__(self, label: str, quiet: bool, file=None):
        self.file = file if file is not None else sys.stderr
        self.label = label
        self.show = not quiet and self.file.isatty()
        self.bar = None
        self.done = 0
        self.total: int | None = None
        self.started = self.drawn = 0.0
        self.width = 0

    def step(self, total: int | None) -> None:
        if not self.show:
            return
        self.done += 1
        if self.done == 1 and total is not None:
            self.bar = click.progressbar(length=total, label=self.label, file=self.file)
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if self.done == 1:
            self.started = now
        self.total = total
        if now - self.drawn >= self.REDRAW_SECONDS:
            self.drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        text = f"{self.label}: {self.done:,}" + (f" of {self.total:,}" if self.total is not None else " (listing...)")
        if now > self.started:
            text += f", {self.done / (now - self.started):,.0f}/s"
        self.file.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.file.flush()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.render_finish()
        elif self.done:
            self._draw(time.monotonic())
            self.file.write("\n")


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


@cli.command(name="serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback unless told otherwise).")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open a web browser on the index.")
@friendly_errors
def serve_command(db_path, host, port, open_browser):
    """Browse the index in Datasette, read-only: run pages, metric charts, stored queries.

    \b
    Example:
        runlog serve --db runlog.db --port 8001 --open
    """
    from ..web.serve import serve

    def ready(url):
        click.echo(f"Serving {db_path} read-only at {url} (Ctrl-C to stop)", err=True)

    serve(db_path, host=host, port=port, open_browser=open_browser, on_ready=ready)


@cli.group(name="export")
def export_group():
    """Export runs of the index to other tools.

    \b
    Example:
        runlog export mlflow --all --tracking-uri http://127.0.0.1:5000
    """


@export_group.command(name="mlflow")
@click.argument("run_ids", nargs=-1)
@click.option("--tag", help="Only runs with this tag.")
@click.option("--status", help="Only runs with this status (SUCCESS, FAIL, PROCESSING).")
@click.option("--all", "all_runs", is_flag=True, help="Every run in the index (with --tag/--status: every matching run).")
@click.option(
    "--tracking-uri",
    default=lambda: os.environ.get("MLFLOW_TRACKING_URI"),
    show_default="$MLFLOW_TRACKING_URI",
    help="MLflow tracking server (http(s)://...), or a sqlite:/file URI with full mlflow installed.",
)
@click.option("--experiment", help="Put every run in this experiment (default: the run's tag, or Default).")
@click.option("--dry-run", is_flag=True, help="Show what each run becomes; MLflow is not contacted.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64), help="Runs exported at once.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@format_option
@db_option
@friendly_errors
def export_mlflow_command(run_ids, tag, status, all_runs, tracking_uri, experiment, dry_run, workers, quiet, fmt, db_path):
    """Export runs to MLflow: one MLflow run per runlog run, numbers as metrics,
    other values as params. Runs already exported are skipped; an interrupted
    export is completed by the next one. Exit code 1 if any run failed.

    \b
    Example:
        runlog export mlflow --all --tracking-uri http://127.0.0.1:5000
        runlog export mlflow blazing-colden-0544 --dry-run
    """
    from ..mlflow.export import export_runs

    if not (run_ids or tag is not None or status or all_runs):
        raise click.UsageError("name the runs to export, or select them with --tag, --status or --all")
    if not dry_run and not tracking_uri:
        raise click.UsageError("--tracking-uri is required (or set $MLFLOW_TRACKING_URI)")
    with ProgressBar("exporting", quiet) as bar:

        def progress(done, total, outcome):
            bar.step(total)
            if outcome.outcome == "failed":
                click.echo(("\n" if bar.bar is not None else "") + f"error: {outcome.error}", err=True)

        report = export_runs(
            db_path, run_ids, tracking_uri=tracking_uri, tag=tag, status=status, experiment=experiment,
            workers=workers, dry_run=dry_run, progress=progress,
        )
    if dry_run:
        for run_id, error in report.errors:
            click.echo(f"error: {error}", err=True)
        echo_rows([plan.summary() for plan in report.plans], fmt)
        click.echo(f"dry run: {len(report.plans)} run(s) would be exported; MLflow was not contacted", err=True)
    else:
        click.echo(report.summary())
    if report.failed:
        sys.exit(1)


# -- the index: ingest and queries (runlog/index.py, runlog/queries.py) ------------


@cli.command(name="ingest")
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
    from ..index.ingester import ingest

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


@cli.command(name="query")
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


@cli.command(name="runs")
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
    from ..index.queries import list_runs

    with read_index(db_path) as db:
        columns, rows = list_runs(db, tag=tag, status=status, metrics=metrics)
    echo_rows(rows, fmt, columns)


@cli.command(name="show")
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
    from ..index.queries import render_run, show_run

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


@cli.command(name="metrics")
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
    from ..index.queries import metric_history

    with read_index(db_path) as db:
        columns, rows = metric_history(db, run_id, key=key, step_name=step_name)
    echo_rows(rows, fmt, columns)


@cli.command(name="compare")
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
    from ..index.queries import compare_runs

    if len(run_ids) < 2:
        raise click.UsageError("compare needs at least two run ids")
    with read_index(db_path) as db:
        columns, rows = compare_runs(db, list(run_ids))
    echo_rows(rows, fmt, columns)


@cli.command(name="schema")
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
        from ..index.db import schema_sql

        click.echo(schema_sql(), nl=False)


def main() -> None:  # pragma: no cover - console entry point
    cli(prog_name="runlog")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
