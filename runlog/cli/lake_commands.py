"""``runlog lake``: the index as a Parquet dataset (``lake build``); ``runlog query --lake``
reads one."""

from __future__ import annotations

import sys

import click

from ..values import one_line
from ..store import DEFAULT_STORE
from .common import ProgressBar, endpoint_option, friendly_errors


@click.group(name="lake")
def lake_group():
    """The index's tables as a Parquet dataset that DuckDB, Spark, Polars or Trino read.

    \b
    Example:
        runlog lake build .run_log_store lake/
        runlog query --lake lake/ --named leaderboard -p key loss
    """


@lake_group.command(name="build")
@click.argument("paths", nargs=-1, type=click.Path(), metavar="SOURCE... DEST")
@click.option("--shard", default="1/1", show_default=True, metavar="I/N",
              help="Build only share I of N (by bucket): N builders, anywhere, fill one DEST between them.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes (one bucket at a time each).")
@click.option("--buckets", type=click.IntRange(1, 99_999), default=None,
              help="Buckets of a new lake (default 64): about runs/100 keeps files large and rewrites small.")
@click.option("--prune", is_flag=True, help="Remove runs whose source is gone from the listing.")
@click.option("--strict", is_flag=True, help="Stop at the first bad run log instead of skipping it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@endpoint_option
@friendly_errors
def build_command(paths, shard, workers, buckets, prune, strict, quiet, endpoint_url):
    """Write the runs of SOURCE... as a Parquet dataset under DEST (incremental: only the
    buckets whose sources changed are rewritten).

    SOURCE is a run-log store (a folder, a run file, a chunked run folder, or the URL of
    one) or an index file (its tables are copied). DEST is a folder or a URL (s3://,
    gs://). A bad run log is reported on stderr and skipped; the exit code is then 1.

    \b
    Example:
        runlog lake build .run_log_store lake/ --workers 2
        runlog lake build s3://team-runs/prod s3://team-lake/runs --shard 1/4
    """
    from ..lake import build_lake, parse_shard

    if not paths:
        raise click.UsageError("give SOURCE... DEST")
    if len(paths) == 1:
        paths = (DEFAULT_STORE, *paths)
    *sources, dest = paths
    with ProgressBar("building", quiet) as bar:
        report = build_lake(sources, dest, shard=parse_shard(shard), workers=workers, buckets=buckets, prune=prune,
                            strict=strict, progress=lambda done, total: bar.advance(done, total),
                            endpoint_url=endpoint_url)
        for path, message in report.errors:
            bar.write(one_line(f"error: {path}: {message}"))
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)
