"""Run-log stores in object storage (S3, MinIO, GCS... through fsspec), both layouts.

``RunLogStore("s3://bucket/runs")`` returns a :class:`RemoteRunLogStore`: the same
methods, objects instead of files, with the same names as on disk.

- ``chunked-fs``: every step and branch write is a new object
  (``<run>/StepLog-<name>-<time_ns>.json``), so writers on different hosts never
  overwrite each other; RunLog.json (the run's status) is replaced with If-Match.
- ``file-system``: ``<run>.json`` is read, changed and written back with If-Match
  on the ETag read, and the whole read-modify-write is retried when another writer
  got there first: no update is lost.
- ``locked()`` (used by ``runlog exec`` around composite-step bookkeeping) is a
  lease object ``.<run>.lock`` created with If-None-Match.

GCS (gs://) does the same with generation preconditions (``ifGenerationMatch``).
Storage without conditional writes (memory://...) checks and writes in two calls:
fine for one writer per run, racy for several.

>>> store = RunLogStore("s3://bucket/runs", layout="chunked-fs")   # doctest: +SKIP
>>> store.get_run("r1").status                                      # doctest: +SKIP
'SUCCESS'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import BadRunLog, RunlogError, RunNotFound
from ..models import RunLog
from .base import Layout, RunInfo, RunLogStore
from .chunks import assemble_chunks, chunk_file_name, chunk_version
from .jsonio import chunk_from_json, parse_json, run_from_json
from .names import validate_name
from .objects import ObjectInfo, ObjectStorage, list_folder, open_storage
from .objects.lease import lease

# A read-modify-write that loses this many conditional writes in a row gives up.
MAX_CONFLICTS = 50


class RemoteRunLogStore(RunLogStore):
    """Runs under a URL prefix. ``root`` is the URL with any credentials redacted."""

    def __init__(self, root: str, layout: Layout = "file-system", endpoint_url: str | None = None):
        super().__init__(root, layout)
        self.storage = open_storage(str(root), endpoint_url)
        self.root = self.storage.url
        self._layouts: dict[str, Layout] = {}  # a run never changes layout: ask the storage once

    def default_catalog(self) -> Path:
        return Path(".catalog")

    # where
    def layout_of(self, run_id: str) -> Layout | None:
        validate_name(run_id)
        if run_id in self._layouts:
            return self._layouts[run_id]
        if self.storage.exists(f"{run_id}/RunLog.json"):
            self._layouts[run_id] = "chunked-fs"
        elif self.storage.exists(f"{run_id}.json"):
            self._layouts[run_id] = "file-system"
        return self._layouts.get(run_id)

    def _head_key(self, run_id: str, layout: Layout) -> str:
        return f"{run_id}/RunLog.json" if layout == "chunked-fs" else f"{run_id}.json"

    # reading
    def get_run(self, run_id: str) -> RunLog:
        layout = self.layout_of(run_id)
        if layout == "chunked-fs":
            return read_remote_folder(self.storage, run_id)[0]
        if layout == "file-system":
            with contextlib.suppress(FileNotFoundError):
                return read_remote_file(self.storage, f"{run_id}.json")[0]
        raise RunNotFound(f"no run {run_id!r} in {self.root}")

    def list_runs(self) -> list[RunInfo]:
        found = []
        for key, layout, _ in iter_remote_sources(self.storage):
            head = f"{key}/RunLog.json" if layout == "chunked-fs" else key
            try:
                data = parse_json(self.storage.read(head), self.storage.url_of(head))
            except (BadRunLog, FileNotFoundError):
                continue
            if isinstance(data, dict):
                found.append(RunInfo(run_id=str(data.get("run_id", key.removesuffix(".json"))),
                                     status=str(data.get("status", "")), tag=str(data.get("tag") or ""),
                                     layout=layout, path=self.storage.url_of(key)))
        return sorted(found, key=lambda info: info.run_id)

    def iter_sources(self) -> Iterator[tuple[str, Layout]]:
        for key, layout, _ in iter_remote_sources(self.storage):
            yield self.storage.url_of(key), layout

    # writing
    def create_run(self, run: RunLog, layout: Layout | None = None) -> None:
        if not self._create(run, layout or self.layout):
            raise RunlogError(f"run {run.run_id!r} already exists in {self.root}")

    def ensure_run(self, run: RunLog) -> None:
        # The conditional create is the lock: of racing creators exactly one wins.
        self._create(run, self.layout)

    def _create(self, run: RunLog, layout: Layout) -> bool:
        if self.exists(run.run_id):
            return False
        head = run.model_copy(update={"steps": {}}) if layout == "chunked-fs" else run
        if self.storage.create(self._head_key(run.run_id, layout), head.to_json().encode()) is None:
            return False
        self._layouts[run.run_id] = layout
        if layout == "chunked-fs":
            for step in run.steps.values():
                self._write_step_chunks(run.run_id, step)
        return True

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        self._require(run_id)
        with lease(self.storage, f".{run_id}.lock"):
            yield

    def _modify(self, run_id: str, change: Callable[[RunLog], RunLog], locked: bool) -> RunLog:
        """Read, change and conditionally write back one object; start over when another
        writer replaced it in between (If-Match failed). A lease is not needed."""
        key = self._head_key(run_id, self._require(run_id))
        url = self.storage.url_of(key)
        for conflict in range(MAX_CONFLICTS):
            try:
                raw, version = self.storage.read_versioned(key)
            except FileNotFoundError:
                raise RunNotFound(f"{url}: the run was deleted while being written") from None
            run = change(run_from_json(parse_json(raw, url), url))
            if self.storage.replace(key, run.to_json().encode(), version) is not None:
                return run
            time.sleep(min(0.005 * 2 ** min(conflict, 6), 0.3) * (1 + random.random()))
        raise RunlogError(f"{url}: changed by other writers {MAX_CONFLICTS} times in a row; try again")

    def _write_chunk(self, run_id: str, kind: str, internal_name: str, model) -> None:
        # Hosts' clocks differ: a version is also newer than every version listed, so the
        # last write of a chunk (roll-ups run under the run's lease) is the one readers take.
        older = []
        for obj in list_folder(self.storage, run_id):
            found = chunk_version(obj.key.rsplit("/", 1)[-1])
            if found and found[:2] == (kind, internal_name):
                older.append(obj.key)
                self._last_version = max(self._last_version, found[2])
        version = self._next_version()
        self.storage.write(f"{run_id}/{chunk_file_name(kind, internal_name, version)}",
                           json.dumps(model.model_dump(mode="json"), indent=4).encode())
        # The older versions are now shadowed; removing them is tidiness, not correctness
        # (readers take the newest), so a writer racing us does no harm.
        for key in older:
            self.storage.delete(key)


# -- reading (the store and ingest share these) ---------------------------------


def read_remote_file(storage: ObjectStorage, key: str) -> tuple[RunLog, str]:
    """A file-system run object and the sha256 of its bytes."""
    raw = storage.read(key)
    url = storage.url_of(key)
    return run_from_json(parse_json(raw, url), url), hashlib.sha256(raw).hexdigest()


def read_remote_folder(storage: ObjectStorage, folder: str) -> tuple[RunLog, str]:
    """A chunked run folder put together, and a hash of every chunk object's bytes.

    A chunk replaced by a newer version between listing and reading makes us list again."""
    for attempt in range(6):
        names = [obj.key.rsplit("/", 1)[-1] for obj in list_folder(storage, folder)]
        names = sorted(n for n in names if not n.startswith(".") and not n.endswith(".tmp"))
        if "RunLog.json" not in names:
            raise FileNotFoundError(storage.url_of(f"{folder}/RunLog.json"))
        try:
            blobs = storage.read_many([f"{folder}/{name}" for name in names])
        except FileNotFoundError:
            time.sleep(0.02 * (attempt + 1))
            continue
        return _assemble(storage, folder, names, blobs)
    raise BadRunLog(storage.url_of(folder), "keeps changing while being read: try again")


def _assemble(storage: ObjectStorage, folder: str, names: list[str], blobs: dict[str, bytes]) -> tuple[RunLog, str]:
    def url(name: str) -> str:
        return storage.url_of(f"{folder}/{name}")

    def load_json(name: str) -> Any:
        return parse_json(blobs[f"{folder}/{name}"], url(name))

    head = run_from_json(load_json("RunLog.json"), url("RunLog.json"))
    run = assemble_chunks(head, [n for n in names if n != "RunLog.json"], load_json,
                          lambda name, model: chunk_from_json(load_json(name), model, url(name)))
    digest = hashlib.sha256()
    for name in names:  # as index._content_hash does for a local folder
        digest.update(f"{name}\0{hashlib.sha256(blobs[f'{folder}/{name}']).hexdigest()}\n".encode("utf-8", "surrogateescape"))
    return run, digest.hexdigest()


def iter_remote_sources(storage: ObjectStorage, under: str = "") -> Iterator[tuple[str, Layout, list[ObjectInfo]]]:
    """``(key, layout, objects)`` of every run directly under ``under``, streamed from a
    paged listing: a ``<run>.json`` object, or a ``<run>/`` folder holding RunLog.json
    (``objects`` are the folder's own chunk objects). Hidden and temporary names are skipped.

    S3 lists keys in order, so one folder's objects arrive together and only the
    current folder is held in memory."""
    base = f"{under}/" if under else ""
    current: str | None = None
    chunks: list[ObjectInfo] = []
    for page in storage.pages(under):
        for obj in page:
            rest = obj.key[len(base):]
            first, slash, inner = rest.partition("/")
            if current is not None and first != current:
                yield from _folder_source(base + current, chunks)
                current, chunks = None, []
            if first.startswith(".") or first.endswith(".tmp"):
                continue
            if not slash:
                if first.endswith(".json"):
                    yield base + first, "file-system", [obj]
                continue
            current = first
            if "/" not in inner and not inner.startswith(".") and not inner.endswith(".tmp"):
                chunks.append(obj)
    if current is not None:
        yield from _folder_source(base + current, chunks)


def _folder_source(key: str, chunks: list[ObjectInfo]) -> Iterator[tuple[str, Layout, list[ObjectInfo]]]:
    if any(obj.key == f"{key}/RunLog.json" for obj in chunks):
        yield key, "chunked-fs", chunks
