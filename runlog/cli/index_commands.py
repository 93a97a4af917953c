"""Building the index: ``ingest``, ``upgrade`` (an index of an older runlog, in place),
and ``schema`` (what it holds)."""

from __future__ import annotations

import sys

import click

from ..values import one_line
from ..store import DEFAULT_STORE
from .common import ProgressBar, db_option, endpoint_option, friendly_errors


@click.command(name="ingest")
@click.argument("paths", nargs=-1, type=click.Path())
@db_option
@click.option("--prune", is_flag=True, help="Remove runs whose source file or folder is gone.")
@click.option("--strict", is_flag=True, help="Stop at the first bad file instead of skipping it.")
@click.option("--recursive", "-r", is_flag=True, help="Ingest every store in the folders below each PATH too.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@endpoint_option
@friendly_errors
def ingest_command(paths, db_path, prune, strict, recursive, quiet, endpoint_url):
    """Index run logs into the SQLite index (incremental: unchanged files are skipped).

    PATH is a store folder, one run-log file or a chunked run folder (default
    .run_log_store), or a URL of one (s3://bucket/prefix). Every generation of
    runnable/magnus and both layouts are read; --recursive reads every store
    in the folders below a PATH too (a folder of stores alone is refused).
    A bad file is reported on stderr and in the ingest_errors table while the
    others are indexed; the exit code is then 1. A symlink that leads out of
    its store, or loops, is skipped with a line on stderr.

    \b
    Example:
        runlog ingest .run_log_store --db runlog.db --prune
        runlog ingest examples/real-logs --recursive
        runlog ingest s3://team-runs/prod --endpoint-url http://127.0.0.1:9000
    """
    from ..index import ingest

    with ProgressBar("ingesting", quiet) as bar:
        report = ingest(paths or [DEFAULT_STORE], db_path, prune=prune, strict=strict, recursive=recursive,
                        progress=lambda done, total: bar.step(total), endpoint_url=endpoint_url)
        for path, why in report.skipped:
            bar.write(one_line(f"skipped: {path}: {why}"))
        for path, message in report.errors:
            bar.write(one_line(f"error: {path}: {message}"))
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)


@click.command(name="upgrade")
@db_option
@friendly_errors
def upgrade_command(db_path):
    """Upgrade an index built by an older runlog to this runlog's schema, in place.

    Read commands never write, so they refuse an older index and name this command;
    `runlog ingest` upgrades it too. The upgrade reads only the index's own tables
    (no run log is read again) and needs write access to the file.

    \b
    Example:
        runlog upgrade --db runlog.db
    """
    from ..index.db import upgrade_index

    before, after = upgrade_index(db_path)
    if before == after:
        click.echo(f"index {db_path} is already at schema version {after}")
    else:
        click.echo(f"index {db_path} upgraded from schema version {before} to {after}")


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
