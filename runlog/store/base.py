"""What every run-log store is: the methods the Run API, ``runlog exec`` and the
demo use, whatever holds the runs (a folder, or a URL prefix in object storage).

``RunLogStore(root)`` gives the store for ``root``: a folder's (:mod:`.local`) or a
URL's (:mod:`.remote`); the package :mod:`runlog.store` registers both kinds.
Writes that touch a whole object (a file-system run, a chunked run's RunLog.json)
go through :meth:`RunLogStore._modify`, which each kind makes safe against other
writers (a file lock, or conditional writes).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..errors import RunlogError, RunNotFound
from ..models import BranchLog, RunLog, StepLog
from .chunks import place_branch, place_step
from .names import is_url, validate_name

Layout = Literal["file-system", "chunked-fs"]
LAYOUTS: tuple[str, ...] = ("file-system", "chunked-fs")
DEFAULT_STORE = ".run_log_store"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    tag: str
    layout: str
    path: Path | str


class RunLogStore:
    """Runs in a folder, or under a URL (``s3://bucket/prefix``, ``gs://``, any fsspec
    protocol), in either layout. New runs use ``layout``; existing runs keep the
    layout they were found in. ``endpoint_url`` points s3:// at an S3-compatible
    server such as MinIO.

    >>> RunLogStore(".run_log_store").list_runs()                               # doctest: +SKIP
    >>> RunLogStore("s3://bucket/runs", endpoint_url="http://127.0.0.1:9000")  # doctest: +SKIP
    """

    # "folder" and "url" -> the class that serves them; filled by runlog.store.
    kinds: ClassVar[dict[str, type[RunLogStore]]] = {}

    def __new__(cls, root: str | os.PathLike = DEFAULT_STORE, layout: Layout = "file-system",
                endpoint_url: str | None = None):
        if cls is RunLogStore:
            cls = RunLogStore.kinds["url" if is_url(root) else "folder"]
        return super().__new__(cls)

    def __init__(self, root: str | os.PathLike = DEFAULT_STORE, layout: Layout = "file-system",
                 endpoint_url: str | None = None):
        if layout not in LAYOUTS:
            raise RunlogError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
        self.root: Any = root
        self.layout = layout
        self._last_version = 0

    # -- what each kind of store provides ----------------------------------------
    def layout_of(self, run_id: str) -> Layout | None:
        raise NotImplementedError

    def get_run(self, run_id: str) -> RunLog:
        """The whole run, branches re-attached, whatever its layout or generation."""
        raise NotImplementedError

    def list_runs(self) -> list[RunInfo]:
        """Every readable run, sorted by run_id (unreadable ones are skipped)."""
        raise NotImplementedError

    def iter_sources(self) -> Iterator[tuple[Any, Layout]]:
        """``(path or URL, layout)`` of every run file, object or run folder in the store."""
        raise NotImplementedError

    def create_run(self, run: RunLog, layout: Layout | None = None) -> None:
        """Write a new run (refused when the run_id is taken)."""
        raise NotImplementedError

    def ensure_run(self, run: RunLog) -> None:
        """Create ``run`` unless a run of that id exists (safe when processes race to create it)."""
        raise NotImplementedError

    def locked(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """Hold the run's lock across several reads and writes (pass ``_locked=True`` to
        the writes made inside, since the lock is not re-entrant)."""
        raise NotImplementedError

    def default_catalog(self) -> Path:
        """Where runs of this store keep catalog files unless told otherwise."""
        raise NotImplementedError

    def _modify(self, run_id: str, change: Callable[[RunLog], RunLog], locked: bool) -> RunLog:
        """Read, change and write back the run's whole-run object (a file-system run, or a
        chunked run's RunLog.json) so that no other writer's change is lost."""
        raise NotImplementedError

    def _write_chunk(self, run_id: str, kind: str, internal_name: str, model) -> None:
        """Write a new version of one chunk of a chunked run."""
        raise NotImplementedError

    # -- shared by every kind ------------------------------------------------------
    def exists(self, run_id: str) -> bool:
        return self.layout_of(run_id) is not None

    def update_run(self, run_id: str, _locked: bool = False, **fields: Any) -> RunLog:
        """Set run-level fields (status, tag, parameters...)."""
        self._require(run_id)
        return self._modify(run_id, lambda run: run.model_copy(update=fields), _locked)

    def put_step(self, run_id: str, step: StepLog, _locked: bool = False) -> None:
        """Add or replace one step (at any depth, placed by its internal name)."""
        for part in step.internal_name.split("."):
            validate_name(part, "step name")
        validate_name(step.internal_name, "step name")
        if self._require(run_id) == "chunked-fs":
            self._write_chunk(run_id, "StepLog", step.internal_name, step.model_copy(update={"branches": {}}))
            return
        self._modify(run_id, lambda run: place_step(run, step), _locked)

    def put_branch(self, run_id: str, branch: BranchLog, _locked: bool = False) -> None:
        """Add or replace a branch's own record (its status); its steps come via put_step."""
        validate_name(branch.internal_name, "branch name")
        if self._require(run_id) == "chunked-fs":
            self._write_chunk(run_id, "BranchLog", branch.internal_name, branch.model_copy(update={"steps": {}}))
            return
        self._modify(run_id, lambda run: place_branch(run, branch), _locked)

    def _require(self, run_id: str) -> Layout:
        layout = self.layout_of(run_id)
        if layout is None:
            raise RunNotFound(f"no run {run_id!r} in {self.root}")
        return layout

    def _write_step_chunks(self, run_id: str, step: StepLog) -> None:
        self._write_chunk(run_id, "StepLog", step.internal_name, step.model_copy(update={"branches": {}}))
        for branch in step.branches.values():
            self._write_chunk(run_id, "BranchLog", branch.internal_name, branch.model_copy(update={"steps": {}}))
            for inner in branch.steps.values():
                self._write_step_chunks(run_id, inner)

    def _next_version(self) -> int:
        # Strictly increasing within a process even when the clock is coarse.
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version
