"""S3 and S3-compatible servers (AWS, MinIO, Ceph, moto) through s3fs, with
conditional writes: ``If-None-Match: *`` to create, ``If-Match: <ETag>`` to replace
and to delete a lease; one HEAD to check an object, one LIST request per page.

Credentials come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE,
~/.aws/config...); the server from ``endpoint_url``, else AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ...errors import MissingExtra, RunlogError, StorageError
from . import base
from .base import ObjectInfo, ObjectStorage, object_info
from .errors import Precondition


def endpoint_from_env() -> str | None:
    """The S3 endpoint the AWS tools would use: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


class S3Storage(ObjectStorage):
    reach_hint = "--endpoint-url / AWS_ENDPOINT_URL"
    credentials_hint = "AWS_PROFILE, AWS_ACCESS_KEY_ID..."

    def _connect(self, url: str, endpoint_url: str | None) -> tuple[Any, str]:
        try:
            import s3fs  # noqa: F401
        except ImportError:
            raise MissingExtra("s3", "s3fs") from None
        import fsspec

        options: dict[str, Any] = {"use_listings_cache": False}  # other hosts write the same bucket
        endpoint = endpoint_url or endpoint_from_env()
        if endpoint:
            options["endpoint_url"] = endpoint
        fs, root = fsspec.core.url_to_fs(url, **options)
        if not root.strip("/"):
            raise RunlogError(f"{self.url}: name a bucket, e.g. {self.protocol}://bucket/runs")
        return fs, root

    def credentials_problem(self, exc: BaseException) -> str | None:
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"):
            return "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        return None

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        with self._errors(key):
            # HEAD then GET: if another writer replaced the object in between we hold
            # the older ETag, so our conditional replace fails and is retried.
            etag = self.fs.info(self.path(key), refresh=True)["ETag"]
            return self.fs.cat_file(self.path(key)), etag

    def exists(self, key: str) -> bool:
        bucket, name = self._split(key)
        with self._errors(key):
            try:
                self.fs.call_s3("head_object", Bucket=bucket, Key=name)
            except FileNotFoundError:
                return False
            return True

    def info(self, key: str) -> ObjectInfo:
        with self._errors(key):
            raw = self.fs.info(self.path(key), refresh=True)
        return object_info(key, raw)

    def create(self, key: str, data: bytes) -> str | None:
        try:
            return self._put(key, data, IfNoneMatch="*")
        except (FileExistsError, Precondition):
            return None

    def replace(self, key: str, data: bytes, version: str) -> str | None:
        try:
            return self._put(key, data, IfMatch=version)
        except (FileNotFoundError, Precondition):  # deleted, or replaced by another writer
            return None

    def _put(self, key: str, data: bytes, **condition: str) -> str:
        bucket, name = self._split(key)
        with self._errors(key):
            return self.fs.call_s3("put_object", Bucket=bucket, Key=name, Body=data, **condition)["ETag"]

    def _delete(self, key: str, version: str | None) -> None:
        if not version:
            return super()._delete(key, version)
        bucket, name = self._split(key)
        self.fs.call_s3("delete_object", Bucket=bucket, Key=name, IfMatch=version)

    def pages(self, prefix: str = "") -> Iterator[list[ObjectInfo]]:
        """One list_objects_v2 request per page, so memory stays flat however big the bucket."""
        bucket, name = self._split(prefix)
        root_key = self._split("")[1]
        strip = len(root_key) + 1 if root_key else 0
        token = None
        while True:
            args: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{name}/" if name else "", "MaxKeys": base.LIST_PAGE_SIZE}
            if token:
                args["ContinuationToken"] = token
            page = self.list_page(prefix, args)
            yield [ObjectInfo(key=item["Key"][strip:], size=int(item["Size"]), tag=item["ETag"], content_tag=True)
                   for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def list_page(self, prefix: str, args: dict[str, Any]) -> dict[str, Any]:
        """One LIST request (a method of its own so tests can fail the storage mid-listing)."""
        with self._errors(prefix):
            try:
                return self.fs.call_s3("list_objects_v2", **args)
            except FileNotFoundError:
                raise StorageError(f"{self.url}: no such bucket: create it, or check the URL") from None
