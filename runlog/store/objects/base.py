"""Object storage through fsspec: the few operations run-log stores and ingest need,
as every fsspec filesystem can do them. :mod:`.s3` and :mod:`.gcs` replace the
operations those services do better: conditional writes, single-request checks,
paged listings.

Whole-object PUTs are atomic on object stores, so a reader sees the old or the new
object, never a torn one. Here, without conditional writes, a check and a write are
two calls, so two writers on different hosts can race (fine for one writer per run).

>>> storage = open_storage("memory://demo/store")            # doctest: +SKIP
>>> storage.create("r1.json", b"{}")                          # doctest: +SKIP
'...'
>>> storage.read("r1.json")                                   # doctest: +SKIP
b'{}'
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import MissingExtra, RunlogError
from ..names import is_url, redact, url_scheme
from .errors import Precondition, storage_errors

# Objects per LIST request (S3's maximum); tests make it small to exercise paging.
LIST_PAGE_SIZE = 1000


@dataclass(frozen=True)
class ObjectInfo:
    """One object: its key relative to the storage root, size, and a fingerprint of
    its content (the ETag where the storage has one, else size and mtime)."""

    key: str
    size: int
    tag: str
    content_tag: bool  # True when ``tag`` changes whenever the content does (an ETag)


def object_info(key: str, raw: dict[str, Any]) -> ObjectInfo:
    """An :class:`ObjectInfo` from what fsspec's ``info``/``find`` say of an object."""
    size = int(raw.get("size") or 0)
    for field in ("ETag", "etag", "md5Hash", "generation"):
        if raw.get(field):
            return ObjectInfo(key, size, str(raw[field]), True)
    when = raw.get("mtime") or raw.get("LastModified") or raw.get("created") or raw.get("updated") or ""
    return ObjectInfo(key, size, f"{size}:{when}", False)


def list_folder(storage: ObjectStorage, folder: str) -> list[ObjectInfo]:
    """The objects directly inside ``folder`` (a key prefix without the ``/``)."""
    found = []
    for page in storage.pages(folder):
        for obj in page:
            if "/" not in obj.key[len(folder) + 1:]:
                found.append(obj)
    return found


# The extra, and the package it brings, that each kind of URL needs.
_EXTRAS = {"s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"), "gs": ("gs", "gcsfs"), "gcs": ("gs", "gcsfs")}


def _connect(storage: ObjectStorage, url: str, endpoint_url: str | None) -> tuple[Any, str]:
    """``storage._connect(...)``, its failures as one line naming the URL and the fix."""
    try:
        import fsspec  # noqa: F401
    except ImportError:  # name the extra of the store's own kind: gs:// wants runlog-store[gs], not [s3]
        raise MissingExtra(*_EXTRAS.get(storage.protocol, ("s3", "fsspec"))) from None
    try:
        return storage._connect(url, endpoint_url)
    except MissingExtra:
        raise
    except ImportError as exc:
        raise RunlogError(f"{storage.url}: the {storage.protocol}:// protocol needs a package that is not "
                          f"installed ({exc})") from None
    except ValueError as exc:
        if "not known" in str(exc) or "Protocol" in str(exc):
            raise RunlogError(f"{storage.url}: fsspec does not know the protocol {storage.protocol}://") from None
        raise RunlogError(f"{storage.url}: {exc}") from None


