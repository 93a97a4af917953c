"""Building one bucket of a lake: under the bucket's lock, plan from its state what
to read, read the changed runs, keep the unchanged ones' rows from the bucket's
files, write one Parquet file per table, then publish the new state.

The publish protocol: each file is written whole (:class:`~.dest.LakeDest`), every
table's file first and ``runs`` last, then the state naming this generation; the
older states are deleted after. A build killed at any moment leaves every file whole
(old or new) and the old state; the next build sees the state's generation missing
from the files, reads every run of the bucket again, and completes it. Two builders
of one bucket take turns (the lock); the later one writes what it read.

>>> build_bucket(BucketTask("lake", None, 7, refs, prune=False, strict=False, stamp=..., now_ns=...))  # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import BadRunLog
from ..index.plan import RACY_WINDOW_NS
from .dest import LakeDest
from .reader import INDEX_LAYOUT, RunReader, SourceRef, read_index_rows
from .state import STATE, BucketState, Entry, bucket_name, data_key, lock_key, read_state
from .tables import TABLES, TableBuffers, arrow_schema

GENERATION = b"runlog.generation"


@dataclass
class BucketTask:
    dest: str
    endpoint_url: str | None
    bucket: int
    refs: list[SourceRef]
    prune: bool
    strict: bool
    stamp: str  # ingested_at of the runs read now
    now_ns: int


@dataclass
class BucketResult:
    bucket: int
    written: bool = False
    read: int = 0
    unchanged: int = 0
    removed: int = 0
    points: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False  # --strict met a bad run
    buffers: TableBuffers | None = None  # the rows read, until written (never sent back from a worker)


@dataclass
class _Plan:
    keep: list[Entry] = field(default_factory=list)
    read: list[SourceRef] = field(default_factory=list)
    removed: int = 0
    changed: bool = False  # anything to write, even without reading


def _racy(ref: SourceRef, now_ns: int) -> bool:
    return ref.newest_ns >= now_ns - RACY_WINDOW_NS


def _same_content(entry: Entry, ref: SourceRef) -> bool:
    """A local source whose listing changed (a new mtime) but not its content."""
    from ..index.sources import content_hash

    if "://" in ref.key or ref.layout == INDEX_LAYOUT or entry.hash is None or entry.size != ref.size:
        return False
    try:
        return content_hash(Path(ref.key), ref.layout) == entry.hash
    except OSError:
        return False


def plan(state: BucketState, refs: list[SourceRef], prune: bool, now_ns: int) -> _Plan:
    """What the bucket keeps, reads again, and loses."""
    listed = {ref.key: ref for ref in refs}
    out = _Plan()
    for entry in state.entries:
        ref = listed.pop(entry.key, None)
        if ref is None:
            if prune:
                out.removed += entry.run_id is not None
                out.changed = True  # an error entry dropped: a new state, the same files
            else:
                out.keep.append(entry)
            continue
        same = entry.same_listing(ref.size, ref.fp)
        if same and (not _racy(ref, now_ns) or _same_content(entry, ref)):
            out.keep.append(entry)
            out.changed |= state.racy and not _racy(ref, now_ns)
        elif not same and entry.error is None and _same_content(entry, ref):
            out.keep.append(replace(entry, size=ref.size, fp=ref.fp))
            out.changed = True
        else:
            out.read.append(ref)
    out.read += listed.values()
    out.changed |= bool(out.read)
    return out


def build_bucket(task: BucketTask) -> BucketResult:
    """Bring one bucket up to date with its sources (see the module's docstring)."""
    dest = LakeDest(task.dest, task.endpoint_url)
    result = BucketResult(task.bucket)
    with dest.lock(lock_key(task.bucket)):
        state, state_keys = read_state(dest, task.bucket)
        todo = plan(state, task.refs, task.prune, task.now_ns)
        result.removed = todo.removed
        if not todo.read and not todo.removed:  # the same runs: at most a new state (new mtimes, same content)
            result.unchanged = sum(1 for e in todo.keep if e.run_id)
            result.errors = [(e.key, e.error) for e in todo.keep if e.error]
            if todo.changed or len(state_keys) > 1:
                racy = any(_racy(r, task.now_ns) for r in task.refs)
                _publish_state(dest, BucketState(task.bucket, state.seq + 1, state.generation, racy,
                                                 sorted(todo.keep, key=lambda e: e.key)), state_keys)
            return result
        kept = _kept_rows(dest, state, todo)
        fresh = _read_runs(task, todo, kept, result)
        if result.stopped:
            result.buffers = None
            return result
        entries = sorted(todo.keep + fresh, key=lambda e: e.key)
        racy = any(_racy(r, task.now_ns) for r in task.refs)
        _publish(dest, task.bucket, state, state_keys, entries, racy, kept, result)
    return result


def _kept_rows(dest: LakeDest, state: BucketState, todo: _Plan) -> dict | None:
    """The rows of the runs the bucket keeps, from its files, or None (then ``todo.keep``
    moves to ``todo.read``) when a file is missing or of another generation than the state."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keep_ids = [e.run_id for e in todo.keep if e.run_id]
    if not keep_ids:
        return {}
    tables = {}
    try:
        for table in TABLES:
            found = pq.read_table(pa.BufferReader(dest.read(data_key(table, state.bucket))))
            if (found.schema.metadata or {}).get(GENERATION, b"").decode() != state.generation:
                raise FileNotFoundError(table)
            found = found.filter(pc.is_in(found["run_id"], value_set=pa.array(keep_ids, pa.string())))
            tables[table] = found.cast(arrow_schema(table))
    except (FileNotFoundError, pa.ArrowInvalid):
        todo.read += [_ref_of(e) for e in todo.keep if not e.error]
        todo.keep = [e for e in todo.keep if e.error]
        return None
    return tables


def _ref_of(entry: Entry) -> SourceRef:
    return SourceRef(entry.key, entry.layout, entry.name, entry.size, entry.fp, 0, entry.origin, entry.run_id or "")


def _read_runs(task: BucketTask, todo: _Plan, kept: dict | None, result: BucketResult) -> list[Entry]:
    """Read every run of ``todo.read`` into ``result``'s buffers; their state entries."""
    reader = RunReader(task.endpoint_url, task.stamp)
    owners = {e.run_id: e.key for e in todo.keep if e.run_id}
    buffers = result.buffers = TableBuffers()
    entries = []
    index_refs = [r for r in todo.read if r.layout == INDEX_LAYOUT]
    for origin in sorted({r.origin for r in index_refs}):
        refs = [r for r in index_refs if r.origin == origin and r.run_id not in owners]
        before = len(buffers.columns["metrics"][3])
        read_index_rows(origin, [r.run_id for r in refs], buffers)
        result.read += len(refs)
        result.points += len(buffers.columns["metrics"][3]) - before
        for ref in refs:
            owners[ref.run_id] = ref.key
            entries.append(Entry(ref.key, ref.layout, ref.name, ref.size, ref.fp, None, ref.run_id, 0, None, origin))
    for ref in sorted((r for r in todo.read if r.layout != INDEX_LAYOUT), key=lambda r: (r.name, r.key)):
        try:
            rows, run_id, points, digest = reader.read(ref)
            if run_id in owners:
                raise BadRunLog(ref.key, f"run_id {run_id!r} is already in the lake from {owners[run_id]}: "
                                         "remove one of the two")
        except BadRunLog as exc:
            message = exc.reason if exc.path == ref.key else str(exc)
            result.errors.append((ref.key, message))
            entries.append(Entry(ref.key, ref.layout, ref.name, ref.size, ref.fp, error=message))
            if task.strict:
                result.stopped = True
                return entries
            continue
        owners[run_id] = ref.key
        buffers.merge(rows)
        result.read += 1
        result.points += points
        entries.append(Entry(ref.key, ref.layout, ref.name, ref.size, ref.fp, digest, run_id, points))
    result.unchanged = sum(1 for e in todo.keep if e.run_id and e.key in {r.key for r in task.refs})
    return entries


def _publish(dest: LakeDest, bucket: int, old: BucketState, old_keys: list[str], entries: list[Entry],
             racy: bool, kept: dict, result: BucketResult) -> None:
    """Write the bucket's files (``runs`` last), then its new state, then drop the old states."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    generation = uuid.uuid4().hex
    order = (*(t for t in TABLES if t != "runs"), "runs")
    dest.clean_temporary([data_key(table, bucket) for table in order])
    if not any(e.run_id for e in entries):
        for table in order:
            dest.delete(data_key(table, bucket))
    else:
        files = []
        for table in order:
            parts = [kept[table]] if kept else []
            parts.append(result.buffers.to_arrow(table))
            data = pa.concat_tables(parts)
            data = data.replace_schema_metadata({**data.schema.metadata, GENERATION: generation.encode(),
                                                 b"runlog.bucket": str(bucket).encode()})
            sink = pa.BufferOutputStream()
            strings = [f.name for f in data.schema if f.type == pa.string()]  # floats gain nothing from a dictionary
            pq.write_table(data, sink, compression="zstd", use_dictionary=strings)
            files.append((data_key(table, bucket), sink.getvalue().to_pybytes()))
        dest.put_many(files)
    result.buffers = None
    _publish_state(dest, BucketState(bucket, old.seq + 1, generation, racy, entries), old_keys)
    result.written = True


def _publish_state(dest: LakeDest, state: BucketState, old_keys: list[str]) -> None:
    """The bucket's new state (none for a bucket left empty), then the older ones deleted."""
    dest.clean_temporary([f"{STATE}/{bucket_name(state.bucket)}/"])
    if state.entries:
        dest.put(state.key(), state.to_json())
    for key in old_keys:
        if key != state.key():
            dest.delete(key)
