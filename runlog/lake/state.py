"""The lake's own records, under ``_runlog/`` (readers skip names starting with ``_``):

- ``_runlog/lake.json``: the descriptor (format, schema version, number of buckets),
  created once by the first builder (a conditional create: concurrent first builders
  agree on it);
- ``_runlog/state/b00042/<seq>-<digest>[-r][-e].json``: what bucket 42 holds, written
  after its Parquet files: every source (its key, size, fingerprint, content hash and
  run), and the sources that failed. The newest ``seq`` is the bucket's state. The
  name carries a digest of the sources' fingerprints, so a build sees from the listing
  alone which buckets changed: an unchanged lake costs one listing, no read;
  ``-r`` marks sources modified within two seconds of the build (confirmed by hash
  next time), ``-e`` sources that failed (reported again without reading them).

A run goes to the bucket :func:`bucket_of` its name (file or folder name without
``.json``): the same bucket whichever store, path or index it is read from.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import RunlogError
from .dest import LakeDest
from .tables import LAKE_VERSION, TABLES

DESCRIPTOR = "_runlog/lake.json"
STATE = "_runlog/state"
DEFAULT_BUCKETS = 64
FORMAT = "runlog-lake"


def bucket_of(name: str, buckets: int) -> int:
    """The bucket of a run's name (a stable hash, the same on every machine).

    >>> bucket_of("bench-000001", 64)
    33
    """
    return zlib.crc32(name.encode("utf-8", "surrogateescape")) % buckets


def bucket_name(bucket: int) -> str:
    return f"b{bucket:05d}"


def data_key(table: str, bucket: int) -> str:
    return f"{table}/part-{bucket_name(bucket)}.parquet"


def lock_key(bucket: int) -> str:
    return f"_runlog/locks/{bucket_name(bucket)}.lock"


@dataclass
class Entry:
    """One source in a bucket's state: a run read from it, or the error it gave."""

    key: str
    layout: str
    name: str
    size: int
    fp: int
    hash: str | None = None
    run_id: str | None = None
    points: int = 0
    error: str | None = None
    origin: str = ""  # the index file a run was read from (layout "index")

    def same_listing(self, size: int, fp: int) -> bool:
        return (self.size, self.fp) == (size, fp)


@dataclass
class BucketState:
    bucket: int
    seq: int = 0
    generation: str = ""
    racy: bool = False
    entries: list[Entry] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sources_digest((e.key, e.size, e.fp) for e in self.entries)

    def key(self) -> str:
        flags = ("-r" if self.racy else "") + ("-e" if any(e.error for e in self.entries) else "")
        return f"{STATE}/{bucket_name(self.bucket)}/{self.seq:010d}-{self.digest}{flags}.json"

    def to_json(self) -> bytes:
        body = {"format": FORMAT, "lake_version": LAKE_VERSION, "bucket": self.bucket, "seq": self.seq,
                "generation": self.generation, "racy": self.racy, "entries": [asdict(e) for e in self.entries]}
        return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Published:
    """What the listing of ``_runlog/state`` says of one bucket, without reading it."""

    key: str
    seq: int
    digest: str
    racy: bool
    errors: bool


def sources_digest(items) -> str:
    digest = hashlib.sha256()
    for key, size, fp in sorted(items):
        digest.update(f"{key}\0{size}\0{fp}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def published(dest: LakeDest, bucket: int | None = None) -> dict[int, list[Published]]:
    """Every bucket's state objects, newest last (one listing)."""
    prefix = STATE if bucket is None else f"{STATE}/{bucket_name(bucket)}"
    found: dict[int, list[Published]] = {}
    for key in dest.list(prefix):
        parts = key.split("/")
        if len(parts) != 4 or not parts[2].startswith("b") or not parts[3].endswith(".json"):
            continue
        seq, _, rest = parts[3][:-5].partition("-")
        digest, *flags = rest.split("-")
        try:
            number, order = int(parts[2][1:]), int(seq)
        except ValueError:
            continue
        found.setdefault(number, []).append(Published(key, order, digest, "r" in flags, "e" in flags))
    for items in found.values():
        items.sort(key=lambda p: p.seq)
    return found


def read_state(dest: LakeDest, bucket: int) -> tuple[BucketState, list[str]]:
    """The bucket's newest state, and the keys of every state object it has (to delete
    once a newer one is written)."""
    items = published(dest, bucket).get(bucket, [])
    if not items:
        return BucketState(bucket), []
    newest = items[-1]
    try:
        body: dict[str, Any] = json.loads(dest.read(newest.key))
        entries = [Entry(**e) for e in body["entries"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunlogError(f"{dest.url_of(newest.key)}: not a lake state ({exc}): delete it and build again") from None
    state = BucketState(bucket, newest.seq, body.get("generation", ""), bool(body.get("racy")), entries)
    return state, [p.key for p in items]


def open_descriptor(dest: LakeDest, buckets: int | None) -> int:
    """The lake's number of buckets: from its descriptor, or a new lake's (created now;
    of concurrent first builders, one creates it and the others read it)."""
    try:
        body = read_descriptor(dest)
    except NoLake:
        body = {"format": FORMAT, "lake_version": LAKE_VERSION, "buckets": buckets or DEFAULT_BUCKETS,
                "tables": list(TABLES)}
        if not dest.create(DESCRIPTOR, json.dumps(body, indent=2).encode()):
            body = read_descriptor(dest)
    if buckets is not None and buckets != body["buckets"]:
        raise RunlogError(f"{dest.url} has {body['buckets']} buckets; --buckets {buckets} applies only to a new "
                          "lake: leave it out, or build into a new DEST")
    return int(body["buckets"])


class NoLake(RunlogError):
    """No lake descriptor at the destination."""


def read_descriptor(dest: LakeDest) -> dict[str, Any]:
    try:
        body = json.loads(dest.read(DESCRIPTOR))
    except FileNotFoundError:
        raise NoLake(f"{dest.url} is not a runlog lake (no {DESCRIPTOR}): build one with "
                          f"`runlog lake build STORE {dest.url}`") from None
    except ValueError as exc:
        raise RunlogError(f"{dest.url_of(DESCRIPTOR)}: not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise RunlogError(f"{dest.url_of(DESCRIPTOR)}: not a runlog lake descriptor")
    if body.get("lake_version") != LAKE_VERSION:
        raise RunlogError(f"{dest.url} has lake schema version {body.get('lake_version')}, this runlog writes and "
                          f"reads version {LAKE_VERSION}: build a new lake into another DEST")
    return body
