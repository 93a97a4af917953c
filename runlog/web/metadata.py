"""What runlog tells Datasette about the index's tables: titles, descriptions of
every column, facets and sort orders.

>>> sorted(table_metadata())[:3]
['attempts', 'catalog', 'code_identities']
"""

from __future__ import annotations

from html import escape
from typing import Any

PLUGIN = "runlog"
INDEX_TABLES = {"runs", "steps", "metrics"}  # what marks an SQLite file as a runlog index

# table -> (title, description, {column: description}, facets)
TABLES: dict[str, tuple[str, str, dict[str, str], list[str]]] = {
    "runs": (
        "Runs",
        "One row per pipeline run found in the store.",
        {
            "run_id": "Run id; opens the run page.",
            "tag": "Run tag (the experiment name in MLflow).",
            "status": "CREATED, PROCESSING, SUCCESS or FAIL; a crashed run stays PROCESSING.",
            "dag_hash": "Hash of the pipeline definition.",
            "use_cached": "1 when the run re-used a failed run's results.",
            "original_run_id": "The run this one re-used, if any.",
            "start_time": "Earliest attempt start, as written in the log; run-log times carry no zone and runlog reads them as UTC.",
            "end_time": "Latest attempt end, as written in the log (read as UTC).",
            "duration_s": "end_time minus start_time, in seconds.",
            "format": "Shape of the log: g1 magnus 0.5; g2 the seed's shape (runnable 0.1-0.5, and runs runlog records); g3 runnable 0.6+.",
            "layout": "file-system (one JSON file) or chunked-fs (a folder of chunks).",
            "source_path": "The file or folder the run was read from.",
            "ingested_at": "When runlog last read it (UTC).",
            "parameters": "Run-level parameters, JSON.",
            "run_config": "The run configuration, JSON.",
        },
        ["tag", "status"],
    ),
    "steps": (
        "Steps",
        "Every step of every run, branches included, in run order.",
        {
            "step_name": "Internal name: dot-joined path such as par.branch1.train.",
            "name": "The step's own name.",
            "branch": "Internal name of the branch holding the step; empty at the root.",
            "step_type": "task, parallel, map, success, fail...",
            "status": "The step's status.",
            "message": "The step's message (the error, for failed steps).",
            "mock": "1 when the step was skipped by a re-run.",
            "position": "Order in the run, from 0.",
        },
        ["status", "step_type"],
    ),
    "attempts": (
        "Attempts",
        "Each try of a task step; retries add attempts.",
        {
            "attempt_number": "1 for the first try.",
            "duration_s": "Seconds the attempt took.",
            "retry_indicator": "Retry marker written by runnable 0.6+.",
            "message": "The attempt's message.",
        },
        ["status"],
    ),
    "metrics": (
        "Metrics",
        "Tracked values (user_defined_metrics), one row per run, step, key and metric step.",
        {
            "key": "Metric name; nested values are flattened to dotted keys.",
            "step": "The metric step (the x of a curve); 0 for values tracked once.",
            "value": "The number, for numeric metrics.",
            "value_text": "The value as text (or JSON) when not numeric; 'NaN' for NaN.",
            "kind": "numeric, bool, text or json.",
            "timestamp_ms": "End of the attempt that recorded it, epoch milliseconds.",
        },
        [],  # no default facets: a GROUP BY over millions of rows on every load
    ),
    "params": (
        "Parameters",
        "Run-level parameters and each attempt's input and output parameters.",
        {
            "step_name": "Empty for run-level parameters.",
            "attempt_number": "0 for run-level parameters.",
            "direction": "run, input or output.",
            "kind": "json, metric or object (runnable 0.6+); raw for older logs.",
            "value": "The number, when the value is numeric.",
            "value_text": "The value as JSON.",
        },
        ["direction", "kind"],
    ),
    "catalog": (
        "Data catalog",
        "Files each step got from or put into the catalog.",
        {"stage": "get or put.", "data_hash": "sha256 of the data."},
        ["stage"],
    ),
    "code_identities": (
        "Code identities",
        "The code (git commit, container image...) each step ran.",
        {"attempt_number": "0 when recorded on the step rather than an attempt."},
        ["code_identifier_type"],
    ),
    "sources": (
        "Sources",
        "Files and folders the index was built from, with what was seen of them.",
        {"hash": "Content hash used to skip unchanged runs."},
        [],
    ),
    "ingest_errors": (
        "Ingest errors",
        "Run logs that could not be read, with the reason.",
        {},
        [],
    ),
    "step_latest": (
        "Latest per step",
        "Kept by ingest: each metric's row at its highest step, per run and step (the latest_metrics view reads it).",
        {"step": "The highest step recorded for this key in this step."},
        [],  # no default facets: a GROUP BY over millions of rows on every load
    ),
    "run_metrics": (
        "Run metrics",
        "Kept by ingest: one row per run and run-level metric name, with its summaries. A key's plain name "
        "belongs to the first step in run order that recorded it; the same key in another step is "
        "<step_name>/<key>. What runs, leaderboards and compare sort and filter by.",
        {
            "name": "Run-level name (loss, or search.lr1.train/loss).",
            "position": "Run order of the step that recorded it.",
            "count": "Points recorded.",
            "first": "Value at the lowest step.",
            "last": "Value at the highest step (numbers; last_text holds text and NaN).",
            "min": "Lowest value (NaN aside).", "argmin": "Step of the lowest value (the first such step).",
            "max": "Highest value.", "argmax": "Step of the highest value (the first such step).",
            "mean": "Mean of the values (NaN aside).",
            "timestamp_ms": "End of the attempt that recorded the last point, epoch milliseconds (UTC).",
            "timestamps": "How many different times its points carry.",
        },
        ["kind"],
    ),
    "metric_tiles": (
        "Metric tiles",
        "Kept by ingest for long numeric series: per run of `width` steps (16, 256, 4096...), the count, sum, "
        "lowest and highest value with their steps; the charts read these instead of every point.",
        {"tile": "step // width.", "total": "Sum of the values (the mean is total / count)."},
        [],
    ),
    "run_params": (
        "Run params",
        "Kept by ingest: one row per run and run-level parameter name: run-level parameters, then each "
        "step's latest attempt's, named by the same rule as run_metrics.",
        {"name": "Run-level name (lr, or train/lr).", "value": "The number, when numeric.",
         "text": "The value as text: a string bare, anything else as JSON."},
        ["direction", "kind"],
    ),
    "latest_metrics": (
        "Latest metrics",
        "Each metric's value at its highest step, per run and step.",
        {},
        [],  # no default facets: a GROUP BY over millions of rows on every load
    ),
    "run_summary": (
        "Run summary",
        "Runs with their step and failed-step counts.",
        {},
        ["tag", "status"],
    ),
}


