"""Export runs from the SQLite index to MLflow; the runlog -> MLflow mapping rules live here.

What ``runlog query`` shows is what is exported: every value comes from the index.
The live tracker (:mod:`runlog.mlflow_tracker`) names things with the same :class:`Mapper`.

>>> plan = plan_run("runlog.db", "blazing-colden-0544")           # doctest: +SKIP
>>> report = export_runs("runlog.db", ["blazing-colden-0544"],
...                      tracking_uri="http://127.0.0.1:5000")    # doctest: +SKIP
>>> report.exported, report.skipped, report.failed                # doctest: +SKIP
(1, 0, 0)

Mapping rules, in short (docs/mlflow.md has the full table):

- experiment = the run's tag (``Default`` when empty); MLflow run name = run_id.
- int/float values -> metrics at their step; str, bool and JSON values -> params
  ``<key>_<step>``; run-level parameters -> params under their own names.
- A name is first-come: the first pipeline step (in run order) that uses a name gets
  it; another step with the same key gets ``<step_name>/<key>``.
- Characters MLflow refuses become ``_``; names over 250 characters are cut to 241
  and end in ``-`` + 8 hex digits of a hash of the full name; such names are listed in
  the ``runlog.renamed`` tag. Param values over 6000 characters are cut, and listed
  in the ``runlog.truncated`` tag.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import os
import posixpath
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from ..errors import RunlogError
from .client import (
    TAG_COMPLETE,
    TAG_RUN_ID,
    Experiments,
    ExportError,
    check_server,
    configure_http,
    describe,
    existing_runs,
    is_unreachable,
    pick_existing,
    require_mlflow,
    send,
)

DEFAULT_EXPERIMENT = "Default"
TAG_DIGEST = "runlog.export_digest"
STATUS = {"SUCCESS": "FINISHED", "FAIL": "FAILED"}  # anything else (PROCESSING, CREATED): KILLED

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_NAME = 500

# MLflow's allowed name characters, less ':' (refused by MLflow servers on Windows).
_REFUSED = re.compile(r"[^/\w.\- ]")


# -- naming rules --------------------------------------------------------------


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

    def metric_name(self, step_name: str, key: str) -> str:
        """``key`` for the first step that tracks it, ``<step_name>/<key>`` for the others."""
        candidates = [key, f"{step_name}/{key}"] if step_name else [key]
        return self._claim("metric", (step_name, key), candidates)

    def param(self, step_name: str, key: str, step: int | None, text: str) -> tuple[str, str]:
        """``(name, value)`` of a param: ``<key>_<step>`` for tracked values (``<key>`` for a
        run-level parameter, ``step=None``); values over 6000 characters are cut and noted."""
        base = key if step is None else f"{key}_{step}"
        candidates = [base, f"{step_name}/{base}"] if step_name else [base]
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


# -- plans: what one run becomes in MLflow ---------------------------------------


@dataclasses.dataclass
class RunPlan:
    """Everything one runlog run becomes in MLflow (computed from the index, offline)."""

    run_id: str
    experiment: str
    status: str  # MLflow status
    start_time_ms: int | None
    end_time_ms: int | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[MetricPoint]
    renamed: int = 0
    truncated: int = 0

    @property
    def digest(self) -> str:
        """A hash of the whole plan: an exported run whose digest matches is skipped."""
        body = json.dumps(
            [self.experiment, self.status, self.start_time_ms, self.end_time_ms, sorted(self.tags.items()),
             sorted(self.params.items()), [list(m) for m in self.metrics]],
            allow_nan=True, default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "experiment": self.experiment, "status": self.status,
            "metric_points": len(self.metrics), "metrics": len({m.key for m in self.metrics}),
            "params": len(self.params), "tags": len(self.tags), "renamed": self.renamed, "truncated": self.truncated,
        }


def connect_index(db_path: str | os.PathLike) -> sqlite3.Connection:
    """A read-only connection to the index; a missing file is :class:`~runlog.errors.NoIndex`."""
    from ..index.db import open_db

    conn = open_db(db_path, readonly=True).conn  # a missing index is NoIndex (a usage error)
    conn.row_factory = sqlite3.Row
    return conn


def select_runs(
    conn: sqlite3.Connection, run_ids: Sequence[str] = (), tag: str | None = None, status: str | None = None
) -> tuple[list[str], list[str]]:
    """``(found, missing)``: the named runs (or all runs when none are named) that match
    ``tag``/``status``, in start-time order, and the named runs not in the index."""
    where, args = [], []
    if tag is not None:
        where.append("coalesce(tag, '') = ?")
        args.append(tag)
    if status is not None:
        where.append("upper(status) = ?")
        args.append(status.upper())
    sql = "SELECT run_id FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY coalesce(start_time, ''), run_id"
    matching = [row[0] for row in conn.execute(sql, args)]
    if not run_ids:
        return matching, []
    wanted = list(dict.fromkeys(run_ids))
    known = {row[0] for row in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({','.join('?' * len(wanted))})", wanted)}
    chosen = set(wanted)
    return [r for r in matching if r in chosen], [r for r in wanted if r not in known]


def plan_run(conn: sqlite3.Connection | str | os.PathLike, run_id: str, experiment: str | None = None) -> RunPlan:
    """What run ``run_id`` of the index becomes in MLflow.

    >>> plan_run("runlog.db", "blazing-colden-0544").params   # doctest: +SKIP
    {'spam_0': 'hello', 'eggs.ham_0': 'world'}
    """
    if not isinstance(conn, sqlite3.Connection):
        conn = connect_index(conn)
    run = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if run is None:
        raise RunlogError(f"run {run_id} is not in the index: ingest it first (runlog ingest)")
    keys = run.keys()
    start_ms, end_ms = time_ms(run["start_time"]), time_ms(run["end_time"])
    mapper = Mapper()
    params: dict[str, str] = {}
    for row in conn.execute(
        "SELECT key, value_text FROM params WHERE run_id = ? AND direction = 'run' ORDER BY key", (run_id,)
    ):
        name, text = mapper.param("", row["key"], None, _run_param_text(row["value_text"]))
        params[name] = text
    metrics: list[MetricPoint] = []
    fallback_ts = end_ms if end_ms is not None else (start_ms or 0)
    for row in conn.execute(
        """SELECT m.step_name, m.key, m.step, m.value, m.value_text, m.kind, m.timestamp_ms
           FROM metrics m LEFT JOIN steps s ON s.run_id = m.run_id AND s.step_name = m.step_name
           WHERE m.run_id = ? ORDER BY coalesce(s.position, 1000000000), m.step_name, m.key, m.step""",
        (run_id,),
    ):
        step = int(row["step"] or 0)
        if row["kind"] == "numeric":
            value = row["value"] if row["value"] is not None else float("nan")
            timestamp = row["timestamp_ms"] if row["timestamp_ms"] is not None else fallback_ts
            metrics.append(MetricPoint(mapper.metric_name(row["step_name"], row["key"]), float(value), int(timestamp), step))
        else:
            name, text = mapper.param(row["step_name"], row["key"], step, row["value_text"] or "")
            params[name] = text
    tags = {
        TAG_RUN_ID: run_id,
        "runlog.tag": run["tag"] or "",
        "runlog.status": run["status"] or "",
        "runlog.dag_hash": run["dag_hash"] or "",
    }
    for column in ("original_run_id", "format", "layout"):
        if column in keys and run[column]:
            tags[f"runlog.{column}"] = str(run[column])
    tags.update(_code_tags(conn, run_id))
    tags.update(mapper.note_tags())
    tags = {key: shorten(value, MAX_TAG_VALUE) for key, value in tags.items()}
    return RunPlan(
        run_id=run_id,
        experiment=experiment_name(run["tag"], experiment),
        status=mlflow_status(run["status"]),
        start_time_ms=start_ms if start_ms is not None else (min((m.timestamp for m in metrics), default=None)),
        end_time_ms=end_ms if end_ms is not None else start_ms,
        tags=tags,
        params=params,
        metrics=metrics,
        renamed=len(mapper.renamed),
        truncated=len(mapper.truncated),
    )


def _run_param_text(json_text: str | None) -> str:
    """Run-level parameters are stored as JSON text: a string shows bare, the rest as JSON."""
    if json_text is None:
        return "null"
    try:
        value = json.loads(json_text)
    except ValueError:
        return json_text
    return value if isinstance(value, str) else json_text


def _code_tags(conn: sqlite3.Connection, run_id: str) -> dict[str, str]:
    """``mlflow.source.git.commit`` (and repoURL) from the first step with a git identity."""
    row = conn.execute(
        """SELECT c.code_identifier, c.code_identifier_url FROM code_identities c
           LEFT JOIN steps s ON s.run_id = c.run_id AND s.step_name = c.step_name
           WHERE c.run_id = ? AND lower(coalesce(c.code_identifier_type, '')) = 'git'
             AND coalesce(c.code_identifier, '') != ''
           ORDER BY coalesce(s.position, 1000000000), c.attempt_number DESC LIMIT 1""",
        (run_id,),
    ).fetchone()
    if row is None:
        return {}
    tags = {"mlflow.source.git.commit": row[0]}
    if row[1]:
        tags["mlflow.source.git.repoURL"] = row[1]
    return tags


def json_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False


# -- the export ---------------------------------------------------------------------


@dataclasses.dataclass
class RunOutcome:
    """What happened to one run: exported (new), resumed (completed or updated an
    earlier export), skipped (already in MLflow), failed."""

    run_id: str
    outcome: str
    experiment: str = ""
    mlflow_run_id: str = ""
    metric_points: int = 0
    params: int = 0
    error: str = ""


@dataclasses.dataclass
class ExportReport:
    outcomes: list[RunOutcome] = dataclasses.field(default_factory=list)
    plans: list[RunPlan] = dataclasses.field(default_factory=list)  # dry run

    def count(self, *kinds: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome in kinds)

    @property
    def exported(self) -> int:
        return self.count("exported", "resumed")

    @property
    def resumed(self) -> int:
        return self.count("resumed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(o.run_id, o.error) for o in self.outcomes if o.outcome == "failed"]

    def summary(self) -> str:
        points = sum(o.metric_points for o in self.outcomes)
        params = sum(o.params for o in self.outcomes)
        resumed = f" ({self.resumed} resumed)" if self.resumed else ""
        return (
            f"{_n(self.exported, 'run')} exported{resumed}, {self.skipped} skipped as already in MLflow, "
            f"{self.failed} failed; {_n(points, 'metric point')} and {_n(params, 'param')} sent"
        )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def export_runs(
    db_path: str | os.PathLike,
    run_ids: Sequence[str] = (),
    *,
    tracking_uri: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    experiment: str | None = None,
    workers: int = 4,
    dry_run: bool = False,
    progress: Callable[[int, int, RunOutcome], None] | None = None,
) -> ExportReport:
    """Export runs of the index to MLflow: the named runs, or all runs matching
    ``tag``/``status`` when none are named. Idempotent and resumable (see module doc).
    ``progress(done, total, outcome)`` is called as each run finishes.

    >>> export_runs("runlog.db", tag="nightly", tracking_uri="http://127.0.0.1:5000").summary()  # doctest: +SKIP
    '3 runs exported, 0 skipped as already in MLflow, 0 failed; 120 metric points and 9 params sent'
    """
    conn = connect_index(db_path)
    found, missing = select_runs(conn, run_ids, tag, status)
    report = ExportReport([RunOutcome(r, "failed", error=f"run {r} is not in the index {db_path}") for r in missing])
    if dry_run:
        report.plans = [plan_run(conn, r, experiment) for r in found]
        return report
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise ExportError("no MLflow tracking URI: pass --tracking-uri or set $MLFLOW_TRACKING_URI")
    require_mlflow(tracking_uri)
    configure_http()
    check_server(tracking_uri)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exporter = _Exporter(client, db_path, tracking_uri, experiment)
    total = len(report.outcomes) + len(found)
    for done, outcome in enumerate(report.outcomes, start=1):
        if progress:
            progress(done, total, outcome)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [pool.submit(exporter.export_one, r) for r in found]
        for future in concurrent.futures.as_completed(futures):
            report.outcomes.append(future.result())
            if progress:
                progress(len(report.outcomes), total, report.outcomes[-1])
    finally:  # on Ctrl-C, do not start the queued runs; the next export completes them
        pool.shutdown(wait=False, cancel_futures=True)
    order = {r: i for i, r in enumerate(list(missing) + found)}
    report.outcomes.sort(key=lambda o: order.get(o.run_id, 0))
    return report


class _Exporter:
    """Exports one run at a time, from any thread; stops early once the server is gone."""

    def __init__(self, client, db_path, tracking_uri: str, experiment: str | None):
        self.client = client
        self.db_path = db_path
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.experiments = Experiments(client)
        self._existing: dict[str, dict[str, list[Any]]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.server_gone = ""

    def conn(self) -> sqlite3.Connection:
        if not hasattr(self._local, "conn"):
            self._local.conn = connect_index(self.db_path)
        return self._local.conn

    def existing(self, experiment_id: str, run_id: str) -> Any | None:
        with self._lock:
            if experiment_id not in self._existing:
                self._existing[experiment_id] = existing_runs(self.client, experiment_id)
            return pick_existing(self._existing[experiment_id].get(run_id, []))

    def export_one(self, run_id: str) -> RunOutcome:
        if self.server_gone:
            return RunOutcome(run_id, "failed", error=f"run {run_id}: not attempted: {self.server_gone}")
        try:
            plan = plan_run(self.conn(), run_id, self.experiment)
            return self._send(plan)
        except Exception as exc:  # one run's failure must not stop the others
            message = exc.args[0] if isinstance(exc, RunlogError) else describe(exc, self.tracking_uri)
            if is_unreachable(exc):
                self.server_gone = message
            return RunOutcome(run_id, "failed", error=f"run {run_id}: {message}")

    def _send(self, plan: RunPlan) -> RunOutcome:
        client = self.client
        experiment_id = self.experiments.id_for(plan.experiment)
        run = self.existing(experiment_id, plan.run_id)
        tags_done = run.data.tags if run else {}
        if tags_done.get(TAG_COMPLETE) == "true" and tags_done.get(TAG_DIGEST) == plan.digest:
            return RunOutcome(plan.run_id, "skipped", plan.experiment, run.info.run_id)
        if run is None:
            run = client.create_run(
                experiment_id, start_time=plan.start_time_ms, tags={TAG_RUN_ID: plan.run_id}, run_name=plan.run_id
            )
            outcome, params, metrics = "exported", plan.params, plan.metrics
        else:
            outcome = "resumed"
            params, metrics = self._missing(run, plan)
        mlflow_run_id = run.info.run_id
        send(client, mlflow_run_id, params, plan.tags, metrics)
        client.set_terminated(mlflow_run_id, plan.status, end_time=plan.end_time_ms)
        # Set last: an export killed before this line is completed by the next one.
        send(client, mlflow_run_id, {}, {TAG_DIGEST: plan.digest, TAG_COMPLETE: "true"}, [])
        return RunOutcome(plan.run_id, outcome, plan.experiment, mlflow_run_id, len(metrics), len(params))

    def _missing(self, run, plan: RunPlan) -> tuple[dict[str, str], list[MetricPoint]]:
        """What an earlier, interrupted export (or the live tracker) did not log.
        Metric points are matched by key and step; a param already there must agree."""
        have = run.data.params
        for name, text in plan.params.items():
            if name in have and not json_equal(have[name], text):
                raise RunlogError(
                    f"param {name} is {have[name][:60]!r} in MLflow run {run.info.run_id} but "
                    f"{text[:60]!r} in runlog; MLflow cannot change a param: delete that MLflow run and export again"
                )
        params = {k: v for k, v in plan.params.items() if k not in have}
        wanted = {m.key for m in plan.metrics}
        done = {
            (point.key, point.step)
            for key in run.data.metrics
            if key in wanted
            for point in self.client.get_metric_history(run.info.run_id, key)
        }
        return params, [m for m in plan.metrics if (m.key, m.step) not in done]
