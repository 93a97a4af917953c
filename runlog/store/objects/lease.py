"""A lease: one writer at a time across hosts, on storage without file locks.

The lease is an object created only when absent (a conditional create). A lease
older than LEASE_SECONDS is taken over, with a conditional replace of the version
read, since its writer must have died; it is released with a conditional delete.
Keep host clocks in sync.

>>> with lease(storage, ".run-1.lock"):     # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ...errors import StorageError

if TYPE_CHECKING:
    from .base import ObjectStorage

# A lock object older than this is taken to belong to a writer that died.
LEASE_SECONDS = 120.0
# How long a writer waits for a held lock before giving up with an error.
LOCK_WAIT_SECONDS = 300.0


@contextlib.contextmanager
def lease(storage: ObjectStorage, key: str) -> Iterator[None]:
    """Hold the object ``key`` as a lock while the block runs."""
    import socket  # here: every `import runlog` would pay for these
    import uuid

    body = json.dumps({"owner": f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}",
                       "expires": time.time() + LEASE_SECONDS}).encode()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.01
    while True:
        version = storage.create(key, body)
        if version is None:
            version = _take_over_expired(storage, key, body)
        if version is not None:
            break
        if time.monotonic() > deadline:
            raise StorageError(f"{storage.url_of(key)}: held by another writer for {LOCK_WAIT_SECONDS:.0f}s; "
                               "if no writer is running, delete that object")
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.5)
    try:
        yield
    finally:
        storage.delete(key, version)


def _take_over_expired(storage: ObjectStorage, key: str, body: bytes) -> str | None:
    try:
        held, version = storage.read_versioned(key)
    except FileNotFoundError:
        return None
    try:
        expires = float(json.loads(held)["expires"])
    except (ValueError, KeyError, TypeError):
        expires = 0.0  # a torn or foreign lock object: treat as expired
    if time.time() <= expires:
        return None
    return storage.replace(key, body, version)
