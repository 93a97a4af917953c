"""``runlog export``: runs of the index into other tools (MLflow)."""

from __future__ import annotations

import os
import sys

import click

from .common import ProgressBar, db_option, echo_rows, format_option, friendly_errors


@click.group(name="export")
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
def export_mlflow_command(run_ids, tag, status, all_runs, tracking_uri, experiment, dry_run, workers, quiet, fmt,
                         no_headers, db_path):
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
                bar.write(f"error: {outcome.error}")

        report = export_runs(
            db_path, run_ids, tracking_uri=tracking_uri, tag=tag, status=status, experiment=experiment,
            workers=workers, dry_run=dry_run, progress=progress,
        )
    if dry_run:
        for run_id, error in report.errors:
            click.echo(f"error: {error}", err=True)
        echo_rows([plan.summary() for plan in report.plans], fmt, headers=not no_headers)
        click.echo(f"dry run: {len(report.plans)} run(s) would be exported; MLflow was not contacted", err=True)
    else:
        rows = [outcome.row() for outcome in report.outcomes]
        # The table is for reading: MLflow's run ids are in json, csv, tsv and nl.
        columns = [c for c in (rows[0] if rows else {}) if fmt != "table" or c != "mlflow_run_id"]
        echo_rows(rows, fmt, columns, headers=not no_headers)
        # The one-line summary: under the table, or on stderr when stdout is for a script.
        click.echo(report.summary(), err=fmt != "table")
    if report.failed:
        sys.exit(1)
