"""``runlog export``: runs of the index into other tools (MLflow)."""

from __future__ import annotations

import os
import sys

import click

from ..values import counted
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
@click.option("--copy", is_flag=True,
              help="Look for the runs only in the target experiment: a run exported elsewhere gets a second copy.")
@click.option("--replace", is_flag=True, help="Delete each run already in MLflow and export it anew.")
@click.option("--branches", type=click.Choice(["none", "child-runs"]), default="none", show_default=True,
              help="child-runs: each branch of a parallel or map step as a child run of the run.")
@click.option("--verify", is_flag=True,
              help="Send nothing: compare each run in MLflow with the index; exit 1 when one differs or is missing.")
@click.option("--dry-run", is_flag=True, help="Show what each run becomes; MLflow is not contacted.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64), help="Runs exported at once.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@format_option
@db_option
@friendly_errors
def export_mlflow_command(run_ids, tag, status, all_runs, tracking_uri, experiment, copy, replace, branches, verify,
                         dry_run, workers, quiet, fmt, no_headers, db_path):
    """Export runs to MLflow: one MLflow run per runlog run, numbers as metrics,
    other values as params. A run is exported once per tracking server: one already
    there (in any experiment) is skipped, or brought up to date when its log changed;
    an interrupted export is completed by the next one. Exit code 1 if any run failed.

    \b
    Example:
        runlog export mlflow --all --tracking-uri http://127.0.0.1:5000
        runlog export mlflow blazing-colden-0544 --dry-run
        runlog export mlflow --all --verify --tracking-uri http://127.0.0.1:5000
    """
    if not (run_ids or tag is not None or status or all_runs):
        raise click.UsageError("name the runs to export, or select them with --tag, --status or --all")
    if verify and (dry_run or copy or replace):
        raise click.UsageError("--verify sends nothing: leave out --dry-run, --copy and --replace")
    if not dry_run and not tracking_uri:
        raise click.UsageError("--tracking-uri is required (or set $MLFLOW_TRACKING_URI)")
    selection = dict(tracking_uri=tracking_uri, tag=tag, status=status, experiment=experiment, workers=workers,
                     branches=branches)
    if verify:
        _verify(db_path, run_ids, selection, quiet, fmt, no_headers)
    else:
        _export(db_path, run_ids, dict(selection, copy=copy, replace=replace, dry_run=dry_run), quiet, fmt, no_headers)


def _export(db_path, run_ids, options: dict, quiet: bool, fmt: str, no_headers: bool) -> None:
    from ..mlflow.export import export_runs

    with ProgressBar("exporting", quiet) as bar:

        def progress(done, total, outcome):
            bar.step(total)
            if outcome.outcome == "failed":
                bar.write(f"error: {outcome.error}")

        report = export_runs(db_path, run_ids, progress=progress, **options)
    if options["dry_run"]:
        for run_id, error in report.errors:
            click.echo(f"error: {error}", err=True)
        echo_rows([plan.summary() for plan in report.plans], fmt, headers=not no_headers)
        click.echo(f"dry run: {counted(len(report.plans), 'run')} would be exported; MLflow was not contacted",
                   err=True)
    else:
        rows = [outcome.row() for outcome in report.outcomes]
        columns = list(rows[0]) if rows else []
        if fmt == "table":  # for reading: MLflow's run ids and the counts in json, csv, tsv and nl
            rows = [dict(row, changed="; ".join(row["changed"])) for row in rows]
            columns = [c for c in columns if c not in ("mlflow_run_id", "renamed", "truncated")
                       and (c not in ("changed", "child_runs") or any(row[c] for row in rows))]
        echo_rows(rows, fmt, columns, headers=not no_headers)
        # The one-line summary: under the table, or on stderr when stdout is for a script.
        click.echo(report.summary(), err=fmt != "table")
    if report.failed:
        sys.exit(1)


def _verify(db_path, run_ids, options: dict, quiet: bool, fmt: str, no_headers: bool) -> None:
    from ..mlflow.verify import verify_runs

    with ProgressBar("verifying", quiet) as bar:
        report = verify_runs(db_path, run_ids, progress=lambda done, total, _: bar.step(total), **options)
    if fmt == "table":
        rows = [{"run_id": c.run_id, "experiment": c.experiment, "result": c.line} for c in report.checks]
    else:
        rows = [c.row() for c in report.checks]
    echo_rows(rows, fmt, headers=not no_headers)
    click.echo(report.summary(), err=fmt != "table")
    if not report.ok:
        sys.exit(1)
