"""Run logs in a folder: the two layouts of runnable, crash- and parallel-safe.

``file-system``: ``<root>/<run_id>.json`` holds the whole run; every update is a
locked read-modify-write followed by an atomic replace.

``chunked-fs``: ``<root>/<run_id>/RunLog.json`` plus one file per step and per
branch. runlog writes the seed-era chunk names ``StepLog-<internal name>-<time_ns>.json``
and ``BranchLog-<internal name>-<time_ns>.json``: a writer never rewrites a file
that another process may be writing, so processes updating different steps or
branches of one run cannot lose each other's work. Readers take the newest version
of each name, and also read runnable 0.6+'s ``BranchLog-<name>.json`` files.

>>> store = LocalRunLogStore("/tmp/doctest-store", layout="chunked-fs")  # doctest: +SKIP
>>> store.create_run(RunLog(run_id="r1"))                                 # doctest: +SKIP
>>> store.get_run("r1").status                                             # doctest: +SKIP
'CREATED'
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import BadRunLog, RunlogError, RunNotFound
from ..models import RunLog
from .base import DEFAULT_STORE, Layout, RunInfo, RunLogStore
from .chunks import assemble_chunks, chunk_file_name, chunk_version
from .files import atomic_write, file_lock
from .jsonio import chunk_from_json, read_json, run_from_json
from .names import validate_name

# Told of each entry a folder's listing skips, and why (a symlink out of the store, a loop).
SkipCallback = Callable[[Path, str], None]

# Reads of a chunked run folder that writers keep changing, before giving up.
READ_ATTEMPTS = 200


def read_run_file(path: Path) -> RunLog:
    """Read a ``file-system`` run log (one JSON file holding the whole run)."""
    return run_from_json(read_json(path), path)


def read_run_folder(folder: Path) -> RunLog:
    """Read a ``chunked-fs`` run folder of any generation and re-attach its branches."""
    folder = Path(folder)
    head = folder / "RunLog.json"
    if not head.is_file():
        raise BadRunLog(folder, "has no RunLog.json: not a chunked run folder")
    for attempt in range(READ_ATTEMPTS):
        try:
            return _read_chunks(folder, head)
        except FileNotFoundError:
            # A writer replaced a chunk between our listing and our read: list again
            # (soon: the newer version is already there; a busy run may take a few tries).
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
    raise BadRunLog(folder, f"changed by other writers on each of {READ_ATTEMPTS} reads: try again")


def _read_chunks(folder: Path, head: Path) -> RunLog:
    run = read_run_file(head)
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise BadRunLog(folder, f"cannot be listed ({exc.strerror or exc})") from None
    return assemble_chunks(run, names, lambda name: read_json(folder / name),
                           lambda name, model: _read_chunk(folder / name, model))


def _read_chunk(path: Path, model):
    try:
        data = read_json(path)
    except BadRunLog:
        if not path.exists():  # replaced by a newer version since we listed the folder
            raise FileNotFoundError(path) from None
        raise
    return chunk_from_json(data, model, path)


class LocalRunLogStore(RunLogStore):
    """Runs in a folder, in either layout (see the module's docstring)."""

    def __init__(self, root: str | os.PathLike = DEFAULT_STORE, layout: Layout = "file-system",
                 endpoint_url: str | None = None):
        super().__init__(root, layout)
        if endpoint_url:
            raise RunlogError(f"--endpoint-url is for s3:// stores, and {root} is a folder")
        self.root = Path(root)

    # paths
    def _file(self, run_id: str) -> Path:
        return self.root / f"{validate_name(run_id)}.json"

    def _folder(self, run_id: str) -> Path:
        return self.root / validate_name(run_id)

    def _lock_path(self, run_id: str) -> Path:
        if (self._folder(run_id)).is_dir():
            return self._folder(run_id) / ".lock"
        return self.root / f".{validate_name(run_id)}.lock"

    def layout_of(self, run_id: str) -> Layout | None:
        if (self._folder(run_id) / "RunLog.json").is_file():
            return "chunked-fs"
        if self._file(run_id).is_file():
            return "file-system"
        return None

    def default_catalog(self) -> Path:
        return self.root.parent / ".catalog"

    # reading
    def get_run(self, run_id: str) -> RunLog:
        layout = self.layout_of(run_id)
        if layout == "chunked-fs":
            return read_run_folder(self._folder(run_id))
        if layout == "file-system":
            return read_run_file(self._file(run_id))
        raise RunNotFound(f"no run {run_id!r} in {self.root}")

    def list_runs(self) -> list[RunInfo]:
        found = []
        for path, layout in self.iter_sources():
            head = path / "RunLog.json" if layout == "chunked-fs" else path
            try:
                data = read_json(head)
            except BadRunLog:
                continue
            if isinstance(data, dict):
                found.append(RunInfo(run_id=str(data.get("run_id", path.stem)), status=str(data.get("status", "")),
                                     tag=str(data.get("tag") or ""), layout=layout, path=path))
        return sorted(found, key=lambda info: info.run_id)

    def iter_sources(self, on_skip: SkipCallback | None = None) -> Iterator[tuple[Path, Layout]]:
        """``(path, layout)`` of every run file or run folder directly in the store.

        Hidden files, temporary files and symlinks that lead out of the folder are
        skipped, so nothing planted in the store can make a reader leave it;
        ``on_skip(path, why)`` is told of every symlink skipped that looks like a run
        (a ``.json`` name or a folder), and of symlink loops."""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return
        root = self.root.resolve()
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(".tmp"):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError) as exc:
                    if entry.name.endswith(".json"):  # dangling or a loop: the reader reports it
                        yield path, "file-system"
                    elif on_skip and _is_loop(exc):
                        on_skip(path, "a symlink loop: not followed")
                    continue
                why = leaves(target, root, "the store")
                if why:
                    if on_skip and (entry.name.endswith(".json") or target.is_dir()):
                        on_skip(path, why)
                    continue
            if entry.name.endswith(".json"):
                yield path, "file-system"
            elif _is_dir(entry) and (path / "RunLog.json").exists():
                yield path, "chunked-fs"

    # writing
    def ensure_run(self, run: RunLog) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".create.lock"):
            if not self.exists(run.run_id):
                self.create_run(run)

    def create_run(self, run: RunLog, layout: Layout | None = None) -> None:
        layout = layout or self.layout
        if self.exists(run.run_id):
            raise RunlogError(f"run {run.run_id!r} already exists in {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        if layout == "chunked-fs":
            folder = self._folder(run.run_id)
            folder.mkdir(exist_ok=True)
            head = run.model_copy(update={"steps": {}})
            atomic_write(folder / "RunLog.json", head.to_json())
            for step in run.steps.values():
                self._write_step_chunks(run.run_id, step)
        else:
            with file_lock(self._lock_path(run.run_id)):
                atomic_write(self._file(run.run_id), run.to_json())

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        self._require(run_id)
        with file_lock(self._lock_path(run_id)):
            yield

    def _modify(self, run_id: str, change: Callable[[RunLog], RunLog], locked: bool) -> RunLog:
        layout = self._require(run_id)
        path = self._folder(run_id) / "RunLog.json" if layout == "chunked-fs" else self._file(run_id)
        with contextlib.nullcontext() if locked else file_lock(self._lock_path(run_id)):
            run = change(read_run_file(path))
            atomic_write(path, run.to_json())
            return run

    def _write_chunk(self, run_id: str, kind: str, internal_name: str, model) -> None:
        folder = self._folder(run_id)
        version = self._next_version()
        atomic_write(folder / chunk_file_name(kind, internal_name, version),
                     json.dumps(model.model_dump(mode="json"), indent=4))
        # Older versions of this chunk are now shadowed; remove them (a crash here
        # only leaves an extra, older file that readers ignore).
        for name in os.listdir(folder):
            found = chunk_version(name)
            if found and found[:2] == (kind, internal_name) and found[2] < version:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / name)


