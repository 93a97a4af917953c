"""Where a lake lives: a folder, or a prefix in object storage (``s3://``, ``gs://``, any
fsspec URL, through the same :mod:`runlog.store.objects` as run-log stores).

Every object is written whole or not at all: in a folder, a temporary file (a
hidden ``.name.tmp`` that no reader's ``*.parquet`` matches) fsynced and renamed
over the old one; in object storage, one PUT. A bucket is written under a lock:
``flock`` in a folder, a lease object (:mod:`runlog.store.objects.lease`) in a bucket.

>>> dest = LakeDest("lake")              # doctest: +SKIP
>>> dest.put("runs/part-00001.parquet", data)    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import RunlogError
from ..store import is_url


class LakeDest:
    """A lake's root: keys are ``/``-separated paths relative to it."""

    def __init__(self, root: str | os.PathLike, endpoint_url: str | None = None):
        self.remote = is_url(root)
        self.endpoint_url = endpoint_url
        if self.remote:
            from ..store.objects import open_storage

            self.storage = open_storage(str(root), endpoint_url)
            self.url = self.storage.url
            self.path = None
        else:
            self.storage = None
            self.path = Path(root).absolute()
            if self.path.exists() and not self.path.is_dir():
                raise RunlogError(f"{self.path} is a file: a lake is a folder (or a URL)")
            self.url = str(self.path)

    def url_of(self, key: str) -> str:
        """The path or (redacted) URL of ``key``, as readers name it."""
        return f"{self.url}/{key}"

    # -- reading ----------------------------------------------------------------
    def read(self, key: str) -> bytes:
        """The whole object; FileNotFoundError when there is none."""
        if self.storage is not None:
            return self.storage.read(key)
        return (self.path / key).read_bytes()

    def list(self, prefix: str) -> list[str]:
        """Keys under the folder ``prefix``, in order, temporary files left out."""
        if self.storage is not None:
            found = [obj.key for page in self.storage.pages(prefix) for obj in page]
        else:
            base = self.path / prefix
            found = [f"{prefix}/{p.relative_to(base).as_posix()}" for p in base.rglob("*") if p.is_file()] \
                if base.is_dir() else []
        return sorted(k for k in found if not k.rsplit("/", 1)[-1].startswith("."))

    # -- writing ----------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        """Write the object whole (replacing any), or not at all."""
        self.put_many([(key, data)])

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Write each object whole, in order. In a folder every temporary file is written,
        then all are fsynced at once, then renamed into place in order."""
        if self.storage is not None:
            for key, data in items:
                self.storage.write(key, data)
            return
        staged: list[tuple[str, Path]] = []
        try:
            for key, data in items:
                target = self.path / key
                target.parent.mkdir(parents=True, exist_ok=True)
                staged.append((self._temporary(target, data, sync=False), target))
            from concurrent.futures import ThreadPoolExecutor

            # fsyncs at once share journal commits: as cheap as one, where one after the other cost one each.
            with ThreadPoolExecutor(min(len(staged), 16), thread_name_prefix="runlog-fsync") as pool:
                list(pool.map(_fsync, [tmp for tmp, _ in staged]))
            while staged:
                tmp, target = staged[0]
                os.replace(tmp, target)
                staged.pop(0)
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def clean_temporary(self, keys: list[str]) -> None:
        """Remove what a killed writer of ``keys`` left (``.<name>.*.tmp`` beside each, or every
        ``.*.tmp`` in a key ending in ``/``); call under the lock that makes this the only writer
        of those keys. Object storage has none."""
        if self.storage is not None:
            return
        for key in keys:
            target = self.path / key
            pattern = ".*.tmp" if key.endswith("/") else f".{target.name[:60]}.*.tmp"
            folder = target if key.endswith("/") else target.parent
            for stale in folder.glob(pattern) if folder.is_dir() else ():
                with contextlib.suppress(OSError):
                    stale.unlink()

    def create(self, key: str, data: bytes) -> bool:
        """Write the object only if there is none (atomically); False if one exists."""
        if self.storage is not None:
            return self.storage.create(key, data) is not None
        target = self.path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temporary(target, data)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return True

    def delete(self, key: str) -> None:
        if self.storage is not None:
            self.storage.delete(key)
            return
        with contextlib.suppress(FileNotFoundError):
            (self.path / key).unlink()

    def _temporary(self, target: Path, data: bytes, sync: bool = True) -> str:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:60]}.", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if sync:
                    os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold ``key`` as a lock: one builder at a time writes a bucket."""
        if self.storage is not None:
            from ..store.objects.lease import lease

            with lease(self.storage, key):
                yield
            return
        from ..store.files import file_lock

        path = self.path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path):
            yield


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
