"""Recording runs: steps, attempts, branches, parameters, code identity, catalog.

>>> from runlog import Run, track_this
>>> with Run.start(tag="demo", store="/tmp/store") as run:        # doctest: +SKIP
...     with run.step("train") as step:
...         for epoch in range(3):
...             track_this(step=epoch, loss=1 / (epoch + 1))
...     with run.parallel("par") as par:
...         with par.branch("left") as left:
...             with left.step("score"):
...                 track_this(score=0.5)

Each step is written to the store when it starts (PROCESSING) and when it ends,
so a crashed run stays readable and shows as PROCESSING, as real logs do.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from ..errors import RunlogError
from ..models import BranchLog, CodeIdentity, DataCatalog, RunLog, StepAttempt, StepLog, format_time
from ..store import DEFAULT_STORE, Layout, RunLogStore, validate_name
from .shell import run_in_shell
from .tracking import TRACK_FILE_ENV, env_metrics, read_tracked, recording, select_tracker

T = TypeVar("T")

_ADJECTIVES = ("amber", "brisk", "calm", "daring", "eager", "fuzzy", "gentle", "hasty", "jolly", "keen", "lucid", "mellow")
_NAMES = ("turing", "hopper", "lovelace", "knuth", "ritchie", "liskov", "hamilton", "codd", "dijkstra", "backus")


def generate_run_id() -> str:
    """A readable, unique-enough run id like runnable's: ``brisk-hopper-0544``."""
    now = datetime.now()
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NAMES)}-{now:%H%M}{random.randint(0, 99):02d}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def code_identity(cwd: str | os.PathLike | None = None) -> list[CodeIdentity]:
    """The git commit, remote and cleanliness of the work tree (empty outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return []
    status = git("status", "--porcelain", "--untracked-files=no")
    url = git("remote", "get-url", "origin") or ""
    return [
        CodeIdentity(
            code_identifier=commit,
            code_identifier_type="git",
            code_identifier_dependable=status == "",
            code_identifier_url=url,
            code_identifier_message="" if status == "" else "changes not committed: " + " ".join(status.split()[:20]),
        )
    ]


class Scope:
    """Where steps are added: the run's root, or a branch of a composite step."""

    def __init__(self, run: Run, prefix: str):
        self.run = run
        self.prefix = prefix

    def internal(self, name: str) -> str:
        validate_name(name, "step name")
        if "." in name:
            raise RunlogError(f"step name {name!r}: dots separate branches in internal names; use another character")
        return f"{self.prefix}.{name}" if self.prefix else name

    def step(self, name: str, parameters: Mapping[str, Any] | None = None, step_type: str = "task") -> StepRecorder:
        """A context manager recording one attempt of a task step; entering it again for
        the same name records a retry (the next attempt)."""
        return StepRecorder(self.run, self.internal(name), name, step_type, dict(parameters or {}))

    def task(self, name: str, func: Callable[..., T], *args: Any, parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> T:
        """Call ``func(*args, **kwargs)`` as step ``name``, as runnable's python tasks do:
        what it prints is shown and kept in the catalog as ``<name>.execution.log``."""
        with self.step(name, parameters) as step:
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)), contextlib.redirect_stderr(_Tee(sys.stderr, buffer)):
                    return func(*args, **kwargs)
            finally:
                step.add_catalog(f"{name.replace(' ', '_')}.execution.log", buffer.getvalue().encode())

    def parallel(self, name: str) -> CompositeRecorder:
        """A parallel step; add branches with ``.branch(name)``."""
        return CompositeRecorder(self.run, self.internal(name), name, "parallel")

    def map(self, name: str) -> CompositeRecorder:
        """A map step; add one branch per iterated value with ``.branch(str(value))``."""
        return CompositeRecorder(self.run, self.internal(name), name, "map")

    def retry(self, name: str, func: Callable[[], T], attempts: int = 3, parameters: Mapping[str, Any] | None = None) -> T:
        """Call ``func`` as step ``name`` up to ``attempts`` times; each try is an attempt."""
        for number in range(1, attempts + 1):
            try:
                with self.step(name, parameters):
                    return func()
            except Exception:
                if number == attempts:
                    raise
        raise AssertionError("unreachable")