def holds_runs(folder: Path) -> bool:
    """Whether a run file or run folder lies directly in ``folder``."""
    return next(iter(LocalRunLogStore(folder).iter_sources()), None) is not None


def find_stores(folder: str | os.PathLike, on_skip: SkipCallback | None = None) -> list[Path]:
    """Every folder at or below ``folder`` that holds run logs directly (a store), in
    name order. Run folders and hidden folders are not entered, nor symlinks to
    folders: those that lead out of ``folder`` or back up it (a loop) go to
    ``on_skip(path, why)``, unless they sit in a store, whose own listing reports them.

    >>> find_stores("examples/real-logs")[:2]         # doctest: +SKIP
    [PosixPath('examples/real-logs/magnus-0.5-chunked-fs'), PosixPath('examples/real-logs/magnus-0.5-file-system')]
    """
    top = Path(folder)
    root, found, todo = top.resolve(), [], [top]
    while todo:
        current = todo.pop()
        is_store = holds_runs(current)
        if is_store:
            found.append(current)
        below = []
        for entry in _entries(current):
            path = Path(entry.path)
            if entry.name.startswith(".") or not _is_dir(entry):
                continue
            if entry.is_symlink():
                if on_skip and not is_store:
                    why = _symlink_problem(path, root, str(folder))
                    if why:
                        on_skip(path, why)
            elif not (path / "RunLog.json").exists():
                below.append(path)
        todo.extend(reversed(below))
    return found


def leaves(target: Path, root: Path, name: str) -> str | None:
    """Why a symlink to ``target`` (resolved) is not followed from inside ``root``
    (resolved, called ``name`` in the message); None when it stays inside."""
    if target == root or target in root.parents:
        return f"a symlink back to {target}: not followed (a loop)"
    if root not in target.parents:
        return f"a symlink out of {name} (to {target}): not followed"
    return None


def _symlink_problem(path: Path, root: Path, name: str) -> str | None:
    try:
        return leaves(path.resolve(strict=True), root, name)
    except (OSError, RuntimeError) as exc:
        return "a symlink loop: not followed" if _is_loop(exc) else None


def _is_loop(exc: BaseException) -> bool:
    # Python before 3.13 raises RuntimeError for a loop in Path.resolve(strict=True).
    return isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError:
        return []


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
