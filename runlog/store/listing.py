"""The runs in object storage as ingest sees them: streamed from a paged listing,
each with a fingerprint of its objects (ETags and sizes), so an unchanged run costs
no download.

>>> for source in Listing("s3://bucket/runs"):   # doctest: +SKIP
...     source.url, source.fingerprint
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import BadRunLog
from ..models import RunLog
from .base import Layout
from .objects import ObjectInfo, ObjectStorage, list_folder, open_storage
from .remote import iter_remote_sources, read_remote_file, read_remote_folder

if TYPE_CHECKING:
    from concurrent.futures import Future


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
        storage = open_storage(self.url, self.endpoint_url)
        if storage.url.endswith(".json"):
            parent_url, _, name = self.url.rstrip("/").rpartition("/")
            parent = open_storage(parent_url, self.endpoint_url)
            try:
                info = parent.info(name)
            except FileNotFoundError:
                raise BadRunLog(storage.url, "no such object") from None
            yield RemoteSource(parent, name, "file-system", [info])
            return
        if storage.exists("RunLog.json"):
            folder = [obj for obj in list_folder(storage, "")
                      if not obj.key.startswith(".") and not obj.key.endswith(".tmp")]
            yield RemoteSource(storage, "", "chunked-fs", folder)
            return
        for key, layout, objects in iter_remote_sources(storage):
            yield RemoteSource(storage, key, layout, objects)
        self.complete_prefix = storage.url


def remote_exists(url: str, endpoint_url: str | None = None) -> bool:
    """Whether a run's source (a run object, or a run folder's RunLog.json) still exists."""
    parent_url, _, name = url.rpartition("/")
    storage = open_storage(parent_url, endpoint_url)
    return storage.exists(name if name.endswith(".json") else f"{name}/RunLog.json")