class Run(Scope):
    """A run being recorded into a store. Use :meth:`start` for a new run and
    :meth:`attach` to add steps to an existing run (another process, a retry)."""

    def __init__(self, store: RunLogStore, run_log: RunLog, catalog: Path, owner: bool):
        super().__init__(self, "")
        self.store = store
        self.run_log = run_log
        self.run_id = run_log.run_id
        self.catalog = catalog
        self._owner = owner
        self._lock = threading.Lock()
        self._failed = False
        self._identities: list[CodeIdentity] | None = None
        self._recording = contextlib.ExitStack()
        self.tracker = select_tracker()  # this run's own, from $RUNLOG_EXPERIMENT_TRACKER

    @classmethod
    def start(
        cls,
        run_id: str | None = None,
        tag: str = "",
        store: str | os.PathLike | RunLogStore = DEFAULT_STORE,
        layout: Layout = "file-system",
        parameters: Mapping[str, Any] | None = None,
        dag_hash: str = "",
        catalog: str | os.PathLike | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> Run:
        """Create a new run (status PROCESSING) and return it; ``with`` ends it."""
        store = store if isinstance(store, RunLogStore) else RunLogStore(store, layout)
        run_id = validate_name(run_id) if run_id else generate_run_id()
        catalog_path = Path(catalog) if catalog else store.default_catalog()
        run_log = RunLog(
            run_id=run_id,
            dag_hash=dag_hash,
            tag=tag,
            status="PROCESSING",
            parameters=dict(parameters or {}),
            run_config=dict(run_config) if run_config is not None else _run_config(run_id, tag, store, catalog_path, dag_hash),
        )
        store.create_run(run_log)
        run = cls(store, run_log, catalog_path, owner=True)
        run.tracker.start_run(run_id, tag, _ms(datetime.now()))
        return run

    @classmethod
    def attach(
        cls,
        run_id: str,
        store: str | os.PathLike | RunLogStore = DEFAULT_STORE,
        create: bool = False,
        tag: str = "",
        layout: Layout = "file-system",
        catalog: str | os.PathLike | None = None,
    ) -> Run:
        """An existing run, to add steps to; with ``create=True`` it is made when missing
        (safely, even when several processes race to make it)."""
        store = store if isinstance(store, RunLogStore) else RunLogStore(store, layout)
        validate_name(run_id)
        catalog_path = Path(catalog) if catalog else store.default_catalog()
        if create and not store.exists(run_id):
            store.ensure_run(
                RunLog(
                    run_id=run_id,
                    tag=tag,
                    status="PROCESSING",
                    run_config=_run_config(run_id, tag, store, catalog_path, ""),
                )
            )
        run_log = store.get_run(run_id)
        run = cls(store, run_log, catalog_path, owner=False)
        run.tracker.start_run(run_id, run_log.tag or "")  # finds the tracker's run of this run_id
        return run

    # -- ending the run --------------------------------------------------------
    def __enter__(self) -> Run:
        # Between its steps too, this thread's get_experiment_tracker_context() is this run's.
        self._recording.enter_context(recording(self.tracker))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.finish("FAIL" if exc_type is not None or self._failed else "SUCCESS")
        finally:
            self._recording.close()

    def finish(self, status: str = "SUCCESS") -> None:
        """Close the run: add runnable's terminal ``success``/``fail`` step and set the status."""
        terminal = "success" if status == "SUCCESS" else "fail"
        with self.step(terminal, step_type=terminal):
            pass
        self.store.update_run(self.run_id, status=status)
        self.run_log.status = status
        self.tracker.end_run(status, _ms(datetime.now()))

    def mark_failed(self) -> None:
        self._failed = True

    def code_identities(self) -> list[CodeIdentity]:
        if self._identities is None:
            self._identities = code_identity()
        return [c.model_copy() for c in self._identities]


class StepRecorder:
    """One attempt of one step. Collects the ``track_this`` values of the thread (or
    task) that entered it, and the values of the child processes it runs
    (:meth:`run_command`, or any started with :meth:`child_env`): their ``track_this``
    calls and the ``RUNNABLE_TRACK_*`` variables their shell exported."""

    def __init__(self, run: Run, internal_name: str, name: str, step_type: str, parameters: dict[str, Any]):
        self.run = run
        self.internal_name = internal_name
        self.name = name
        self.step_type = step_type
        self.parameters = parameters
        self.series: dict[str, dict[int, Any]] = {}
        self.catalog: list[DataCatalog] = []
        self.status = "SUCCESS"
        self.message = ""
        self._previous: StepLog | None = None
        self._stack = contextlib.ExitStack()

    # MetricSink
    def record(self, key: str, step: int, value: Any) -> None:
        self.series.setdefault(key, {})[step] = value
        self.run.tracker.log(key, value, step, _ms(datetime.now()), step_name=self.internal_name)

    def log_params(self, **params: Any) -> None:
        """Add parameters to this attempt's ``parameters``."""
        self.parameters.update(params)

    def add_catalog(self, name: str, source: str | os.PathLike | bytes, stage: str = "put") -> DataCatalog:
        """Copy a file (or bytes) into the catalog under ``<run_id>/<name>`` and record its sha256."""
        validate_name(name, "catalog name")
        folder = self.run.catalog / self.run.run_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        entry = DataCatalog(
            name=name,
            data_hash=sha256_file(target),
            catalog_relative_path=f"{self.run.run_id}/{name}",
            catalog_handler_location=str(self.run.catalog),
            stage=stage,
        )
        self.catalog.append(entry)
        return entry

    # context manager
    def __enter__(self) -> StepRecorder:
        self.start = datetime.now()
        self._previous = self._read_previous()
        fd, self.track_file = tempfile.mkstemp(prefix="runlog-track-", suffix=".jsonl")
        os.close(fd)
        self._stack.enter_context(recording(self.run.tracker, self))
        self._write(status="PROCESSING", end=None)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._stack.close()
        for key, step, value in read_tracked(self.track_file):
            self.record(key, step, value)
        with contextlib.suppress(OSError):
            os.unlink(self.track_file)
        if exc_type is not None:
            self.fail(f"{exc_type.__name__}: {exc}")
        self._write(status=self.status, end=datetime.now())
        return False

    def fail(self, message: str) -> None:
        """Mark this attempt failed (an exception in the block does this too)."""
        self.status = "FAIL"
        self.message = message
        self.run.mark_failed()

    def _read_previous(self) -> StepLog | None:
        with contextlib.suppress(RunlogError):
            return self.run.store.get_run(self.run.run_id).find_step(self.internal_name)
        return None

    def metrics(self) -> dict[str, Any]:
        """The seed's shape: a bare value when only step 0 was tracked, else ``{"<step>": v}``."""
        shaped: dict[str, Any] = dict(self._previous.user_defined_metrics) if self._previous else {}
        for key, points in self.series.items():
            if set(points) == {0}:
                shaped[key] = points[0]
            else:
                shaped[key] = {str(step): points[step] for step in sorted(points)}
        return shaped

    def _write(self, status: str, end: datetime | None) -> None:
        previous = self._previous
        attempts = [a for a in previous.attempts] if previous else []
        number = len(attempts) + 1
        attempt = StepAttempt(
            attempt_number=number,
            start_time=format_time(self.start),
            end_time=format_time(end) if end else "",
            duration=str(end - self.start) if end else "",
            status=status,
            message=self.message,
            parameters=dict(self.parameters),
        )
        step = StepLog(
            name=self.name,
            internal_name=self.internal_name,
            status=status,
            step_type=self.step_type,
            message=self.message,
            code_identities=self.run.code_identities(),
            attempts=attempts + [attempt],
            user_defined_metrics=self.metrics(),
            data_catalog=(list(previous.data_catalog) if previous else []) + self.catalog,
        )
        self.run.store.put_step(self.run.run_id, step)

    # running a command as this step
    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a child process of this step (``base``, default this
        process's, plus ``$RUNLOG_TRACK_FILE``): its ``track_this`` calls are recorded
        into this step.

        >>> subprocess.run(["python", "train.py"], env=step.child_env())   # doctest: +SKIP
        """
        return dict(os.environ if base is None else base, **{TRACK_FILE_ENV: self.track_file})

    def run_command(self, command: list[str], shell_capture: bool = True) -> int:
        """Run ``command`` (argv; a single argument is shell text) in a shell, tee its
        output into the catalog as ``<step>.execution.log``, record the
        ``RUNNABLE_TRACK_*`` variables it exports, and return its exit code."""
        log_name = f"{self.name.replace(' ', '_')}.execution.log"
        with tempfile.TemporaryDirectory(prefix="runlog-exec-") as scratch:
            log_path = Path(scratch) / log_name
            code, end_env, start_env = run_in_shell(command, log_path, env=self.child_env(),
                                                    capture_env=shell_capture)
            for key, step, value in env_metrics(end_env, start_env):
                self.record(key, step, value)
            self.add_catalog(log_name, log_path)
        if code != 0:
            self.fail(f"command exited with code {code}")
        return code


class CompositeRecorder:
    """A parallel or map step: its branches are recorded by ``.branch(name)``
    (possibly in other processes, through :meth:`Run.attach` and :meth:`branch_scope`)."""

    def __init__(self, run: Run, internal_name: str, name: str, step_type: str):
        self.run = run
        self.internal_name = internal_name
        self.name = name
        self.step_type = step_type
        self.failed = False

    def __enter__(self) -> CompositeRecorder:
        self._write("PROCESSING")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None or self._any_branch_failed():
            self.failed = True
            self.run.mark_failed()
        self._write("FAIL" if self.failed else "SUCCESS")
        return False

    def branch(self, name: str) -> BranchRecorder:
        validate_name(name, "branch name")
        if "." in name:
            raise RunlogError(f"branch name {name!r}: dots separate names; use another character")
        return BranchRecorder(self.run, f"{self.internal_name}.{name}")

    def _any_branch_failed(self) -> bool:
        step = self.run.store.get_run(self.run.run_id).find_step(self.internal_name)
        return bool(step) and any(b.status == "FAIL" for b in step.branches.values())

    def _write(self, status: str) -> None:
        step = StepLog(
            name=self.name,
            internal_name=self.internal_name,
            status=status,
            step_type=self.step_type,
            code_identities=self.run.code_identities(),
        )
        self.run.store.put_step(self.run.run_id, step)


class BranchRecorder(Scope):
    """One branch of a composite step; a scope for its steps. Ends with runnable's
    ``<branch>.success`` (or ``.fail``) step."""

    def __init__(self, run: Run, internal_name: str):
        super().__init__(run, internal_name)
        self.internal_name = internal_name
        self._failed_before = False

    def __enter__(self) -> BranchRecorder:
        self._failed_before = self.run._failed
        self.run._failed = False
        self.run.store.put_branch(self.run.run_id, BranchLog(internal_name=self.internal_name, status="PROCESSING"))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        failed = exc_type is not None or self.run._failed
        terminal = "fail" if failed else "success"
        with self.step(terminal, step_type=terminal):
            pass
        status = "FAIL" if failed else "SUCCESS"
        self.run.store.put_branch(self.run.run_id, BranchLog(internal_name=self.internal_name, status=status))
        self.run._failed = self._failed_before or failed
        return False


def branch_scope(run: Run, internal_name: str) -> BranchRecorder:
    """A branch of an existing composite step, by internal name (``par.left``),
    for a process that records one branch of a run started elsewhere."""
    owner, _, name = internal_name.rpartition(".")
    if not owner:
        raise RunlogError(f"branch {internal_name!r}: expected '<composite step>.<branch>'")
    return CompositeRecorder(run, owner, owner.rpartition(".")[2], "parallel").branch(name)


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_config(run_id: str, tag: str, store: RunLogStore, catalog: Path, dag_hash: str) -> dict[str, Any]:
    """A run_config in the seed's shape, describing how runlog recorded the run."""
    tracker = os.environ.get("RUNLOG_EXPERIMENT_TRACKER") or "do-nothing"
    return {
        "executor": {"service_name": "local", "service_type": "executor", "enable_parallel": False, "placeholders": {}},
        "run_log_store": {"service_name": store.layout, "service_type": "run_log_store", "log_folder": str(store.root)},
        "secrets_handler": {"service_name": "do-nothing", "service_type": "secrets"},
        "catalog_handler": {"service_name": "file-system", "service_type": "catalog", "catalog_location": str(catalog)},
        "experiment_tracker": {"service_name": tracker, "service_type": "experiment_tracker"},
        "pipeline_file": "",
        "parameters_file": None,
        "configuration_file": None,
        "tag": tag,
        "run_id": run_id,
        "variables": {},
        "use_cached": False,
        "original_run_id": "",
        "dag": {},
        "dag_hash": dag_hash,
        "execution_plan": "chained",
    }
