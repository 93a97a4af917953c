"""Runs as a table of column specs: what ``runlog runs``, ``keys`` and ``compare`` and
the web pages show, sort and filter by (the syntax is in :mod:`.specs`).

Every value is bound, never spliced into the SQL; every name must exist in some run
(:mod:`.lookup`), so a misspelt one is an error with a hint rather than an empty column.

>>> db = open_db("runlog.db", readonly=True)                                          # doctest: +SKIP
>>> columns, rows = list_runs(db, ["param:lr", "min:loss"], where="min:loss < 0.5",
...                           sort=["min:loss"], limit=5)                            # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageProblem
from . import lookup
from .queries import Rows, run_sql
from .filters import parse_where
from .specs import SUMMARIES, Spec, parse_spec

DEFAULT_COLUMNS = ("run_id", "tag", "status", "start_time", "duration_s", "steps")
FIELD_SQL = {
    "run_id": "r.run_id", "tag": "r.tag", "status": "r.status", "start_time": "r.start_time",
    "end_time": "r.end_time", "duration_s": "r.duration_s",
    "steps": "(SELECT count(*) FROM steps s WHERE s.run_id = r.run_id)",
}
# A metric's value for a summary; ``last`` is the number, or the text of a non-numeric
# metric (NaN, a number's missing value, stays NULL: no value to sort or compare).
SUMMARY_SQL = {
    "last": "CASE WHEN {a}.last IS NOT NULL THEN {a}.last WHEN {a}.kind != 'numeric' THEN {a}.last_text END",
    "first": "{a}.first", "min": "{a}.min", "max": "{a}.max", "mean": "{a}.mean", "count": "{a}.count",
    "argmin": "{a}.argmin", "argmax": "{a}.argmax",
}
# A param's value as the run log had it: an integer (its text holds only digits), another
# number, or its text (a string bare, anything else as JSON).
PARAM_SQL = ("CASE WHEN {a}.value IS NULL OR {a}.text GLOB '*[^0-9-]*' OR length({a}.text) > 18 "
             "THEN coalesce({a}.value, {a}.text) ELSE CAST({a}.text AS INTEGER) END")
SPEC_TABLES = {"metric": "run_metrics", "param": "run_params"}


def value_sql(db, spec: Spec) -> str:
    """The SQL of a metric or param spec's value, over a ``run_metrics`` or ``run_params``
    row aliased ``{a}``. Where a value may be a number or text (a param, a metric's last
    value), a database whose columns hold one type each (DuckDB over a lake, unlike
    SQLite's cells) chooses the column's type by ``typed_sql(kind, name)``."""
    if spec.kind == "metric" and spec.summary != "last":
        return SUMMARY_SQL[spec.summary]
    typed = getattr(db, "typed_sql", None)
    if typed is not None:
        return typed(spec.kind, spec.name)
    return SUMMARY_SQL["last"] if spec.kind == "metric" else PARAM_SQL


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class RunQuery:
    """SQL over ``runs`` with a LEFT JOIN per metric or parameter a spec names."""

    db: Any
    binds: dict[str, Any] = field(default_factory=dict)
    joins: dict[tuple[str, str], str] = field(default_factory=dict)
    # (table, name) known to exist: read from the index, or checked by an earlier query
    known: set[tuple[str, str]] = field(default_factory=set)

    def bind(self, value: Any) -> str:
        name = f"v{len(self.binds)}"
        self.binds[name] = value
        return f":{name}"

    def column(self, spec: Spec) -> str:
        """The SQL expression of ``spec`` (after checking that its name exists)."""
        if spec.kind == "field":
            return FIELD_SQL[spec.name]
        joined = self.require(spec)
        if joined not in self.joins:
            self.joins[joined] = f"j{len(self.joins)}"
        return value_sql(self.db, spec).format(a=self.joins[joined])

    def require(self, spec: Spec) -> tuple[str, str]:
        """``(table, name)`` of a metric or param spec, once its name is known to exist
        (else a one-line error with the closest names)."""
        joined = (SPEC_TABLES[spec.kind], spec.name)
        if joined not in self.known:
            (lookup.require_metric if spec.kind == "metric" else lookup.require_param)(self.db, spec.name)
            self.known.add(joined)
        return joined

    def join_clauses(self, names: set[tuple[str, str]] | None = None) -> str:
        """The LEFT JOINs of ``names`` (of every spec seen so far when None)."""
        return "".join(
            f" LEFT JOIN {table} {alias} ON {alias}.run_id = r.run_id AND {alias}.name = {self.bind(name)}"
            for (table, name), alias in self.joins.items() if names is None or (table, name) in names)


def spec_list(texts: Sequence[str], what: str) -> list[Spec]:
    """Column specs, once each, in order; ``what`` names the option in errors."""
    specs = [parse_spec(text, what) for text in texts]
    return list(dict.fromkeys(specs))


def list_runs(db, columns: Sequence[str] = (), *, where: str | None = None, sort: Sequence[str] = (),
              limit: int | None = None, offset: int = 0, tag: str | None = None, status: str | None = None,
              defaults: Sequence[str] = DEFAULT_COLUMNS) -> tuple[list[str], Rows]:
    """One row per run: ``defaults`` (run fields and ``steps``) then every column spec of
    ``columns``; ``where`` filters, ``sort`` orders (``-SPEC`` descending; runs without
    the value last), ``limit`` and ``offset`` cut. Columns are named by their specs
    (``min:loss``)."""
    query = RunQuery(db)
    shown = list(dict.fromkeys([Spec("field", name) for name in defaults] + spec_list(columns, "column")))
    order = _order(query, sort)
    conditions = _conditions(query, db, where, tag, status)
    # Filter, sort and cut first, joining only what that needs; then the shown columns of
    # the runs that are left (at 100,000 runs and --limit 5, five rows get their columns).
    keys = "".join(f", {sql} AS k{i}" for i, (sql, _) in enumerate(order))
    inner = (f"SELECT r.run_id AS run_id{keys} FROM runs r{query.join_clauses(set(query.joins))}"
             + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
             + f" ORDER BY {_order_by(order, 'sql')}"
             + (f" LIMIT {query.bind(int(limit))} OFFSET {query.bind(int(offset))}" if limit is not None else ""))
    exprs = ", ".join(f"{query.column(spec)} AS {quote_ident(spec.label)}" for spec in shown)
    if len(query.joins) > MAX_JOINS:  # more metrics and params than one query may join
        _, found = run_sql(db, f"SELECT q.run_id FROM ({inner}) q ORDER BY {_order_by(order, 'key')}", query.binds)
        run_ids = [row["run_id"] for row in found]
        values = spec_values(db, run_ids, shown, query.known)
        return [spec.label for spec in shown], [dict(zip((s.label for s in shown), values[r])) for r in run_ids]
    sql = (f"SELECT {exprs} FROM ({inner}) q JOIN runs r ON r.run_id = q.run_id{query.join_clauses()}"
           f" ORDER BY {_order_by(order, 'key')}")
    return run_sql(db, sql, query.binds)


# SQLite joins at most 64 tables in one query, and a metric or param spec joins one.
MAX_JOINS = 50
BATCH = 400  # run ids (and names) bound in one query


def spec_values(db, run_ids: Sequence[str], specs: Sequence[Spec], known: set | None = None) -> dict[str, list]:
    """``{run_id: [value of each spec]}`` without joins (so for any number of specs): run
    fields from ``runs``, the rest from ``run_metrics`` and ``run_params`` by (name, run_id);
    ``known``: the (table, name) pairs known to exist (others are checked)."""
    check = RunQuery(db, known=set() if known is None else known)
    for spec in specs:
        if spec.kind != "field":
            check.require(spec)  # an unknown name is an error with a hint
    found: dict[tuple, Any] = {}  # (kind, run_id, name, value SQL) -> value
    sqls = {s: value_sql(db, s) for s in specs if s.kind != "field"}
    for kind, table in SPEC_TABLES.items():
        # names whose values are read by the same expressions, in one query per batch
        groups: dict[tuple[str, ...], list[str]] = {}
        for name in dict.fromkeys(s.name for s in specs if s.kind == kind):
            exprs = tuple(dict.fromkeys(sql for s, sql in sqls.items() if s.kind == kind and s.name == name))
            groups.setdefault(exprs, []).append(name)
        for exprs, names in groups.items():
            for ids, chunk in _batches(run_ids, names):
                sql = (f"SELECT a.run_id, a.name, {', '.join(e.format(a='a') for e in exprs)} FROM {table} a "
                       f"WHERE a.run_id IN ({', '.join('?' * len(ids))}) AND a.name IN ({', '.join('?' * len(chunk))})")
                for run_id, name, *cells in db.conn.execute(sql, [*ids, *chunk]):
                    found.update(((kind, run_id, name, expr), cell) for expr, cell in zip(exprs, cells))
    fields = [s for s in specs if s.kind == "field"]
    if fields:
        for ids, _ in _batches(run_ids, [""]):
            sql = (f"SELECT r.run_id, {', '.join(FIELD_SQL[s.name] for s in fields)} FROM runs r "
                   f"WHERE r.run_id IN ({', '.join('?' * len(ids))})")
            for run_id, *cells in db.conn.execute(sql, ids):
                found.update((("field", run_id, s.name, ""), cell) for s, cell in zip(fields, cells))
    keys = [(s.kind, s.name, sqls.get(s, "")) for s in specs]
    return {run_id: [found.get((kind, run_id, name, expr)) for kind, name, expr in keys] for run_id in run_ids}


def _batches(run_ids: Sequence[str], names: Sequence[str]):
    for i in range(0, len(run_ids), BATCH):
        for j in range(0, len(names), BATCH):
            yield list(run_ids[i:i + BATCH]), list(names[j:j + BATCH])


def _order(query: RunQuery, sort: Sequence[str]) -> list[tuple[str, bool]]:
    """``[(sql, descending)]``: the sort specs, then start time and run_id."""
    order = []
    for text in sort:
        descending = text.startswith("-")
        spec = parse_spec(text[1:] if descending else text, "--sort")
        order.append((query.column(spec), descending))
    return order + [("r.start_time", False), ("r.run_id", False)]


def _order_by(order: list[tuple[str, bool]], use: str) -> str:
    terms = []
    for i, (sql, descending) in enumerate(order):
        expr = sql if use == "sql" else f"q.k{i}"
        terms.append(f"{expr} IS NULL, {expr}{' DESC' if descending else ''}")
    return ", ".join(terms)


def _conditions(query: RunQuery, db, where: str | None, tag: str | None, status: str | None) -> list[str]:
    conditions = []
    if tag is not None:
        lookup.require_value(db, "tag", tag, "tag")
        conditions.append(f"r.tag = {query.bind(tag)}")
    if status is not None:
        lookup.require_value(db, "upper(status)", status.upper(), "status")
        conditions.append(f"upper(r.status) = {query.bind(status.upper())}")
    if where:
        conditions.append(parse_where(where, query.column, query.bind).sql)
    return conditions


def count_runs(db, *, where: str | None = None, tag: str | None = None, status: str | None = None) -> int:
    """How many runs ``list_runs`` would list with these filters."""
    query = RunQuery(db)
    conditions = _conditions(query, db, where, tag, status)
    sql = f"SELECT count(*) AS n FROM runs r{query.join_clauses()}" + (
        f" WHERE {' AND '.join(conditions)}" if conditions else "")
    return run_sql(db, sql, query.binds)[1][0]["n"]


def run_facets(db, columns: Sequence[str] = ("tag", "status"), *, where: str | None = None, tag: str | None = None,
               status: str | None = None, limit: int = 20) -> dict[str, list[tuple[str, int]]]:
    """The most common values of run fields among the runs the filters keep, with counts."""
    facets = {}
    for column in columns:
        query = RunQuery(db)
        conditions = _conditions(query, db, where, tag, status)
        # GROUP BY 1, not by the alias: a joined table's own `value` column would win
        sql = (f"SELECT {FIELD_SQL[column]} AS facet, count(*) AS n FROM runs r{query.join_clauses()}"
               + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
               + f" GROUP BY 1 ORDER BY n DESC, 1 LIMIT {int(limit)}")
        facets[column] = [(row["facet"], row["n"]) for row in run_sql(db, sql, query.binds)[1]]
    return facets


def default_specs(db, metrics: int = 4, params: int = 4) -> list[str]:
    """Columns worth showing when none are asked for: the params whose value differs between
    runs and the most common numeric metrics (each: the most runs first)."""
    varying = [Spec("param", name).label for (name,) in db.conn.execute(
        "SELECT name FROM run_params GROUP BY name HAVING count(DISTINCT coalesce(value, text)) > 1 "
        "ORDER BY count(*) DESC, min(position), name LIMIT ?", (params,))]
    common = [Spec("metric", name).label for (name,) in db.conn.execute(
        "SELECT name FROM run_metrics WHERE kind = 'numeric' GROUP BY name "
        "ORDER BY count(*) DESC, min(position), name LIMIT ?", (metrics,))]
    return varying + common


# Metric names for which lower is better (the rest: higher is better).
_LOWER_IS_BETTER = re.compile(r"loss|err|mse|mae|rmse|perplexity|ppl|time|latency|duration|cost|regret|nll|wer\b|cer\b",
                              re.IGNORECASE)


def lower_is_better(name: str) -> bool:
    """Whether the best value of a metric is its lowest, judged by its name.

    >>> lower_is_better("eval/val_loss"), lower_is_better("accuracy"), lower_is_better("latency_ms")
    (True, False, True)
    """
    return bool(_LOWER_IS_BETTER.search(name.rsplit("/", 1)[-1]))


# -- keys -------------------------------------------------------------------------


def list_keys(db, like: str | None = None) -> tuple[list[str], Rows]:
    """Every run-level metric and param name: how many runs have it, its kinds, and the
    range of its last value (a param's value); ``like`` narrows the names (SQL LIKE)."""
    where = "WHERE name LIKE :like" if like else ""
    sql = f"""SELECT 'metric' AS what, name, count(*) AS runs, group_concat(DISTINCT kind) AS kinds,
    min(last) AS min, max(last) AS max
FROM run_metrics {where} GROUP BY name
UNION ALL
SELECT 'param', name, count(*), group_concat(DISTINCT kind), min(value), max(value)
FROM run_params {where} GROUP BY name
ORDER BY what, runs DESC, name"""
    return run_sql(db, sql, {"like": like} if like else {})


# -- compare ------------------------------------------------------------------------


def compare_runs(db, run_ids: Sequence[str], metrics: Sequence[str] = (), params: Sequence[str] = (),
                 summary: str = "last", only_diff: bool = False) -> tuple[list[str], Rows]:
    """Runs side by side, one row per column spec: every param (or ``params``), then every
    metric with ``summary`` (or the specs of ``metrics``), lined up by run-level name.
    ``differs`` is ``*`` where the runs disagree or one lacks the value."""
    if summary not in SUMMARIES:
        raise UsageProblem(f"--summary {summary!r}: use one of {', '.join(SUMMARIES)}")
    run_ids = list(dict.fromkeys(run_ids))
    for run_id in run_ids:
        lookup.require_run(db, run_id)
    specs, known = _compare_specs(db, run_ids, metrics, params, summary)
    values = spec_values(db, run_ids, specs, known)
    labels = {r: (r if r not in ("spec", "differs") else f"run:{r}") for r in run_ids}
    rows = []
    for i, spec in enumerate(specs):
        cells = [values[r][i] for r in run_ids]
        differs = any(c is None for c in cells) or len({repr(c) for c in cells}) > 1
        if only_diff and not differs:
            continue
        rows.append({"spec": spec.label, **{labels[r]: c for r, c in zip(run_ids, cells)},
                     "differs": "*" if differs else ""})
    return ["spec", *labels.values(), "differs"], rows


def _compare_specs(db, run_ids: list[str], metrics: Sequence[str], params: Sequence[str],
                   summary: str) -> tuple[list[Spec], set[tuple[str, str]]]:
    """The specs to compare, and those of them read from the index (known to exist)."""
    marks = ", ".join("?" * len(run_ids))
    if params:
        param_specs = [Spec("param", name.removeprefix("param:")) for name in params]
    else:
        param_specs = [Spec("param", name) for (name,) in db.conn.execute(
            f"SELECT name FROM run_params WHERE run_id IN ({marks}) GROUP BY name ORDER BY min(position), name",
            run_ids)]
    if metrics:
        metric_specs = spec_list(metrics, "--metric")
    else:
        metric_specs = [Spec("metric", name, summary) for (name,) in db.conn.execute(
            f"SELECT name FROM run_metrics WHERE run_id IN ({marks}) GROUP BY name ORDER BY min(position), name",
            run_ids)]
    known = {("run_params", s.name) for s in param_specs if not params}
    known |= {("run_metrics", s.name) for s in metric_specs if not metrics}
    return list(dict.fromkeys(param_specs + metric_specs)), known
