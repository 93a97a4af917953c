"""The runlog -> MLflow mapping rules: names, statuses, times, and the
first-come naming of metrics and params that the export and the live tracker share.

- experiment = the run's tag (``Default`` when empty); MLflow run name = run_id.
- int/float values -> metrics at their step; str, bool and JSON values -> params
  ``<key>_<step>``; run-level parameters -> params under their own names.
- A name is first-come: the first pipeline step (in run order) that uses a name gets
  it; another step with the same key gets ``<step_name>/<key>``.
- Characters MLflow refuses become ``_``; names over 250 characters are cut to 241
  and end in ``-`` + 8 hex digits of a hash of the full name; such names are listed in
  the ``runlog.renamed`` tag. Param values over 6000 characters are cut, and listed
  in the ``runlog.truncated`` tag.

>>> m = Mapper()
>>> m.metric_name("train", "loss"), m.metric_name("eval", "loss")
('loss', 'eval/loss')
"""

from __future__ import annotations

import hashlib
import itertools
import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

DEFAULT_EXPERIMENT = "Default"
STATUS = {"SUCCESS": "FINISHED", "FAIL": "FAILED"}  # anything else (PROCESSING, CREATED): KILLED

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_NAME = 500

# MLflow's allowed name characters, less ':' (refused by MLflow servers on Windows).
_REFUSED = re.compile(r"[^/\w.\- ]")


# -- names --------------------------------------------------------------


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits, else its head and a hash of the whole, ``limit`` chars in all.

    >>> len(shorten("x" * 300, 250)), shorten("x" * 300, 250)[-9:]
    (250, '-0d4e2ca9')
    """
    if len(text) <= limit:
        return text
    return text[: limit - 9] + "-" + short_hash(text)


def mlflow_key(text: str) -> str:
    """A metric/param/tag name MLflow accepts, made deterministically from ``text``.

    Refused characters become ``_``; path parts MLflow refuses (empty, ``.``,
    ``..``, a leading ``/``) become ``_``; over 250 characters, :func:`shorten`.

    >>> mlflow_key("acc@top:5"), mlflow_key("a//b"), mlflow_key("../x")
    ('acc_top_5', 'a/_/b', '_/x')
    """
    clean = _REFUSED.sub("_", text)
    parts = [("_" if part in ("", ".", "..") else part) for part in clean.split("/")]
    clean = "/".join(parts)
    if clean.startswith(".."):
        clean = "_" + clean[1:]
    clean = shorten(clean, MAX_KEY)
    if posixpath.normpath(clean) != clean:  # e.g. a part cut by shorten(); rare
        clean = shorten(clean.replace("/", "_"), MAX_KEY)
    return clean


def mlflow_status(status: str | None) -> str:
    """runlog status -> MLflow run status.

    >>> mlflow_status("SUCCESS"), mlflow_status("FAIL"), mlflow_status("PROCESSING")
    ('FINISHED', 'FAILED', 'KILLED')
    """
    return STATUS.get((status or "").upper(), "KILLED")


def experiment_name(tag: str | None, override: str | None = None) -> str:
    """``--experiment`` if given, else the run's tag, else ``Default``."""
    return shorten(override or tag or DEFAULT_EXPERIMENT, MAX_EXPERIMENT_NAME)


def time_ms(text: str | None) -> int | None:
    """A run-log time as epoch milliseconds; naive times are read as UTC, as the index does.

    >>> time_ms("2024-01-09 05:44:42.841295")
    1704779082841
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


class MetricPoint(NamedTuple):
    key: str
    value: float
    timestamp: int
    step: int


class Mapper:
    """Names runlog values for MLflow, one run at a time, first come first served.

    >>> m = Mapper()
    >>> m.metric_name("train", "loss"), m.metric_name("eval", "loss"), m.metric_name("train", "loss")
    ('loss', 'eval/loss', 'loss')
    >>> m.param("train", "note", 0, "hi")
    ('note_0', 'hi')
    """

    def __init__(self) -> None:
        self._names: dict[str, dict[str, tuple]] = {"metric": {}, "param": {}}
        self._by_owner: dict[tuple, str] = {}
        self.renamed: list[dict[str, Any]] = []
        self.truncated: list[dict[str, Any]] = []

    def _claim(self, kind: str, owner: tuple, candidates: Sequence[str]) -> str:
        known = self._by_owner.get((kind, owner))
        if known is not None:
            return known
        taken = self._names[kind]
        # Numbered options made only when needed: building all 998 for every new name
        # was most of the client's time on runs with many tracked non-numeric values.
        options = itertools.chain(candidates, (f"{candidates[-1]}-{n}" for n in range(2, 1000)))
        for wanted in options:
            name = mlflow_key(wanted)
            if name not in taken:
                break
        taken[name] = owner
        self._by_owner[(kind, owner)] = name
        if name not in candidates:
            note = {"kind": kind, "mlflow": name, "step_name": owner[0], "key": owner[1]}
            if kind == "param" and owner[2] is not None:
                note["step"] = owner[2]
            self.renamed.append(note)
        return name

    def metric_name(self, step_name: str, key: str, name: str | None = None) -> str:
        """The run-level ``name`` the index gave the key (the export passes it), else ``key``
        for the first step that tracks it and ``<step_name>/<key>`` for the others (the live
        tracker, which sees steps as they come)."""
        candidates = [name] if name else [key, f"{step_name}/{key}"] if step_name else [key]
        return self._claim("metric", (step_name, key), candidates)

    def param(self, step_name: str, key: str, step: int | None, text: str,
              name: str | None = None) -> tuple[str, str]:
        """``(name, value)`` of a param: ``<name>_<step>`` for tracked values (``<key>`` for a
        run-level parameter, ``step=None``); values over 6000 characters are cut and noted.
        ``name`` is the run-level name, as in :meth:`metric_name`."""
        base = (name or key) if step is None else f"{name or key}_{step}"
        candidates = [base] if name else [base, f"{step_name}/{base}"] if step_name else [base]
        name = self._claim("param", (step_name, key, step), candidates)
        if len(text) > MAX_PARAM_VALUE:
            self.truncated.append({"param": name, "length": len(text), "kept": MAX_PARAM_VALUE})
            text = text[:MAX_PARAM_VALUE]
        return name, text

    def note_tags(self) -> dict[str, str]:
        """``runlog.renamed`` / ``runlog.truncated`` tags (JSON lists, split into
        ``.2``, ``.3``... tags when longer than a tag value may be)."""
        tags: dict[str, str] = {}
        for name, items in (("runlog.renamed", self.renamed), ("runlog.truncated", self.truncated)):
            for number, chunk in enumerate(_json_chunks(items), start=1):
                tags[name if number == 1 else f"{name}.{number}"] = chunk
        return tags


def _json_chunks(items: list[dict[str, Any]]) -> Iterable[str]:
    chunk: list[str] = []
    size = 2
    for item in items:
        text = json.dumps(item, ensure_ascii=False)
        if len(text) + 2 > MAX_TAG_VALUE:
            text = json.dumps({**item, "key": str(item.get("key"))[:1000] + "..."}, ensure_ascii=False)
        if chunk and size + len(text) + 1 > MAX_TAG_VALUE:
            yield "[" + ",".join(chunk) + "]"
            chunk, size = [], 2
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield "[" + ",".join(chunk) + "]"