# Tables too large to count or to suggest facets for on every page load: their table
# pages skip both (add ``_nocount=`` to a URL to count anyway).
LARGE_TABLES = {"metrics", "step_latest", "metric_tiles", "run_metrics", "run_params"}


def table_metadata() -> dict[str, dict[str, Any]]:
    """Datasette metadata for every runlog table: title, description (its columns folded
    away in a ``<details>``), facets, sort order.

    >>> table_metadata()["runs"]["facets"]
    ['tag', 'status']
    """
    tables = {}
    for name, (title, description, columns, facets) in TABLES.items():
        entry: dict[str, Any] = {"title": title, "description_html": _describe(description, columns)}
        if facets:
            entry["facets"] = list(facets)
        if name in ("runs", "run_summary"):
            entry["sort_desc"] = "start_time"
        tables[name] = entry
    return tables


def _describe(description: str, columns: dict[str, str]) -> str:
    """The table's description, then its columns' descriptions folded away."""
    text = f"<p>{escape(description)}</p>"
    if columns:
        items = "".join(f"<dt>{escape(c)}</dt><dd>{escape(d)}</dd>" for c, d in columns.items())
        text += f'<details class="rl-columns"><summary>{len(columns)} columns described</summary><dl>{items}</dl></details>'
    return text


def front_door(runs_url: str) -> str:
    """What the home page and the database page say first: where the runs are."""
    return (f'<p class="rl-front"><a href="{escape(runs_url)}"><strong>Browse the runs</strong></a>: sort and filter '
            "them by any metric or parameter, open one, compare several. The tables below hold every row.</p>")


def build_metadata(database: str) -> dict[str, Any]:
    """The metadata ``runlog serve`` gives Datasette for the index named ``database``.

    >>> sorted(build_metadata("runlog")["databases"]["runlog"]["tables"]["metrics"])
    ['description_html', 'title']
    """
    return {
        "title": "runlog",
        "description_html": front_door("/-/runlog/runs"),
        "databases": {database: {"tables": table_metadata(), "plugins": {PLUGIN: {"read_only": True}}}},
    }
