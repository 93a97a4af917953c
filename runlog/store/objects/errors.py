"""Storage failures as one line naming the URL and the fix.

Every call an :class:`~runlog.store.objects.base.ObjectStorage` makes runs inside
:func:`storage_errors`: FileNotFoundError passes through for the caller to handle,
a lost conditional write becomes :class:`Precondition`, everything else a
:class:`~runlog.errors.StorageError` whose message says what to check.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ...errors import MissingExtra, StorageError

if TYPE_CHECKING:
    from .base import ObjectStorage


class Precondition(Exception):
    """A conditional write lost: someone else wrote the object first."""


@contextlib.contextmanager
def storage_errors(storage: ObjectStorage, key: str) -> Iterator[None]:
    """Translate what a storage call raises (see the module's docstring)."""
    try:
        yield
    except (FileNotFoundError, FileExistsError, StorageError, MissingExtra):
        raise
    except PermissionError as exc:
        raise denied(storage, key, exc) from None
    except Exception as exc:  # noqa: BLE001 - every other failure of a remote call
        if is_precondition(exc):
            raise Precondition() from None
        raise translate(storage, key, exc) from None


def translate(storage: ObjectStorage, key: str, exc: BaseException) -> StorageError:
    """One StorageError for a failed call: credentials, access, reachability, or the message."""
    if storage.is_denied(exc):
        return denied(storage, key, exc)
    missing = storage.credentials_problem(exc)
    if missing:
        return StorageError(f"{storage.url}: {missing}")
    name = type(exc).__name__
    if isinstance(exc, (ConnectionError, TimeoutError)) or "connect" in str(exc).lower() or \
            name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return StorageError(f"cannot reach {storage.url} ({short(exc)}): is the server up? Check {storage.reach_hint}")
    return StorageError(f"{storage.url_of(key)}: {short(exc)}")


def denied(storage: ObjectStorage, key: str, exc: BaseException) -> StorageError:
    return StorageError(f"{storage.url_of(key)}: access denied ({short(exc)}): check the credentials "
                        f"in the environment ({storage.credentials_hint})")


def is_precondition(exc: BaseException) -> bool:
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


def short(exc: BaseException) -> str:
    """One line of an exception's message, with any URL credentials redacted."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s\"']*@", r"\1***@", text)
    return text[:300]
