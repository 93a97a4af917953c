"""Finding the runs a lake is built from, and reading one into rows.

A SOURCE is a run-log store (a folder, a run file, a chunked run folder, or the URL
of one; found as ``runlog ingest`` finds them) or an index file (its tables are
read, read-only). Each run becomes a :class:`SourceRef`: small, picklable (it goes
to a worker process), with the fingerprint the listing gave.

A run-log file is parsed by orjson (the standard ``json`` where orjson refuses it, or
for integers too long for it) and flattened straight from its JSON by
:func:`runlog.index.flatten.flatten_json`, as ingest flattens it; a chunked run folder,
or a log of an unusual shape, goes through the models first
(:func:`runlog.index.flatten.flatten_run`).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadRunLog, MissingExtra
from ..index.flatten import FlatRun, Unusual, flatten_json, flatten_run
from ..index.sources import Discovery, stat_of
from ..store import RemoteSource, parse_json, read_run_folder, regular_file_stat
from ..store.jsonio import run_from_json
from .tables import COLUMNS, TableBuffers

INDEX_LAYOUT = "index"
_DIGITS_TO_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))


@dataclass(frozen=True)
class SourceRef:
    """One run's source: ``key`` is its path or URL (``runs.source_path``), ``name`` the
    run's file or folder name (its bucket), ``fp`` a fingerprint of its content from
    the listing (mtime, or ETags), ``newest_ns`` its newest mtime (0 when ``fp`` is a
    content tag). From an index file: ``origin`` is the index, ``run_id`` the run."""

    key: str
    layout: str
    name: str
    size: int
    fp: int
    newest_ns: int
    origin: str = ""
    run_id: str = ""


def run_name(key: str) -> str:
    """``.../bench-000001.json`` and ``.../bench-000001`` are both ``bench-000001``."""
    return key.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")


def is_index_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a SQLite file (an index to read rather than run logs)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def discover(paths: list, endpoint_url: str | None, on_error: Callable[[str, BadRunLog], None]) -> Iterator[SourceRef]:
    """Every run under ``paths`` (stores, run files, run folders, URLs, index files)."""
    stores = [p for p in paths if not is_index_file(p)]
    for path in paths:
        if path not in stores:
            yield from index_sources(Path(path))
    for source, layout in Discovery(endpoint_url, on_error).items(stores):
        key = str(source)
        try:
            stat = stat_of(source, layout)
        except BadRunLog as exc:
            on_error(key, exc)
            continue
        except OSError as exc:
            on_error(key, BadRunLog(key, f"cannot be read ({exc.strerror or exc})"))
            continue
        yield SourceRef(key, layout, run_name(key), stat.size, stat.mtime_ns, stat.newest_ns)


def index_sources(path: Path) -> Iterator[SourceRef]:
    """The runs of an index file, fingerprinted by what the index knows of their sources."""
    from ..index.db import open_db

    db = open_db(path, readonly=True)
    try:
        rows = db.conn.execute(
            "SELECT r.run_id, r.source_path, r.ingested_at, s.size, s.hash FROM runs r "
            "LEFT JOIN sources s ON s.path = r.source_path ORDER BY r.run_id").fetchall()
    finally:
        db.close()
    origin = str(path.absolute())
    for run_id, source_path, ingested_at, size, digest in rows:
        fp = int.from_bytes(hashlib.sha256(f"{digest}\0{ingested_at}".encode()).digest()[:8], "big") >> 1
        yield SourceRef(source_path or f"{origin}#{run_id}", INDEX_LAYOUT, run_name(source_path or run_id),
                        size or 0, fp, 0, origin, run_id)


# -- reading one run ----------------------------------------------------------------


class RunReader:
    """Reads runs into a bucket's :class:`TableBuffers`, remembering the storages it opened."""

    def __init__(self, endpoint_url: str | None, ingested_at: str):
        self.endpoint_url = endpoint_url
        self.ingested_at = ingested_at
        self.storages: dict[str, Any] = {}

    def read(self, ref: SourceRef) -> tuple[TableBuffers, str, int, str]:
        """The run's rows: ``(rows, run_id, metric points, content hash)``, or BadRunLog."""
        rows = TableBuffers()
        try:
            run_id, points, digest = self._read(ref, rows)
        except (BadRunLog, MissingExtra):
            raise
        except OSError as exc:
            raise BadRunLog(ref.key, f"cannot be read ({exc.strerror or exc})") from None
        except RecursionError:
            raise BadRunLog(ref.key, "is nested too deeply to index") from None
        except (ValueError, OverflowError, TypeError) as exc:
            raise BadRunLog(ref.key, f"holds a value Parquet cannot store ({exc})") from None
        return rows, run_id, points, digest

    def _read(self, ref: SourceRef, into: TableBuffers) -> tuple[str, int, str]:
        where = {"layout": ref.layout, "source_path": ref.key, "ingested_at": self.ingested_at}
        if ref.layout == "chunked-fs":
            run, digest = self._read_folder(ref)
            return _checked_add(into, flatten_run(run, **where)) + (digest,)
        raw = self._bytes(ref)
        digest = hashlib.sha256(raw).hexdigest()
        data, fast_parse = _parse(raw, ref.key)
        try:
            flat = flatten_json(data, **where)
        except Unusual:
            return _checked_add(into, flatten_run(run_from_json(data, ref.key), **where)) + (digest,)
        if fast_parse and _fits(flat):
            into.add_run(flat)
            return flat.run_id, flat.metric_count, digest
        return _checked_add(into, flat) + (digest,)

    def _bytes(self, ref: SourceRef) -> bytes:
        if "://" not in ref.key:
            regular_file_stat(Path(ref.key))
            return Path(ref.key).read_bytes()
        storage, name = self._storage(ref.key)
        try:
            return storage.read(name)
        except FileNotFoundError:
            raise BadRunLog(ref.key, "was deleted after it was listed: build again") from None

    def _read_folder(self, ref: SourceRef):
        from ..index.sources import content_hash

        if "://" not in ref.key:
            return read_run_folder(Path(ref.key)), content_hash(Path(ref.key), ref.layout)
        storage, name = self._storage(ref.key)
        try:
            return RemoteSource(storage, name, "chunked-fs", []).fetch()
        except FileNotFoundError:
            raise BadRunLog(ref.key, "was deleted after it was listed: build again") from None

    def _storage(self, url: str):
        from ..store.objects import open_storage

        parent, _, name = url.rstrip("/").rpartition("/")
        if parent not in self.storages:
            self.storages[parent] = open_storage(parent, self.endpoint_url)
        return self.storages[parent], name


