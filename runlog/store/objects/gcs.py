"""Google Cloud Storage through gcsfs, with generation preconditions: create with
``ifGenerationMatch=0``, replace and delete a lease with ``ifGenerationMatch=<the
generation read>`` (the bytes and their generation come from one GET); HTTP 412
when another writer got there first. One LIST request per page.

Credentials come from Google's Application Default Credentials. With
STORAGE_EMULATOR_HOST set, gs:// goes to that emulator without credentials, as
Google's own client does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from ...errors import MissingExtra, RunlogError, StorageError
from . import base
from .base import ObjectInfo, ObjectStorage, object_info
from .errors import Precondition, short

CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS, or run gcloud auth application-default login"


class GCSStorage(ObjectStorage):
    reach_hint = "STORAGE_EMULATOR_HOST and the network"
    credentials_hint = CREDENTIALS

    def _connect(self, url: str, endpoint_url: str | None) -> tuple[Any, str]:
        try:
            import gcsfs  # noqa: F401
        except ImportError:
            raise MissingExtra("gs", "gcsfs") from None
        if endpoint_url:
            raise RunlogError(f"--endpoint-url is for s3:// stores, not {self.url}")
        options: dict[str, Any] = {"use_listings_cache": False}  # other hosts write the same bucket
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            # An emulator takes no credentials (google-cloud-storage does the same) and has
            # plain buckets only: gcsfs's base class, without gcsfs 2026's bucket-type lookup
            # over gRPC, which an emulator never answers (~60 s a call).
            from gcsfs.core import GCSFileSystem

            fs, root = GCSFileSystem(token="anon", **options), GCSFileSystem._strip_protocol(url)
        else:
            import fsspec

            fs, root = fsspec.core.url_to_fs(url, **options)
        if not root.strip("/"):
            raise RunlogError(f"{self.url}: name a bucket, e.g. {self.protocol}://bucket/runs")
        return fs, root

    def is_denied(self, exc: BaseException) -> bool:
        return str(exc).startswith("Forbidden")  # gcsfs's 403

    def credentials_problem(self, exc: BaseException) -> str | None:
        # gcsfs goes on without credentials when it finds none: GCS then answers 401.
        if type(exc).__name__ in ("DefaultCredentialsError", "RefreshError") or getattr(exc, "code", None) == 401:
            return f"no valid credentials ({short(exc)}): set {CREDENTIALS}"
        return None

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        bucket, name = self._split(key)
        with self._errors(key):
            # One GET: the generation comes in a header of the same response as the bytes.
            headers, data = self.fs.call("GET", "b/{}/o/{}", bucket, name, alt="media")
            return data, headers["X-Goog-Generation"]

    def exists(self, key: str) -> bool:
        with self._errors(key):
            try:
                self.fs.call("GET", "b/{}/o/{}", *self._split(key), json_out=True)
            except FileNotFoundError:
                return False
            return True

    def create(self, key: str, data: bytes) -> str | None:
        return self._upload(key, data, "0")

    def replace(self, key: str, data: bytes, version: str) -> str | None:
        return self._upload(key, data, version)

    def _upload(self, key: str, data: bytes, generation: str) -> str | None:
        """One multipart upload with ``ifGenerationMatch`` (0: only if there is no object):
        the new generation, or None when GCS answered 412 (gcsfs's FileExistsError)."""
        import uuid

        bucket, name = self._split(key)
        boundary = uuid.uuid4().hex  # never inside the data: a fixed one could be
        body = b"".join([
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            json.dumps({"name": name}).encode(),
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--".encode(),
        ])
        upload = self.fs.base.replace("/storage/v1/", "/upload/storage/v1/") + "b/{}/o"
        try:
            with self._errors(key):
                out = self.fs.call("POST", upload, bucket, uploadType="multipart", ifGenerationMatch=generation,
                                   headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
                                   data=body, json_out=True)
        except (FileExistsError, Precondition):
            return None
        return str(out["generation"])

    def _delete(self, key: str, version: str | None) -> None:
        if not version:
            return super()._delete(key, version)
        bucket, name = self._split(key)
        self.fs.call("DELETE", "b/{}/o/{}", bucket, name, ifGenerationMatch=version)

    def pages(self, prefix: str = "") -> Iterator[list[ObjectInfo]]:
        """One objects.list request per page, so memory stays flat however big the bucket."""
        name = self._split(prefix)[1]
        root_key = self._split("")[1]
        strip = len(root_key) + 1 if root_key else 0
        args: dict[str, Any] = {"maxResults": base.LIST_PAGE_SIZE}
        if name:
            args["prefix"] = f"{name}/"
        while True:
            page = self.list_page(prefix, args)
            yield [object_info(item["name"][strip:], item) for item in page.get("items", [])]
            args["pageToken"] = page.get("nextPageToken")
            if not args["pageToken"]:
                return

    def list_page(self, prefix: str, args: dict[str, Any]) -> dict[str, Any]:
        """One LIST request (a method of its own so tests can fail the storage mid-listing)."""
        with self._errors(prefix):
            try:
                return self.fs.call("GET", "b/{}/o", self._split(prefix)[0], json_out=True, **args)
            except FileNotFoundError:
                raise StorageError(f"{self.url}: no such bucket: create it, or check the URL") from None
