"""Run-level names and summaries: one meaning for "this run's loss".

Within a run, a key's plain name (``loss``) belongs to the first step in run order
(pipeline order; branches in the order the run log lists them) that recorded it;
the same key in any other step is ``<step_name>/<key>`` (``search.lr1.train/loss``).
Parameters follow the same rule, run-level parameters first, then each step's
latest attempt (input before output). The answer never depends on finish times,
file times or ingest order. The MLflow export names its metrics from these.

Each run-level metric gets its summaries: ``last`` (the value at the highest step),
``first``, ``min``, ``max``, ``mean``, ``count`` and the steps of the min and the max
(``argmin``, ``argmax``; the lowest such step on ties). NaN counts as a point but
not as a value; ``mean`` of +inf and -inf is NULL.

Pure functions over rows in the index's column order, so ingest (the rows it has
just flattened) and the schema-3 migration (the rows already in the index) share
them.

>>> rows = [("r", "a", "loss", 0, 0.9, None, "numeric", 1), ("r", "a", "loss", 1, 0.5, None, "numeric", 2),
...         ("r", "b", "loss", 0, 0.7, None, "numeric", 3)]
>>> [(m[1], m[9], m[12], m[13]) for m in run_metric_rows("r", group_series(rows), {"a": 0, "b": 1})]
[('loss', 0.5, 0.5, 1), ('b/loss', 0.7, 0.7, 0)]
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

RUN_METRIC_COLUMNS = (
    "run_id", "name", "step_name", "key", "position", "kind", "count", "first", "first_step", "last", "last_step",
    "last_text", "min", "argmin", "max", "argmax", "mean", "timestamp_ms", "timestamps",
)
RUN_PARAM_COLUMNS = ("run_id", "name", "step_name", "key", "position", "direction", "kind", "value", "text")
# Where a step is missing from the steps table (never in real logs), its keys come last.
NO_POSITION = 1 << 40


class NameClaims:
    """First-come run-level names: ``key`` for the first step that asks, then
    ``<step_name>/<key>``; a name taken anyway gets ``-2``, ``-3``...

    >>> claims = NameClaims()
    >>> claims.claim("train", "loss"), claims.claim("eval", "loss")
    ('loss', 'eval/loss')
    """

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def claim(self, step_name: str, key: str) -> str:
        candidates = [key, f"{step_name}/{key}"] if step_name else [key]
        for name in itertools.chain(candidates, (f"{candidates[-1]}-{n}" for n in itertools.count(2))):
            if name not in self.taken:
                self.taken.add(name)
                return name
        raise AssertionError("unreachable")


def group_series(metric_rows: Iterable[tuple]) -> dict[tuple[str, str], list[tuple]]:
    """``metrics`` rows by ``(step_name, key)``, each series in step order."""
    groups: dict[tuple[str, str], list[tuple]] = {}
    for row in metric_rows:
        groups.setdefault((row[1], row[2]), []).append(row)
    by_step = itemgetter(3)
    for rows in groups.values():
        rows.sort(key=by_step)  # already in order, almost always: one linear pass
    return groups


def run_metric_rows(run_id: str, groups: dict[tuple[str, str], list[tuple]], positions: dict[str, int]) -> list[tuple]:
    """``run_metrics`` rows (RUN_METRIC_COLUMNS) of one run from its ``metrics`` rows
    grouped by series (:func:`group_series`)."""
    claims = NameClaims()
    out = []
    for (step_name, key) in sorted(groups, key=lambda g: (positions.get(g[0], NO_POSITION), g[0], g[1])):
        out.append(summary_row(run_id, claims.claim(step_name, key), step_name, key,
                               positions.get(step_name, NO_POSITION), groups[(step_name, key)]))
    return out


def summary_row(run_id: str, name: str, step_name: str, key: str, position: int, rows: list[tuple]) -> tuple:
    """One `run_metrics` row from the `metrics` rows of one (step, key) (sorted by step here)."""
    rows.sort(key=itemgetter(3))  # by step (already in order, almost always)
    kinds = {row[6] for row in rows}
    numbers = [(row[4], row[3]) for row in rows if row[4] is not None]  # (value, step); NaN is NULL
    first, last = rows[0], rows[-1]
    if numbers:
        low = min(numbers)  # the lowest value, and on ties the lowest step
        high_value = max(value for value, _ in numbers)
        high = next(pair for pair in numbers if pair[0] == high_value)
        mean = mean_of([value for value, _ in numbers])
    else:
        low = high = (None, None)
        mean = None
    return (
        run_id, name, step_name, key, position, kinds.pop() if len(kinds) == 1 else "mixed", len(rows),
        first[4], first[3], last[4], last[3], last[5], low[0], low[1], high[0], high[1], mean, last[7],
        len({row[7] for row in rows}),
    )


def mean_of(values: list[float]) -> float | None:
    """The mean, exact where floats allow (fsum); +inf with -inf has none."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:  # finite values whose sum overflows
        return sum(v / len(values) for v in values)
    except ValueError:  # +inf and -inf
        return None


def run_param_rows(run_id: str, param_rows: Iterable[tuple], positions: dict[str, int]) -> list[tuple]:
    """``run_params`` rows (RUN_PARAM_COLUMNS) of one run from its ``params`` rows: the
    run-level parameters, then each step's latest attempt's."""
    latest: dict[str, int] = {}
    rows = list(param_rows)
    for row in rows:
        latest[row[1]] = max(latest.get(row[1], 0), row[2])
    chosen = [row for row in rows if row[2] == latest[row[1]]]
    chosen.sort(key=lambda row: (-1 if row[1] == "" else positions.get(row[1], NO_POSITION), row[1],
                                 row[3] != "run" and row[3] != "input", row[4]))
    claims = NameClaims()
    return [
        (run_id, claims.claim(step_name, key), step_name, key, -1 if step_name == "" else
         positions.get(step_name, NO_POSITION), direction, kind, value, param_text(value_text))
        for _, step_name, _, direction, key, kind, value, value_text in chosen
    ]


def param_text(value_text: str | None) -> str | None:
    """A parameter as text: a string bare, anything else as the JSON the index keeps."""
    if value_text is None or not value_text.startswith('"'):
        return value_text
    try:
        value: Any = json.loads(value_text)
    except ValueError:
        return value_text
    return value if isinstance(value, str) else value_text
