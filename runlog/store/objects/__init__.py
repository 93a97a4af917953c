"""Object storage for run-log stores: one class per provider over fsspec.

Public API: :func:`open_storage` (the storage for a URL), :class:`ObjectStorage`
(what every provider offers), :class:`ObjectInfo`; :class:`S3Storage` (s3://,
s3a://) and :class:`GCSStorage` (gs://, gcs://) add conditional writes and paged
listings; any other fsspec protocol (memory://...) gets the plain class.

>>> open_storage("s3://bucket/runs", endpoint_url="http://127.0.0.1:9000")   # doctest: +SKIP
"""

from __future__ import annotations

from ..names import url_scheme
from .base import ObjectInfo, ObjectStorage, list_folder
from .gcs import GCSStorage
from .s3 import S3Storage, endpoint_from_env

PROVIDERS: dict[str, type[ObjectStorage]] = {"s3": S3Storage, "s3a": S3Storage, "gs": GCSStorage, "gcs": GCSStorage}


def open_storage(url: str, endpoint_url: str | None = None) -> ObjectStorage:
    """The storage for ``url``, by its scheme."""
    return PROVIDERS.get(url_scheme(url), ObjectStorage)(url, endpoint_url)


__all__ = ["GCSStorage", "ObjectInfo", "ObjectStorage", "S3Storage", "endpoint_from_env", "list_folder", "open_storage"]
