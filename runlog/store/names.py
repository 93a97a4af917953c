"""Names and locations: run, step and branch names that cannot escape a store folder,
and store locations that are URLs (with any credentials kept out of messages).

>>> validate_name("blazing-colden-0544")
'blazing-colden-0544'
>>> is_url("s3://bucket/runs"), is_url("/tmp/store"), is_url("file:///tmp/x")
(True, False, False)
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidName

MAX_NAME_BYTES = 200  # leaves room for "StepLog-" + "-<time_ns>.json" under NAME_MAX (255)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def validate_name(value: Any, what: str = "run_id") -> str:
    """Refuse a name that could escape the store folder or break a file name.

    >>> validate_name("../etc")
    Traceback (most recent call last):
    ...
    runlog.errors.InvalidName: invalid run_id '../etc': must not contain '/'
    """
    if not isinstance(value, str) or not value:
        raise InvalidName(f"invalid {what} {value!r}: must be a non-empty string")
    for bad, label in (("/", "'/'"), ("\\", "'\\'"), ("..", "'..'")):
        if bad in value:
            raise InvalidName(f"invalid {what} {value!r}: must not contain {label}")
    if _CONTROL.search(value):
        raise InvalidName(f"invalid {what} {value!r}: must not contain NUL, newlines or control characters")
    if value.startswith(".") or value != value.strip():
        raise InvalidName(f"invalid {what} {value!r}: must not start with '.', nor start or end with a space")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"invalid {what} {value[:40]!r}...: longer than {MAX_NAME_BYTES} bytes")
    return value


def is_url(location: Any) -> bool:
    """True for ``scheme://...`` locations other than ``file://`` (those are plain folders)."""
    if not isinstance(location, str):
        return False
    match = _SCHEME.match(location)
    return bool(match) and match.group(1).lower() != "file"


def url_scheme(url: str) -> str:
    """The lower-cased scheme of a URL: ``"s3"`` for ``s3://bucket``."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def redact(url: str) -> str:
    """``url`` without a ``user:password@`` part, fit for messages, run logs and the index.

    >>> redact("ftp://me:secret@host/runs")
    'ftp://***@host/runs'
    """
    return _USERINFO.sub(r"\1***@", url)
