"""Talking to an MLflow tracking server: limits, retries, errors, finding runs, batching.

Shared by ``runlog export mlflow`` (:mod:`runlog.mlflow_export`) and the live tracker
(:mod:`runlog.mlflow_tracker`). mlflow is imported only inside the functions that call it.

>>> [len(m) for _, _, m in batches({}, {}, list(range(2500)))]
[1000, 1000, 500]
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import MissingExtra, RunlogError

TAG_RUN_ID = "runlog.run_id"
TAG_COMPLETE = "runlog.export_complete"
TAG_DIGEST = "runlog.export_digest"
TAG_BRANCH = "runlog.branch"  # a branch's child run (--branches child-runs)
TAG_PARENT = "mlflow.parentRunId"
# MLflow 3 opens an experiment in the runs table (not the GenAI view) with this tag.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
SEARCH_PAGE = 1000  # runs per search_runs page
SEARCH_EXPERIMENTS = 100  # experiment ids per search_runs request
BATCH_ENTITIES = 1000  # metrics + params + tags in one log_batch
BATCH_PARAMS = 100  # and at most 100 params, 100 tags
BATCH_BYTES = 900_000  # MLflow refuses a log_batch request over 1 MB
METRIC_BYTES = 120  # a generous size of one metric point in the request
_REMOTE_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc")
# Bounded retries unless the user set MLflow's own variables.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


class ExportError(RunlogError):
    """The export as a whole cannot go on (server unreachable, no index, bad URI)."""


def require_mlflow(tracking_uri: str | None) -> None:
    """Import check: the ``mlflow`` extra for any URI, full ``mlflow`` (not just
    mlflow-skinny) for a local ``sqlite:``/file/database tracking URI."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise MissingExtra("mlflow", "mlflow-skinny")
    uri = tracking_uri or ""
    if ":" in uri and uri.split(":", 1)[0].lower() in _REMOTE_SCHEMES:
        return
    if not all(importlib.util.find_spec(name) for name in ("sqlalchemy", "alembic", "flask")):
        raise ExportError(
            f"tracking URI {redact_uri(tracking_uri) or '(default, local)'} needs the full mlflow package "
            "(only mlflow-skinny is installed, which talks to http(s) servers): pip install mlflow"
        )


def configure_http() -> None:
    """Bounded retries and no run-URL printing, unless the user set MLflow's variables."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def is_unreachable(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        marker in text
        for marker in ("Max retries exceeded", "Connection refused", "Failed to establish", "ConnectionError",
                       "Connection aborted", "RemoteDisconnected", "timed out")
    )


def redact_uri(uri: str | None) -> str:
    """``uri`` without the user and password it may carry, for messages.

    >>> redact_uri("https://me:s3cret@mlflow.example.com:5000/x"), redact_uri("http://127.0.0.1:5000")
    ('https://***@mlflow.example.com:5000/x', 'http://127.0.0.1:5000')
    """
    import urllib.parse

    if not uri:
        return uri or ""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return "(a tracking URI that cannot be parsed)"
    if "@" not in parts.netloc:
        return uri
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _without_userinfo(uri: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


def describe(exc: BaseException, tracking_uri: str | None = None) -> str:
    """One line for an MLflow failure: unreachable server, or MLflow's own message."""
    if is_unreachable(exc):
        server = f"MLflow tracking server {redact_uri(tracking_uri)}" if tracking_uri else "MLflow tracking server"
        return f"{server} unreachable (connection failed after retries)"
    code = getattr(exc, "error_code", None)
    text = getattr(exc, "message", None) or str(exc)
    line = re.sub(r"//[^/\s@]+@", "//***@", " ".join(str(text).split()))  # no user:password@ of a URL
    if code and line.startswith(f"{code}: "):
        line = line[len(code) + 2 :]
    if len(line) > 300:
        line = line[:297] + "..."
    return f"MLflow refused the request ({code}): {line}" if code else line


