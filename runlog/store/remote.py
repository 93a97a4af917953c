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
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadRunLog, RunlogError, RunNotFound
from ..models import BranchLog, RunLog, StepLog
from .objects.base import ObjectInfo, ObjectStorage
from .local import (
    _VERSIONED,
    LAYOUTS,
    Layout,
    RunInfo,
    RunLogStore,
    _parent_name,
    _place_step,
    assemble_chunks,
    chunk_from_json,
    parse_json,
    run_from_json,
    validate_name,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

# A read-modify-write that loses this many conditional writes in a row gives up.
MAX_CONFLICTS = 50


class RemoteRunLogStore(RunLogStore):
    """Runs under a URL prefix. ``root`` is the URL with any credentials redacted."""

    def __init__(self, root: str, layout: Layout = "file-system", endpoint_url: str | None = None):
        if layout not in LAYOUTS:
            raise RunlogError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
        self.storage = ObjectStorage(str(root), endpoint_url)
        self.root = self.storage.url
        self.layout = layout
        self._last_version = 0
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

    # reading
    def get_run(self, run_id: str) -> RunLog:
        layout = self.layout_of(run_id)
        if layout == "chunked-fs":
            return read_remote_folder(self.storage, run_id)[0]
        if layout == "file-system":
            key = f"{run_id}.json"
            try:
                return read_remote_file(self.storage, key)[0]
            except FileNotFoundError:
                pass
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
        """``(url, layout)`` of every run object or run folder directly under the root."""
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
        if layout == "chunked-fs":
            head = run.model_copy(update={"steps": {}})
            if self.storage.create(f"{run.run_id}/RunLog.json", head.to_json().encode()) is None:
                return False
            self._layouts[run.run_id] = "chunked-fs"
            for step in run.steps.values():
                self._write_step_chunks(run.run_id, step)
            return True
        if self.storage.create(f"{run.run_id}.json", run.to_json().encode()) is None:
            return False
        self._layouts[run.run_id] = "file-system"
        return True

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        self._require(run_id)
        with self.storage.lock(f".{run_id}.lock"):
            yield

    def update_run(self, run_id: str, _locked: bool = False, **fields: Any) -> RunLog:
        layout = self._require(run_id)
        key = f"{run_id}/RunLog.json" if layout == "chunked-fs" else f"{run_id}.json"
        return self._modify(key, lambda run: run.model_copy(update=fields))

    def put_step(self, run_id: str, step: StepLog, _locked: bool = False) -> None:
        for part in step.internal_name.split("."):
            validate_name(part, "step name")
        validate_name(step.internal_name, "step name")
        if self._require(run_id) == "chunked-fs":
            self._write_chunk(run_id, "StepLog", step.internal_name, step.model_copy(update={"branches": {}}))
            return

        def change(run: RunLog) -> RunLog:
            _place_step(run, step)
            return run

        self._modify(f"{run_id}.json", change)

    def put_branch(self, run_id: str, branch: BranchLog, _locked: bool = False) -> None:
        validate_name(branch.internal_name, "branch name")
        if self._require(run_id) == "chunked-fs":
            self._write_chunk(run_id, "BranchLog", branch.internal_name, branch.model_copy(update={"steps": {}}))
            return

        def change(run: RunLog) -> RunLog:
            owner = run.find_step(_parent_name(branch.internal_name))
            if owner is None:
                raise RunlogError(f"branch {branch.internal_name!r}: no step {_parent_name(branch.internal_name)!r} "
                                  f"in run {run_id!r}")
            old = owner.branches.get(branch.internal_name)
            owner.branches[branch.internal_name] = branch.model_copy(update={"steps": old.steps if old else {}})
            return run

        self._modify(f"{run_id}.json", change)

    # internals
    def _modify(self, key: str, change: Callable[[RunLog], RunLog]) -> RunLog:
        """Read, change and conditionally write back one object; start over when another
        writer replaced it in between (If-Match failed)."""
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
        for obj in self.storage.list_folder(run_id):
            match = _VERSIONED.match(obj.key.rsplit("/", 1)[-1])
            if match and match.group(1) == kind and match.group(2) == internal_name:
                older.append(obj.key)
                self._last_version = max(self._last_version, int(match.group(3)))
        version = self._next_version()
        self.storage.write(f"{run_id}/{kind}-{internal_name}-{version}.json",
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
        names = [obj.key.rsplit("/", 1)[-1] for obj in storage.list_folder(folder)]
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


# -- ingest sources ------------------------------------------------------------


class RemoteSource:
    """One run in object storage, as ingest sees it: its URL, layout, and a fingerprint
    taken from the listing (ETags and sizes), so an unchanged run costs no download.

    ``str(source)`` is its URL (credentials redacted): the index's ``source_path``."""

    __slots__ = ("storage", "key", "layout", "size", "fingerprint", "content_tagged", "url", "download")

    def __init__(self, storage: ObjectStorage, key: str, layout: Layout, objects: list[ObjectInfo]):
        self.storage, self.key, self.layout = storage, key, layout
        self.url = storage.url_of(key)
        # Only the fingerprint is kept, not the objects: sources waiting in line stay small.
        digest = hashlib.sha256()
        for obj in sorted(objects, key=lambda o: o.key):
            digest.update(f"{obj.key.rsplit('/', 1)[-1]}\0{obj.size}\0{obj.tag}\n".encode("utf-8", "surrogateescape"))
        self.size = sum(obj.size for obj in objects)
        self.fingerprint = int.from_bytes(digest.digest()[:8], "big") >> 1
        self.content_tagged = all(obj.content_tag for obj in objects)
        self.download: Future | None = None  # started ahead by Lookahead

    def __str__(self) -> str:
        return self.url

    def load(self) -> tuple[RunLog, str]:
        """Download and parse the run: ``(run, content hash)``. The last one loaded is
        kept, so ingest's hash check and its read cost one download."""
        if _LAST.get("url") == self.url:
            return _LAST["value"]
        download, self.download = self.download, None
        value = download.result() if download is not None else self.fetch()
        _LAST.clear()
        _LAST.update(url=self.url, value=value)
        return value

    def fetch(self) -> tuple[RunLog, str]:
        try:
            if self.layout == "chunked-fs":
                return read_remote_folder(self.storage, self.key)
            return read_remote_file(self.storage, self.key)
        except FileNotFoundError:
            raise BadRunLog(self.url, "was deleted after it was listed: run ingest again "
                                      "(--prune drops it from the index)") from None


_LAST: dict[str, Any] = {}


class Listing:
    """The runs at ``url`` (a store prefix, a chunked run folder or one run object),
    streamed from a paged listing: iterating yields :class:`RemoteSource` objects while
    later pages are still unread, so memory does not grow with the bucket.

    ``complete_prefix`` is the store prefix's URL once it has been listed to the end
    (``--prune`` trusts only a complete listing), else None.

    >>> listing = Listing("s3://bucket/runs")          # doctest: +SKIP
    >>> for source in listing: ...                     # doctest: +SKIP
    >>> listing.complete_prefix                        # doctest: +SKIP
    's3://bucket/runs'
    """

    def __init__(self, url: str, endpoint_url: str | None = None):
        self.url, self.endpoint_url = url, endpoint_url
        self.complete_prefix: str | None = None

    def __iter__(self) -> Iterator[RemoteSource]:
        storage = ObjectStorage(self.url, self.endpoint_url)
        if storage.url.endswith(".json"):
            parent_url, _, name = self.url.rstrip("/").rpartition("/")
            parent = ObjectStorage(parent_url, self.endpoint_url)
            try:
                info = parent.info(name)
            except FileNotFoundError:
                raise BadRunLog(storage.url, "no such object") from None
            yield RemoteSource(parent, name, "file-system", [info])
            return
        if storage.exists("RunLog.json"):
            folder = [obj for obj in storage.list_folder("")
                      if not obj.key.startswith(".") and not obj.key.endswith(".tmp")]
            yield RemoteSource(storage, "", "chunked-fs", folder)
            return
        for key, layout, objects in iter_remote_sources(storage):
            yield RemoteSource(storage, key, layout, objects)
        self.complete_prefix = storage.url


# Runs downloaded at once ahead of ingest: one GET at a time would make a bucket of
# 100,000 runs take 100,000 round trips end to end.
PREFETCH_AHEAD = 16
# Remote sources read from a listing ahead of ingest, at most (about 0.7 KB each).
LOOKAHEAD = 1000


class Lookahead:
    """Ingest's queue: pulls ``(source, layout)`` items from a (streamed) discovery a
    little ahead of ingest and starts downloading, in threads, the remote sources
    ``wanted`` says ingest will read (changed or new ones), at most PREFETCH_AHEAD at
    once and LOOKAHEAD remote sources ahead: memory stays bounded however long the
    listing is, and unchanged runs are never downloaded. Local paths (a folder is
    listed at once) are taken as they come, so a local ingest knows its total at once.

    ``total`` is the number of items once discovery has ended, None before. An error
    raised by discovery (storage gone mid-listing) is raised after the items found
    before it have been handed out.

    >>> with Lookahead(items, wanted) as queue:    # doctest: +SKIP
    ...     for path, layout in queue: ...
    """

    def __init__(self, items: Iterator[tuple[Any, str]], wanted: Callable[[RemoteSource], bool]):
        from concurrent.futures import ThreadPoolExecutor

        self.items = iter(items)
        self.wanted = wanted
        self.queue: deque[tuple[Any, str]] = deque()
        self.pulled = self.remote = 0  # items pulled; remote sources in the queue
        self.total: int | None = None
        self.error: BaseException | None = None
        self.downloading: deque[RemoteSource] = deque()
        self.pool = ThreadPoolExecutor(PREFETCH_AHEAD, thread_name_prefix="runlog-prefetch")

    def __iter__(self) -> Iterator[tuple[Any, str]]:
        while True:
            self._fill()
            if not self.queue:
                if self.error is not None:
                    error, self.error = self.error, None
                    raise error
                return
            item = self.queue.popleft()
            if isinstance(item[0], RemoteSource):
                self.remote -= 1
                if self.downloading and self.downloading[0] is item[0]:
                    self.downloading.popleft()
            yield item

    def _fill(self) -> None:
        while (self.total is None and self.error is None and self.remote < LOOKAHEAD
               and len(self.downloading) < PREFETCH_AHEAD):
            try:
                item = next(self.items)
            except StopIteration:
                self.total = self.pulled
                return
            except Exception as exc:  # noqa: BLE001 - raised in turn, after the items before it
                self.error = exc
                return
            self.pulled += 1
            self.queue.append(item)
            source = item[0]
            if isinstance(source, RemoteSource):
                self.remote += 1
                if self.wanted(source):
                    source.download = self.pool.submit(source.fetch)
                    self.downloading.append(source)

    def close(self) -> None:
        for source in self.downloading:
            if source.download is not None:
                source.download.cancel()
                source.download = None
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Lookahead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def remote_exists(url: str, endpoint_url: str | None = None) -> bool:
    """Whether a run's source (a run object, or a run folder's RunLog.json) still exists."""
    parent_url, _, name = url.rpartition("/")
    storage = ObjectStorage(parent_url, endpoint_url)
    return storage.exists(name if name.endswith(".json") else f"{name}/RunLog.json")
