"""Where run logs live: a folder or object storage, in runnable's two layouts,
crash-safe and safe for parallel writers; read in every released format.

Public API: :class:`RunLogStore` (``RunLogStore(folder_or_url, layout)`` gives the
store for it), :class:`RunInfo`, ``LAYOUTS``, ``DEFAULT_STORE``; reading one run:
:func:`read_run_file`, :func:`read_run_folder`; stores below a folder:
:func:`find_stores`, :func:`holds_runs`; names: :func:`validate_name`,
:func:`is_url`, :func:`redact`; ingest's view of a bucket: :class:`Listing`,
:class:`RemoteSource`. Object storage itself is in :mod:`runlog.store.objects`.

>>> store = RunLogStore(".run_log_store", layout="chunked-fs")   # doctest: +SKIP
>>> [info.run_id for info in store.list_runs()]                  # doctest: +SKIP
"""

from __future__ import annotations

from .base import DEFAULT_STORE, LAYOUTS, Layout, RunInfo, RunLogStore
from .files import atomic_write
from .jsonio import parse_json, read_json, regular_file_stat
from .listing import Listing, RemoteSource, remote_exists
from .local import LocalRunLogStore, find_stores, holds_runs, read_run_file, read_run_folder
from .names import is_url, redact, validate_name
from .remote import RemoteRunLogStore, iter_remote_sources

# RunLogStore(root) serves a folder or a URL with the class registered for it.
RunLogStore.kinds.update(folder=LocalRunLogStore, url=RemoteRunLogStore)

__all__ = [
    "DEFAULT_STORE", "LAYOUTS", "Layout", "Listing", "LocalRunLogStore", "RemoteRunLogStore", "RemoteSource",
    "RunInfo", "RunLogStore", "atomic_write", "find_stores", "holds_runs", "is_url", "iter_remote_sources", "parse_json", "read_json",
    "read_run_file", "read_run_folder", "redact", "regular_file_stat", "remote_exists", "validate_name",
]