class ObjectStorage:
    """An fsspec filesystem rooted at ``url``. Keys are ``/``-separated and relative to it."""

    # What a failure message tells the user to check.
    reach_hint = "the URL and the network"
    credentials_hint = "the storage's own settings"

    def __init__(self, url: str, endpoint_url: str | None = None):
        if not is_url(url):
            raise RunlogError(f"{url!r} is not a URL: use a folder path, or s3://bucket/prefix")
        self.protocol = url_scheme(url)
        self.url = redact(url).rstrip("/")
        self.fs, root = _connect(self, url, endpoint_url)
        self.root = root.rstrip("/")

    def _connect(self, url: str, endpoint_url: str | None) -> tuple[Any, str]:
        """The fsspec filesystem and the root path inside it."""
        import fsspec

        if endpoint_url:
            raise RunlogError(f"--endpoint-url is for s3:// stores, not {self.url}")
        return fsspec.core.url_to_fs(url)

    # -- names -------------------------------------------------------------
    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def url_of(self, key: str) -> str:
        """The (redacted) URL of ``key``, as shown in messages and kept in the index."""
        return f"{self.url}/{key}" if key else self.url

    def _split(self, key: str) -> tuple[str, str]:
        """``(bucket, name)`` of a key."""
        path = self.path(key).lstrip("/")
        bucket, _, name = path.partition("/")
        return bucket, name

    def _errors(self, key: str) -> contextlib.AbstractContextManager[None]:
        return storage_errors(self, key)

    # -- what a failure means (see errors.translate) ------------------------
    def is_denied(self, exc: BaseException) -> bool:
        return False

    def credentials_problem(self, exc: BaseException) -> str | None:
        """A message when ``exc`` says credentials are missing or invalid, else None."""
        return None

    # -- reading -----------------------------------------------------------
    def read(self, key: str) -> bytes:
        """The whole object. A missing one raises FileNotFoundError."""
        with self._errors(key):
            return self.fs.cat_file(self.path(key))

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Several objects, fetched concurrently where the filesystem can; a missing one
        raises FileNotFoundError."""
        if not keys:
            return {}
        paths = {self.path(k): k for k in keys}
        with self._errors(keys[0]):
            got = self.fs.cat(list(paths), on_error="return")
        out = {}
        for path, value in got.items():
            if isinstance(value, FileNotFoundError):
                raise value
            if isinstance(value, BaseException):
                with self._errors(paths[path]):
                    raise value
            out[paths[path]] = value
        return out

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        """The object and a version token to pass to :meth:`replace`."""
        data = self.read(key)
        return data, hashlib.sha256(data).hexdigest()

    def exists(self, key: str) -> bool:
        """Whether the object ``key`` exists."""
        with self._errors(key):
            try:
                self.fs.info(self.path(key))
            except FileNotFoundError:
                return False
            return True

    def info(self, key: str) -> ObjectInfo:
        with self._errors(key):
            raw = self.fs.info(self.path(key))
        return object_info(key, raw)

    # -- writing -----------------------------------------------------------
    def write(self, key: str, data: bytes) -> None:
        """Replace or create the object in one PUT (atomic on object stores)."""
        with self._errors(key):
            self.fs.pipe_file(self.path(key), data)

    def create(self, key: str, data: bytes) -> str | None:
        """Write the object only if there is none: its version token, or None if one exists."""
        if self.exists(key):  # not atomic here: documented in docs/object-storage.md
            return None
        self.write(key, data)
        return hashlib.sha256(data).hexdigest()

    def replace(self, key: str, data: bytes, version: str) -> str | None:
        """Write the object only if it is still at ``version``: the new token, or None."""
        try:
            current = self.read(key)
        except FileNotFoundError:
            return None
        if hashlib.sha256(current).hexdigest() != version:
            return None
        self.write(key, data)
        return hashlib.sha256(data).hexdigest()

    def delete(self, key: str, version: str | None = None) -> None:
        """Delete the object (if it is still at ``version``, where the storage can check)."""
        try:
            with self._errors(key):
                self._delete(key, version)
        except (FileNotFoundError, Precondition):
            pass

    def _delete(self, key: str, version: str | None) -> None:
        self.fs.rm_file(self.path(key))

    # -- listing -----------------------------------------------------------
    def pages(self, prefix: str = "") -> Iterator[list[ObjectInfo]]:
        """Every object under ``prefix``, in key order, a page at a time."""
        base = self.path(prefix)
        with self._errors(prefix):
            try:
                found = self.fs.find(base, detail=True, withdirs=False)
            except FileNotFoundError:
                return
        objects = [object_info(path[len(self.root) + 1:], raw)
                   for path, raw in sorted(found.items()) if path.startswith(self.root + "/")]
        for start in range(0, len(objects), LIST_PAGE_SIZE):
            yield objects[start:start + LIST_PAGE_SIZE]