def check_server(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when an http(s) tracking server does not answer."""
    import urllib.error
    import urllib.request

    if not tracking_uri.lower().startswith(("http://", "https://")):
        return
    try:  # urllib takes user:password@ for part of the host name: leave it out of /health
        url = _without_userinfo(tracking_uri).rstrip("/") + "/health"
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered; a proxy or auth may guard /health, the API calls will tell
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ExportError(f"cannot reach MLflow tracking server {redact_uri(tracking_uri)}: {reason}") from None


class Experiments:
    """Experiment ids by name, created on first use; safe to share between threads."""

    def __init__(self, client):
        self.client = client
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def id_for(self, name: str, create: bool = True) -> str | None:
        with self._lock:
            if name not in self._ids:
                found = self.client.get_experiment_by_name(name)
                if found is None and not create:
                    return None
                if found is None:
                    try:  # an experiment that exists is left as it is
                        self.client.create_experiment(name, tags=EXPERIMENT_KIND)
                    except Exception as exc:  # another exporter created it meanwhile
                        if "RESOURCE_ALREADY_EXISTS" not in str(getattr(exc, "error_code", "")):
                            raise
                    found = self.client.get_experiment_by_name(name)
                if found.lifecycle_stage != "active":
                    raise RunlogError(
                        f"MLflow experiment {name!r} is deleted: restore it (mlflow experiments restore) "
                        "or choose another with --experiment"
                    )
                self._ids[name] = found.experiment_id
            return self._ids[name]


class ServerRuns:
    """The MLflow runs that carry ``runlog.run_id``, by that id, in every active
    experiment of the server (or in ``experiment_ids``): one paged ``search_runs`` per
    100 experiments, whatever the number of runs.

    >>> ServerRuns(MlflowClient("http://127.0.0.1:5000")).find("blazing-colden-0544")   # doctest: +SKIP
    (<Run: ...>, {})
    """

    def __init__(self, client, experiment_ids: Sequence[str] | None = None):
        self.names: dict[str, str] = {}
        if experiment_ids is None:
            token = None
            while True:
                page = client.search_experiments(max_results=SEARCH_PAGE, page_token=token)
                self.names.update((e.experiment_id, e.name) for e in page)
                token = page.token
                if not token:
                    break
        ids = list(experiment_ids) if experiment_ids is not None else list(self.names)
        self.runs: dict[str, list[Any]] = {}
        for start in range(0, len(ids), SEARCH_EXPERIMENTS):
            for run_id, runs in existing_runs(client, ids[start:start + SEARCH_EXPERIMENTS]).items():
                self.runs.setdefault(run_id, []).extend(runs)

    def find(self, run_id: str, experiment_id: str | None = None) -> tuple[Any | None, dict[str, Any]]:
        """``(run, {branch: child run})`` of runlog run ``run_id``: the one in
        ``experiment_id`` if there is one there, else the one found elsewhere (of copies
        made with ``--copy``, the first: see :func:`pick_existing`)."""
        parents = self._parents(run_id)
        here = [r for r in parents if r.info.experiment_id == experiment_id]
        parent = pick_existing(here or parents)
        return (None, {}) if parent is None else (parent, self._children(run_id, parent))

    def copies(self, run_id: str) -> list[tuple[Any, dict[str, Any]]]:
        """Every MLflow copy of runlog run ``run_id`` (one unless ``--copy`` made more),
        each as ``(run, {branch: child run})``, the one :meth:`find` picks first."""
        parents = sorted(self._parents(run_id), key=_preference)
        return [(parent, self._children(run_id, parent)) for parent in parents]

    def _parents(self, run_id: str) -> list[Any]:
        return [r for r in self.runs.get(run_id, []) if not is_child(r)]

    def _children(self, run_id: str, parent: Any) -> dict[str, Any]:
        children: dict[str, list[Any]] = {}
        for run in self.runs.get(run_id, []):
            if is_child(run) and run.data.tags.get(TAG_PARENT) == parent.info.run_id:
                children.setdefault(run.data.tags[TAG_BRANCH], []).append(run)
        return {branch: pick_existing(runs) for branch, runs in children.items()}

    def experiment_name(self, experiment_id: str) -> str:
        return self.names.get(experiment_id, experiment_id)


def is_child(run: Any) -> bool:
    """Whether an MLflow run is a branch's child run (``--branches child-runs``)."""
    return bool(run.data.tags.get(TAG_BRANCH))


def pick_existing(runs: Sequence[Any]) -> Any | None:
    """Of several MLflow runs carrying one runlog.run_id, the complete one, else the
    oldest; of equals (copies have the run's own start time), the one in the experiment
    created first, so every export and verify picks the same one."""
    return min(runs, key=_preference) if runs else None


def _preference(run: Any) -> tuple:
    experiment = run.info.experiment_id
    return (run.data.tags.get(TAG_COMPLETE) != "true", run.info.start_time or 0,
            (0, int(experiment), "") if experiment.isdigit() else (1, 0, experiment), run.info.run_id)


def existing_runs(client, experiment_ids: str | Sequence[str]) -> dict[str, list[Any]]:
    """MLflow runs of the experiment(s) that carry ``runlog.run_id``, by that id."""
    found: dict[str, list[Any]] = {}
    token = None
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
    while ids:
        page = client.search_runs(
            ids, filter_string=f"tags.`{TAG_RUN_ID}` != ''", max_results=SEARCH_PAGE, page_token=token
        )
        for run in page:
            found.setdefault(run.data.tags.get(TAG_RUN_ID), []).append(run)
        token = page.token
        if not token:
            break
    return found


def find_run(client, experiment_id: str, run_id: str) -> Any | None:
    """The MLflow run carrying ``runlog.run_id = run_id`` in one experiment, if any."""
    if "'" not in run_id:
        quoted = f"'{run_id}'"
    elif '"' not in run_id:
        quoted = f'"{run_id}"'
    else:  # both quote kinds: no filter literal can hold it, list them all
        runs = existing_runs(client, experiment_id).get(run_id, [])
        return pick_existing([r for r in runs if not is_child(r)])
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_RUN_ID}` = {quoted}", max_results=50)
    return pick_existing([r for r in runs if r.data.tags.get(TAG_RUN_ID) == run_id and not is_child(r)])


def batches(params: dict[str, str], tags: dict[str, str], metrics: Sequence[Any]) -> Iterable[tuple[list, list, list]]:
    """Split into ``log_batch`` calls within MLflow's limits: 1000 entities, 100 params,
    100 tags, under 1 MB; each batch is filled as far as the limits allow."""
    param_items, tag_items = list(params.items()), list(tags.items())
    p = t = m = 0
    while p < len(param_items) or t < len(tag_items) or m < len(metrics):
        size = 0
        out_p: list = []
        out_t: list = []
        for items, index, out in ((param_items, p, out_p), (tag_items, t, out_t)):
            while index + len(out) < len(items) and len(out) < BATCH_PARAMS:
                cost = _cost(*items[index + len(out)])
                if out and size + cost > BATCH_BYTES:
                    break
                size += cost
                out.append(items[index + len(out)])
        p, t = p + len(out_p), t + len(out_t)
        room = min(BATCH_ENTITIES - len(out_p) - len(out_t), max(0, (BATCH_BYTES - size) // METRIC_BYTES))
        out_m = list(metrics[m : m + room])
        m += len(out_m)
        yield out_p, out_t, out_m


def _cost(key: str, value: str) -> int:
    return len(json.dumps(key)) + len(json.dumps(value)) + 32


def send(client, mlflow_run_id: str, params: dict[str, str], tags: dict[str, str], metrics: Sequence[Any]) -> None:
    """Log params, tags and metric points to one MLflow run in full batches."""
    from mlflow.entities import Metric, Param, RunTag

    for out_p, out_t, out_m in batches(params, tags, metrics):
        client.log_batch(
            mlflow_run_id,
            metrics=[Metric(p.key, p.value, p.timestamp, p.step) for p in out_m],
            params=[Param(k, v) for k, v in out_p],
            tags=[RunTag(k, v) for k, v in out_t],
            synchronous=True,
        )


def histories(client, mlflow_run_id: str, keys: Iterable[str]) -> dict[str, list[Any]]:
    """The metric history of each of ``keys`` in one MLflow run."""
    return {key: client.get_metric_history(mlflow_run_id, key) for key in keys}
