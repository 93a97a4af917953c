"""Names that exist in the index, and the closest ones to a name that does not: every
read command and named query refuses a run, tag, metric or parameter that no run has,
in one line that says what was meant.

>>> require_metric(db, "los")                 # doctest: +SKIP
Traceback (most recent call last):
runlog.errors.UnknownName: no metric 'los' in any run; did you mean loss, loss_curve?
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import RunNotFound, UnknownName
from .specs import quote_name

# Candidates read for a suggestion, at most (the error path of a huge index stays quick).
MAX_CANDIDATES = 50_000


def did_you_mean(name: str, candidates: list[str], show=str) -> str:
    """``"; did you mean a, b?"`` with the closest candidates, or ``""``."""
    lowered = name.lower()
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    close += sorted(c for c in candidates if c.lower().startswith(lowered) and c not in close)  # los: loss_curve
    if not close:
        close = [c for c in candidates if lowered in c.lower()]
    close = close[:3]
    return f"; did you mean {', '.join(show(c) for c in close)}?" if close else ""


def _column(db, sql: str, args: tuple = ()) -> list[Any]:
    return [row[0] for row in db.conn.execute(sql, args)]


def _exists(db, sql: str, args: tuple) -> bool:
    return db.conn.execute(sql, args).fetchone() is not None


def require_run(db, run_id: str) -> dict[str, Any]:
    """The ``runs`` row of ``run_id``."""
    cursor = db.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    row = cursor.fetchone()
    if row is None:
        names = _column(db, f"SELECT run_id FROM runs ORDER BY start_time DESC LIMIT {MAX_CANDIDATES}")
        raise RunNotFound(f"no run {run_id!r} in the index{did_you_mean(run_id, names)}")
    return dict(zip([d[0] for d in cursor.description], row))


def require_metric(db, name: str) -> None:
    if _exists(db, "SELECT 1 FROM run_metrics WHERE name = ? LIMIT 1", (name,)):
        return
    hint = did_you_mean(name, _names(db, "run_metrics"), quote_name)
    if not hint and _exists(db, "SELECT 1 FROM run_params WHERE name = ? LIMIT 1", (name,)):
        hint = f"; did you mean param:{quote_name(name)}?"
    raise UnknownName(f"no metric {name!r} in any run{hint} (`runlog keys` lists them)")


def require_param(db, name: str) -> None:
    if _exists(db, "SELECT 1 FROM run_params WHERE name = ? LIMIT 1", (name,)):
        return
    hint = did_you_mean(name, _names(db, "run_params"), lambda n: f"param:{quote_name(n)}")
    if not hint and _exists(db, "SELECT 1 FROM run_metrics WHERE name = ? LIMIT 1", (name,)):
        hint = f"; did you mean the metric {quote_name(name)}?"
    raise UnknownName(f"no param {name!r} in any run{hint} (`runlog keys` lists them)")


def require_key(db, key: str, run_id: str | None = None) -> None:
    """A raw metric key (``metrics.key``), of one run or of any."""
    where, args = ("run_id = ? AND key = ?", (run_id, key)) if run_id else ("key = ?", (key,))
    if _exists(db, f"SELECT 1 FROM metrics WHERE {where} LIMIT 1", args):
        return
    scope, candidates = (f"run {run_id!r}", _column(db, "SELECT DISTINCT key FROM step_latest WHERE run_id = ?",
                                                    (run_id,))) if run_id else \
        ("any run", _column(db, f"SELECT DISTINCT key FROM step_latest LIMIT {MAX_CANDIDATES}"))
    raise UnknownName(f"no metric key {key!r} in {scope}{did_you_mean(key, candidates)}")


def require_value(db, column: str, value: str, what: str) -> None:
    """A value of a ``runs`` column (``tag``, ``status``): some run must have it."""
    if _exists(db, f"SELECT 1 FROM runs WHERE {column} = ? LIMIT 1", (value,)):
        return
    values = _column(db, f"SELECT DISTINCT {column} FROM runs LIMIT {MAX_CANDIDATES}")
    hint = did_you_mean(value, [v for v in values if v])
    raise UnknownName(f"no run has {what} {value!r}{hint}")


def _names(db, table: str) -> list[str]:
    return _column(db, f"SELECT DISTINCT name FROM {table} LIMIT {MAX_CANDIDATES}")
