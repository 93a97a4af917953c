"""The answers of :class:`~runlog.api.Index`'s methods, over an index or a lake (``db``:
an ``IndexReader`` or a ``LakeDB``), from the same functions as the CLI's commands:
:mod:`runlog.index.runs` (runs, keys, compare), :mod:`runlog.index.queries` (SQL).
Metric histories are in :mod:`.history`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BadRunLog, RunNotFound
from ..index import lookup
from ..index.queries import run_sql
from ..index.runs import BATCH, compare_runs, list_keys, list_runs
from ..index.sources import local_source_exists, read_source
from ..index.specs import parse_spec
from ..models import RunLog
from ..store import Listing, is_url
from .result import Result

Names = str | Sequence[str] | None


def names_of(value: Names) -> list[str]:
    """One name or several, once each, in order (a lone string is one name, not letters)."""
    if value is None:
        return []
    return list(dict.fromkeys([value] if isinstance(value, str) else value))


def run_specs(metrics: Names, params: Names, options: tuple[str, str] = ("metrics", "params")) -> list[str]:
    """The column specs of ``Index.runs(metrics, params)`` and of ``runlog runs --metric M
    --param P``: params (``lr`` or ``param:lr``) first, then metric specs; a syntax error
    names its option (``options``: what the metrics' and the params' are called)."""
    params = [n if n.startswith("param:") else f"param:{n}" for n in names_of(params)]
    metrics = names_of(metrics)
    for option, texts in ((options[1], params), (options[0], metrics)):
        for text in texts:
            parse_spec(text, option)
    return params + metrics


# The types of columns whose values may all be null (or that have no rows): run fields,
# summaries, and the columns of keys and summaries. A param's, or a metric's last value,
# is a number or text: without a value, nothing says which.
KINDS = {"run_id": "str", "tag": "str", "status": "str", "duration_s": "float", "steps": "int", "first": "float",
         "min": "float", "max": "float", "mean": "float", "count": "int", "argmin": "int", "argmax": "int",
         "what": "str", "name": "str", "runs": "int", "kinds": "str", "metric": "str", "kind": "str", "last": "float",
         "first_step": "int", "last_step": "int"}


def spec_kinds(columns: list[str]) -> dict[str, str]:
    """The types of ``runs`` columns named by specs (``min:loss``: float, ``argmin:loss``: int)."""
    kinds = {}
    for label in columns:
        spec = parse_spec(label)
        kind = spec.name if spec.kind == "field" else spec.summary if spec.kind == "metric" else None
        if kind in KINDS and kind != "last":
            kinds[label] = KINDS[kind]
    return kinds


def runs(db, metrics: Names, params: Names, where: str | None, sort: Names, limit: int | None, tag: str | None,
         status: str | None) -> Result:
    columns, rows = list_runs(db, run_specs(metrics, params), where=where, sort=names_of(sort), limit=limit, tag=tag,
                              status=status)
    return Result.from_rows(columns, rows, spec_kinds(columns))


def keys(db, like: str | None) -> Result:
    return Result.from_rows(*list_keys(db, like), KINDS)


def compare(db, run_ids: Names, metrics: Names, params: Names, summary: str, only_diff: bool) -> Result:
    return Result.from_rows(*compare_runs(db, names_of(run_ids), names_of(metrics), names_of(params), summary,
                                          only_diff))


def sql(db, query: str, params: dict[str, Any] | None) -> Result:
    return Result.from_rows(*run_sql(db, query, params))


# -- runs and their metrics ----------------------------------------------------------------


def chosen_runs(db, run_ids: Names, where: str | None) -> list[str] | None:
    """The runs asked for, in order: ``run_ids`` as given (each must exist), those that
    ``where`` keeps (in ``runs`` order), both, or None for every run."""
    given = names_of(run_ids)
    for run_id in given:
        lookup.require_run(db, run_id)
    if not where:
        return given if run_ids is not None else None
    kept = [row["run_id"] for row in list_runs(db, where=where, defaults=("run_id",))[1]]
    if run_ids is None:
        return kept
    keep = set(kept)
    return [run_id for run_id in given if run_id in keep]


def run_metric_rows(db, columns: str, names: list[str], run_ids: list[str] | None) -> list[dict[str, Any]]:
    """``run_metrics`` rows (``columns``: SQL over ``n``) of these metric names (every name
    when empty) and runs (every run when None): by run (given order, else start time
    and id), then by name (given order, else run order)."""
    for name in names:
        lookup.require_metric(db, name)
    where = [f"n.name IN ({', '.join('?' * len(names))})"] if names else []
    sql = (f"SELECT n.run_id AS run_id, {columns} FROM run_metrics n JOIN runs r ON r.run_id = n.run_id"
           + "{where} ORDER BY r.start_time IS NULL, r.start_time, r.run_id, n.position, n.name")
    if run_ids is None:
        rows = run_sql(db, sql.format(where=f" WHERE {where[0]}" if where else ""), names)[1]
    else:
        rows = []
        for start in range(0, len(run_ids), BATCH):
            batch = run_ids[start:start + BATCH]
            clause = " WHERE " + " AND ".join(where + [f"n.run_id IN ({', '.join('?' * len(batch))})"])
            rows += run_sql(db, sql.format(where=clause), [*names, *batch])[1]
    order = {run_id: i for i, run_id in enumerate(run_ids or dict.fromkeys(row["run_id"] for row in rows))}
    rank = {name: i for i, name in enumerate(names)}
    rows.sort(key=lambda row: (order[row["run_id"]], rank.get(row["metric"], 0)))
    return rows


SUMMARY_COLUMNS = ("n.name AS metric, n.kind, n.count, n.first, n.last, n.min, n.max, n.mean, n.argmin, n.argmax, "
                   "n.first_step, n.last_step")


def summaries(db, metrics: Names, run_ids: Names, where: str | None) -> Result:
    rows = run_metric_rows(db, SUMMARY_COLUMNS, names_of(metrics), chosen_runs(db, run_ids, where))
    columns = ["run_id"] + [c.rsplit(" ", 1)[-1].removeprefix("n.") for c in SUMMARY_COLUMNS.split(", ")]
    return Result.from_rows(columns, rows, KINDS)


# -- one run's log ---------------------------------------------------------------------


def read_run(db, run_id: str, endpoint_url: str | None) -> RunLog:
    """The run's log, read again from where ingest found it (a file, a run folder, a URL)."""
    source = lookup.require_run(db, run_id)["source_path"] or ""
    gone = RunNotFound(f"run {run_id!r} was read from {source or 'a source the index does not name'}, which is gone "
                       "(moved or deleted since it was indexed): ingest its store again (--prune drops runs "
                       "whose source is gone)")
    if is_url(source):
        try:
            found = list(Listing(source, endpoint_url))
        except (BadRunLog, FileNotFoundError):
            raise gone from None
        if not found:
            raise gone
        return read_source(found[0], found[0].layout)
    path = Path(source)
    if not source or not local_source_exists(path):
        raise gone
    return read_source(path, "chunked-fs" if path.is_dir() else "file-system")
