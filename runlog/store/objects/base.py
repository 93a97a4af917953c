"""Object storage through fsspec: the few operations run-log stores and ingest need.

A store location is a folder or a URL (``s3://bucket/prefix``, ``gs://bucket/prefix``,
``memory://...``: any fsspec protocol that is installed). Whole-object PUTs are
atomic on object stores, so a reader sees the old or the new object, never a torn
one. Read-modify-writes use conditional writes where the storage has them (S3:
``If-None-Match: *`` to create, ``If-Match: <ETag>`` to replace; GCS:
``ifGenerationMatch=0`` to create, ``ifGenerationMatch=<generation>`` to replace);
elsewhere the check and the write are two calls, so two writers on different hosts
can race.

Credentials come from the usual environment (AWS_ACCESS_KEY_ID, AWS_PROFILE,
~/.aws/config...; GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default
login...): runlog never takes, prints or stores them. With STORAGE_EMULATOR_HOST set,
gs:// goes to that emulator without credentials, as Google's own client does. URLs
are shown with any ``user:password@`` part redacted.

>>> storage = ObjectStorage("memory://demo/store")            # doctest: +SKIP
>>> storage.create("r1.json", b"{}")                           # doctest: +SKIP
'...'
>>> storage.read("r1.json")                                    # doctest: +SKIP
b'{}'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import MissingExtra, RunlogError, StorageError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
# Objects per LIST request: S3's maximum; tests make it small to exercise paging.
LIST_PAGE_SIZE = 1000
# A lock object older than this is taken to belong to a writer that died.
LEASE_SECONDS = 120.0
# How long a writer waits for a held lock before giving up with an error.
LOCK_WAIT_SECONDS = 300.0
_S3_PROTOCOLS = ("s3", "s3a")
_GCS_PROTOCOLS = ("gs", "gcs")
_GCS_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS, or run gcloud auth application-default login"


def is_url(location: Any) -> bool:
    """True for ``scheme://...`` locations other than ``file://`` (those are plain folders).

    >>> is_url("s3://bucket/runs"), is_url("/tmp/store"), is_url("file:///tmp/x")
    (True, False, False)
    """
    if not isinstance(location, str):
        return False
    match = _SCHEME.match(location)
    return bool(match) and match.group(1).lower() != "file"


def redact(url: str) -> str:
    """``url`` without a ``user:password@`` part, fit for messages, run logs and the index.

    >>> redact("ftp://me:secret@host/runs")
    'ftp://***@host/runs'
    """
    return _USERINFO.sub(r"\1***@", url)


def endpoint_from_env() -> str | None:
    """The S3 endpoint the AWS tools would use: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


@dataclass(frozen=True)
class ObjectInfo:
    """One object: its key relative to the storage root, size, and a fingerprint of
    its content (the ETag where the storage has one, else size and mtime)."""

    key: str
    size: int
    tag: str
    content_tag: bool  # True when ``tag`` changes whenever the content does (an ETag)