def _parse(raw: bytes, key: str) -> tuple[Any, bool]:
    """``(parsed JSON, whether orjson parsed it)``; the standard parser where orjson
    would differ (NaN literals, lone surrogates, integers past 64 bits)."""
    import orjson

    if not _long_integer(raw):
        try:
            return orjson.loads(raw), True
        except orjson.JSONDecodeError:
            pass
    return parse_json(raw, key), False


def _long_integer(raw: bytes) -> bool:
    """Whether the JSON may hold an integer literal of 20 digits or more, which orjson would
    read as a float: a run of 20 digits where JSON places a number (after ``:``, ``[`` or
    ``,``, maybe a minus sign). Digits inside a string rarely match, and then only cost speed."""
    digits = raw.translate(_DIGITS_TO_ZERO)  # every digit a "0", everything else a space
    at = digits.find(b"0" * 20)
    while at >= 0:
        before = at - 1
        while before >= 0 and raw[before] in b" \t\r\n-":
            before -= 1
        if before < 0 or raw[before] in b":[,":
            return True
        end = digits.find(b" ", at)
        at = -1 if end < 0 else digits.find(b"0" * 20, end)
    return False


def _fits(flat: FlatRun) -> bool:
    """Whether the integers Parquet keeps as int64 fit (the only values orjson may give that do not)."""
    numbers = [row[2] for row in flat.attempts] + [row[2] for row in flat.params] + \
              [row[2] for row in flat.code_identities]
    return all(-(1 << 63) <= n < (1 << 63) for n in numbers)


def _checked_add(into: TableBuffers, flat: FlatRun) -> tuple[str, int]:
    """Add a run whose values may not fit Parquet (through the models, or the standard parser)
    to its own buffers, and convert them once: a value Arrow cannot hold fails this run alone."""
    into.add_run(flat)
    for table in COLUMNS:
        into.to_arrow(table)  # raises on a value Arrow cannot hold
    return flat.run_id, flat.metric_count


def read_index_rows(origin: str, run_ids: list[str], into: TableBuffers) -> None:
    """The rows of ``run_ids`` from the index file ``origin``, as they are there."""
    from ..index.db import open_db

    db = open_db(origin, readonly=True)
    try:
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for table, columns in COLUMNS.items():
                rows = db.conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE run_id IN ({marks})", chunk)
                into.add_rows(table, rows.fetchall())
    except sqlite3.Error as exc:
        raise BadRunLog(origin, f"cannot be read as an index ({exc})") from None
    finally:
        db.close()
