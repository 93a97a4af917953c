"""Finding what to ingest, and reading it: local files and run folders, and runs in
object storage streamed from a bucket's listing, each with a cheap fingerprint
(size and mtime, or ETags) and, when needed, a content hash.

:class:`Discovery` turns the paths given to ingest into ``(source, layout)`` items;
:class:`Lookahead` queues them a little ahead of ingest and downloads the remote
ones ingest will read, in threads.

>>> discovery = Discovery(endpoint_url=None, on_error=print)        # doctest: +SKIP
>>> with Lookahead(discovery.items(["store"]), lambda s: True) as queue:   # doctest: +SKIP
...     for source, layout in queue: ...
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadRunLog, UsageProblem
from ..models import RunLog
from ..store import (
    Listing,
    LocalRunLogStore,
    RemoteSource,
    find_stores,
    holds_runs,
    is_url,
    read_run_file,
    read_run_folder,
    regular_file_stat,
)

Source = Path | RemoteSource


@dataclass(frozen=True)
class Stat:
    """What a source looks like without reading it."""

    size: int
    mtime_ns: int  # a file's mtime, or a fingerprint of a chunked folder's files (or of a run's objects)
    newest_ns: int  # newest mtime among the files (0 for objects with ETags: never "racy")


class Discovery:
    """The sources under the paths given to ingest, as ``(source, layout)`` items.

    A path that does not exist, or whose name SQLite cannot store, goes to
    ``on_error(key, BadRunLog)``; ``on_skip(key, why)`` is told of every symlink a
    folder's listing does not follow; ``on_listed(url)`` is told every remote source
    listed (``--prune`` keeps them); ``complete_prefixes`` holds the URL prefixes listed
    to their end (``--prune`` trusts only those). With ``recursive``, a folder stands
    for every store at or below it."""

    def __init__(self, endpoint_url: str | None, on_error: Callable[[str, BadRunLog], None],
                 on_listed: Callable[[str], None] | None = None, *,
                 on_skip: Callable[[str, str], None] | None = None, recursive: bool = False):
        self.endpoint_url = endpoint_url
        self.on_error = on_error
        self.on_listed = on_listed
        self.on_skip = on_skip
        self.recursive = recursive
        self.complete_prefixes: list[str] = []

    def items(self, paths: list) -> Iterator[tuple[Source, str]]:
        seen: set[str] = set()
        for given in paths:
            if is_url(given):
                yield from self._remote(str(given))
                continue
            for source, layout in self._local(Path(given)):
                key = os.path.abspath(source)
                if not _is_utf8(key):  # SQLite TEXT cannot hold it (os.fsdecode's lone surrogates)
                    self.on_error(key, BadRunLog(key, "has a name that is not UTF-8: rename it"))
                elif key not in seen:
                    seen.add(key)
                    yield Path(key), layout

    def _local(self, path: Path) -> list[tuple[Path, str]]:
        if (path / "RunLog.json").is_file():
            return [(path, "chunked-fs")]
        if path.is_dir():
            stores = find_stores(path, self._skipped) if self.recursive else [path]
            return [item for store in stores for item in LocalRunLogStore(store).iter_sources(self._skipped)]
        if path.is_file():
            return [(path, "file-system")]
        self.on_error(str(path), BadRunLog(path, "no such file or folder"))
        return []

    def _skipped(self, path: Path, why: str) -> None:
        if self.on_skip is not None:
            self.on_skip(os.path.abspath(path), why)

    def _remote(self, url: str) -> Iterator[tuple[RemoteSource, str]]:
        listing = Listing(url, self.endpoint_url)
        try:
            for source in listing:
                if self.on_listed is not None:
                    self.on_listed(str(source))
                yield source, source.layout
        except BadRunLog as exc:
            self.on_error(exc.path, exc)
            return
        if listing.complete_prefix is not None:
            self.complete_prefixes.append(listing.complete_prefix)


def refuse_a_folder_of_stores(given: str | os.PathLike) -> None:
    """Raise :class:`UsageProblem` when ``given`` is a folder that holds no run logs
    itself while stores below it do, naming them (relative to it) and ``--recursive``.

    >>> refuse_a_folder_of_stores("examples/real-logs")    # doctest: +SKIP
    Traceback (most recent call last):
    ...
    runlog.errors.UsageProblem: examples/real-logs holds no run logs, only stores in folders below it: ...
    """
    path = Path(given)
    if is_url(given) or not path.is_dir() or (path / "RunLog.json").is_file() or holds_runs(path):
        return
    names = [os.path.relpath(store, path) for store in find_stores(path)]
    if names:
        shown = ", ".join(names[:MAX_NAMED]) + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")
        raise UsageProblem(f"{given} holds no run logs, only stores in folders below it: {shown}; ingest one of "
                           "them, or all of them with --recursive")


MAX_NAMED = 10  # stores named in that message


# -- one source ---------------------------------------------------------------


def stat_of(source: Source, layout: str) -> Stat:
    """Size and mtime of a file; for a chunked folder, total size and a fingerprint of
    its files' names, sizes and mtimes; for a remote run, what its listing said."""
    if isinstance(source, RemoteSource):
        # ETags change with the content: a matching fingerprint needs no hash check (never
        # "racy"). Without ETags (memory://...) always confirm by hash.
        return Stat(source.size, source.fingerprint, 0 if source.content_tagged else 2**62)
    if layout != "chunked-fs":
        st = regular_file_stat(source)  # never open a FIFO planted in the store: it would block
        return Stat(st.st_size, st.st_mtime_ns, st.st_mtime_ns)
    fingerprint = hashlib.sha256()
    size = newest = 0
    for entry in _chunk_files(source):
        st = entry.stat()
        size += st.st_size
        newest = max(newest, st.st_mtime_ns)
        fingerprint.update(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return Stat(size, int.from_bytes(fingerprint.digest()[:8], "big") >> 1, newest)


def content_hash(source: Source, layout: str) -> str:
    """sha256 of a file; for a run folder (local or remote), of its chunks' names and hashes."""
    if isinstance(source, RemoteSource):
        return source.load()[1]
    if layout != "chunked-fs":
        return _file_hash(source)
    digest = hashlib.sha256()
    for entry in _chunk_files(source):
        digest.update(f"{entry.name}\0{_file_hash(Path(entry.path))}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def read_source(source: Source, layout: str) -> RunLog:
    if isinstance(source, RemoteSource):
        return source.load()[0]
    return read_run_folder(source) if layout == "chunked-fs" else read_run_file(source)


def local_source_exists(path: Path) -> bool:
    return path.is_file() or (path / "RunLog.json").is_file()


def _chunk_files(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(
            (e for e in entries if not e.name.startswith(".") and not e.name.endswith(".tmp") and e.is_file()),
            key=lambda e: e.name,
        )


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- the queue ------------------------------------------------------------------


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