class ObjectStorage:
    """An fsspec filesystem rooted at ``url``. Keys are ``/``-separated and relative to it."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        if not is_url(url):
            raise RunlogError(f"{url!r} is not a URL: use a folder path, or s3://bucket/prefix")
        protocol = _SCHEME.match(url).group(1).lower()
        self.url = redact(url).rstrip("/")
        self.s3 = protocol in _S3_PROTOCOLS
        self.gcs = protocol in _GCS_PROTOCOLS
        if self.s3:
            try:
                import s3fs  # noqa: F401
            except ImportError:
                raise MissingExtra("s3", "s3fs") from None
        if self.gcs:
            try:
                import gcsfs  # noqa: F401
            except ImportError:
                raise MissingExtra("gs", "gcsfs") from None
        try:
            import fsspec
        except ImportError:
            raise MissingExtra("s3", "fsspec") from None
        options: dict[str, Any] = {}
        if self.s3:
            endpoint = endpoint_url or endpoint_from_env()
            if endpoint:
                options["endpoint_url"] = endpoint
            # Other hosts write the same bucket: a cached listing would hide their objects.
            options["use_listings_cache"] = False
        elif endpoint_url:
            raise RunlogError(f"--endpoint-url is for s3:// stores, not {self.url}")
        emulator = self.gcs and bool(os.environ.get("STORAGE_EMULATOR_HOST"))
        if self.gcs:
            options["use_listings_cache"] = False
            if emulator:
                options["token"] = "anon"  # an emulator takes no credentials (google-cloud-storage does the same)
        try:
            if emulator:
                # An emulator has plain buckets only: gcsfs's base class, without gcsfs 2026's
                # bucket-type lookup over gRPC, which an emulator never answers (~60 s a call).
                from gcsfs.core import GCSFileSystem

                self.fs, root = GCSFileSystem(**options), GCSFileSystem._strip_protocol(url)
            else:
                self.fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise RunlogError(f"{self.url}: the {protocol}:// protocol needs a package that is not installed ({exc})") from None
        except ValueError as exc:
            if "not known" in str(exc) or "Protocol" in str(exc):
                raise RunlogError(f"{self.url}: fsspec does not know the protocol {protocol}://") from None
            raise RunlogError(f"{self.url}: {exc}") from None
        self.root = root.rstrip("/")
        if (self.s3 or self.gcs) and not self.root:
            raise RunlogError(f"{self.url}: name a bucket, e.g. {protocol}://bucket/runs")

    # -- names -------------------------------------------------------------
    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def url_of(self, key: str) -> str:
        """The (redacted) URL of ``key``, as shown in messages and kept in the index."""
        return f"{self.url}/{key}" if key else self.url

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
        if self.s3:
            with self._errors(key):
                # HEAD then GET: if another writer replaced the object in between we hold
                # the older ETag, so our conditional replace fails and is retried.
                etag = self.fs.info(self.path(key), refresh=True)["ETag"]
                return self.fs.cat_file(self.path(key)), etag
        if self.gcs:
            bucket, name = self._split(key)
            with self._errors(key):
                # One GET: the generation comes in a header of the same response as the bytes.
                headers, data = self.fs.call("GET", "b/{}/o/{}", bucket, name, alt="media")
                return data, headers["X-Goog-Generation"]
        data = self.read(key)
        return data, hashlib.sha256(data).hexdigest()

    def exists(self, key: str) -> bool:
        """Whether the object ``key`` exists (S3: one HEAD request)."""
        with self._errors(key):
            try:
                if self.s3:
                    bucket, name = self._split(key)
                    self.fs.call_s3("head_object", Bucket=bucket, Key=name)
                elif self.gcs:
                    self.fs.call("GET", "b/{}/o/{}", *self._split(key), json_out=True)
                else:
                    self.fs.info(self.path(key))
            except FileNotFoundError:
                return False
            return True

    def info(self, key: str) -> ObjectInfo:
        with self._errors(key):
            raw = self.fs.info(self.path(key), **({"refresh": True} if self.s3 else {}))
        return self._object_info(key, raw)

    # -- writing -----------------------------------------------------------
    def write(self, key: str, data: bytes) -> None:
        """Replace or create the object in one PUT (atomic on object stores)."""
        with self._errors(key):
            self.fs.pipe_file(self.path(key), data)

    def create(self, key: str, data: bytes) -> str | None:
        """Write the object only if there is none: its version token, or None if one exists."""
        if self.s3:
            bucket, name = self._split(key)
            try:
                with self._errors(key):
                    out = self.fs.call_s3("put_object", Bucket=bucket, Key=name, Body=data, IfNoneMatch="*")
            except (FileExistsError, _Precondition):
                return None
            return out["ETag"]
        if self.gcs:
            return self._gcs_upload(key, data, "0")
        if self.exists(key):  # not atomic: documented in the README
            return None
        self.write(key, data)
        return hashlib.sha256(data).hexdigest()

    def replace(self, key: str, data: bytes, version: str) -> str | None:
        """Write the object only if it is still at ``version``: the new token, or None."""
        if self.s3:
            bucket, name = self._split(key)
            try:
                with self._errors(key):
                    out = self.fs.call_s3("put_object", Bucket=bucket, Key=name, Body=data, IfMatch=version)
            except (FileNotFoundError, _Precondition):
                return None
            return out["ETag"]
        if self.gcs:
            return self._gcs_upload(key, data, version)
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
            if self.s3 and version:
                bucket, name = self._split(key)
                with self._errors(key):
                    self.fs.call_s3("delete_object", Bucket=bucket, Key=name, IfMatch=version)
            elif self.gcs and version:
                bucket, name = self._split(key)
                with self._errors(key):
                    self.fs.call("DELETE", "b/{}/o/{}", bucket, name, ifGenerationMatch=version)
            else:
                with self._errors(key):
                    self.fs.rm_file(self.path(key))
        except (FileNotFoundError, _Precondition):
            pass

    def _gcs_upload(self, key: str, data: bytes, generation: str) -> str | None:
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
        except (FileExistsError, _Precondition):
            return None
        return str(out["generation"])

    # -- listing -----------------------------------------------------------
    def list_folder(self, folder: str) -> list[ObjectInfo]:
        """The objects directly inside ``folder`` (a key prefix without the ``/``)."""
        found = []
        for page in self.pages(folder):
            for obj in page:
                rest = obj.key[len(folder) + 1:]
                if "/" not in rest:
                    found.append(obj)
        return found

    def pages(self, prefix: str = "") -> Iterator[list[ObjectInfo]]:
        """Every object under ``prefix``, in key order, a page at a time (S3: one LIST
        request per page, so memory stays flat however big the bucket is)."""
        if self.s3:
            yield from self._s3_pages(prefix)
            return
        if self.gcs:
            yield from self._gcs_pages(prefix)
            return
        base = self.path(prefix)
        with self._errors(prefix):
            try:
                found = self.fs.find(base, detail=True, withdirs=False)
            except FileNotFoundError:
                return
        objects = [self._object_info(path[len(self.root) + 1:], raw)
                   for path, raw in sorted(found.items()) if path.startswith(self.root + "/")]
        for start in range(0, len(objects), LIST_PAGE_SIZE):
            yield objects[start:start + LIST_PAGE_SIZE]

    def _s3_pages(self, prefix: str) -> Iterator[list[ObjectInfo]]:
        bucket, name = self._split(prefix)
        name = f"{name}/" if name else ""
        root_key = self._split("")[1]
        strip = len(root_key) + 1 if root_key else 0
        token = None
        while True:
            args = {"Bucket": bucket, "Prefix": name, "MaxKeys": LIST_PAGE_SIZE}
            if token:
                args["ContinuationToken"] = token
            page = self.list_page(prefix, args)
            yield [
                ObjectInfo(key=item["Key"][strip:], size=int(item["Size"]), tag=item["ETag"], content_tag=True)
                for item in page.get("Contents", [])
            ]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def _gcs_pages(self, prefix: str) -> Iterator[list[ObjectInfo]]:
        name = self._split(prefix)[1]
        root_key = self._split("")[1]
        strip = len(root_key) + 1 if root_key else 0
        args: dict[str, Any] = {"maxResults": LIST_PAGE_SIZE}
        if name:
            args["prefix"] = f"{name}/"
        while True:
            page = self.list_page(prefix, args)
            yield [self._object_info(item["name"][strip:], item) for item in page.get("items", [])]
            args["pageToken"] = page.get("nextPageToken")
            if not args["pageToken"]:
                return

    def list_page(self, prefix: str, args: dict[str, Any]) -> dict[str, Any]:
        """One LIST request (a separate method so tests can fail the storage mid-listing):
        S3's list_objects_v2 arguments, or GCS's objects.list query parameters."""
        with self._errors(prefix):
            try:
                if self.gcs:
                    return self.fs.call("GET", "b/{}/o", self._split(prefix)[0], json_out=True, **args)
                return self.fs.call_s3("list_objects_v2", **args)
            except FileNotFoundError:
                raise StorageError(f"{self.url}: no such bucket: create it, or check the URL") from None

    # -- locking -----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """A lease held across several reads and writes: the object ``key`` created with
        If-None-Match. A lease older than LEASE_SECONDS is taken over (its writer died)."""
        import socket  # here: every `import runlog` would pay for these
        import uuid

        body = json.dumps({"owner": f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}",
                           "expires": time.time() + LEASE_SECONDS}).encode()
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.01
        while True:
            version = self.create(key, body)
            if version is None:
                version = self._take_over_expired(key, body)
            if version is not None:
                break
            if time.monotonic() > deadline:
                raise StorageError(f"{self.url_of(key)}: held by another writer for {LOCK_WAIT_SECONDS:.0f}s; "
                                   "if no writer is running, delete that object")
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            self.delete(key, version)

    def _take_over_expired(self, key: str, body: bytes) -> str | None:
        try:
            held, version = self.read_versioned(key)
        except FileNotFoundError:
            return None
        try:
            expires = float(json.loads(held)["expires"])
        except (ValueError, KeyError, TypeError):
            expires = 0.0  # a torn or foreign lock object: treat as expired
        if time.time() <= expires:
            return None
        return self.replace(key, body, version)

    # -- internals ---------------------------------------------------------
    def _split(self, key: str) -> tuple[str, str]:
        path = self.path(key).lstrip("/")
        bucket, _, name = path.partition("/")
        return bucket, name

    def _object_info(self, key: str, raw: dict[str, Any]) -> ObjectInfo:
        size = int(raw.get("size") or 0)
        for field in ("ETag", "etag", "md5Hash", "generation"):
            if raw.get(field):
                return ObjectInfo(key, size, str(raw[field]), True)
        when = raw.get("mtime") or raw.get("LastModified") or raw.get("created") or raw.get("updated") or ""
        return ObjectInfo(key, size, f"{size}:{when}", False)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Storage failures as one-line StorageErrors naming the URL; FileNotFoundError
        and precondition failures pass through for the caller to handle."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, StorageError, MissingExtra):
            raise
        except PermissionError as exc:
            raise self._denied(key, exc) from None
        except Exception as exc:  # noqa: BLE001 - every other failure of a remote call
            if _is_precondition(exc):
                raise _Precondition() from None
            name = type(exc).__name__
            if self.gcs and str(exc).startswith("Forbidden"):  # gcsfs's 403
                raise self._denied(key, exc) from None
            if name in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"):
                raise StorageError(f"{self.url}: no credentials found: set AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE") from None
            if self.gcs and (name in ("DefaultCredentialsError", "RefreshError") or getattr(exc, "code", None) == 401):
                # gcsfs goes on without credentials when it finds none: GCS then answers 401.
                raise StorageError(f"{self.url}: no valid credentials ({_short(exc)}): set "
                                   f"{_GCS_CREDENTIALS}") from None
            if isinstance(exc, (ConnectionError, TimeoutError)) or "connect" in str(exc).lower() or \
                    name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
                check = "STORAGE_EMULATOR_HOST and the network" if self.gcs else "--endpoint-url / AWS_ENDPOINT_URL"
                raise StorageError(f"cannot reach {self.url} ({_short(exc)}): is the server up? "
                                   f"Check {check}") from None
            raise StorageError(f"{self.url_of(key)}: {_short(exc)}") from None

    def _denied(self, key: str, exc: BaseException) -> StorageError:
        where = _GCS_CREDENTIALS if self.gcs else "AWS_PROFILE, AWS_ACCESS_KEY_ID..."
        return StorageError(f"{self.url_of(key)}: access denied ({_short(exc)}): check the credentials "
                            f"in the environment ({where})")


class _Precondition(Exception):
    """A conditional write lost: someone else wrote the object first."""


def _is_precondition(exc: BaseException) -> bool:
    for err in (exc, exc.__cause__):
        if getattr(err, "code", None) in (412, "412"):  # gcsfs's HttpError (it raises FileExistsError for now)
            return True
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412") or status in (409, 412):
                return True
    return False


def _short(exc: BaseException) -> str:
    """One line of an exception's message, with any URL credentials redacted."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s\"']*@", r"\1***@", text)
    return text[:300]
