"""``runlog lake build``: list the sources, see from one listing of the lake which
buckets changed, and rebuild those, in worker processes.

>>> build_lake([".run_log_store"], "lake").summary()      # doctest: +SKIP
'13 runs written, 0 unchanged, 0 failed, 0 removed; 193 metric points in 9 buckets'
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..errors import BadRunLog, MissingExtra, UsageProblem
from ..store import is_url
from .bucket import BucketResult, BucketTask, build_bucket
from .dest import LakeDest
from .reader import SourceRef, discover
from .state import bucket_of, open_descriptor, published, read_state, sources_digest

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass
class LakeReport:
    """What one build did; ``errors`` holds ``(source, message)`` for every run that failed."""

    written: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    metric_points: int = 0
    buckets_written: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.written} runs written, {self.unchanged} unchanged, {self.failed} failed, "
                f"{self.removed} removed; {self.metric_points} metric points in {self.buckets_written} buckets")

    def add(self, result: BucketResult) -> None:
        self.written += result.read
        self.unchanged += result.unchanged
        self.removed += result.removed
        self.metric_points += result.points
        self.buckets_written += result.written
        self.failed += len(result.errors)
        self.errors += result.errors


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(1, 8)``: shards are numbered 1..N on the command line."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageProblem(f"--shard {text!r}: give I/N, e.g. 1/4 (this builder's share, 1 to N)") from None
    if not 1 <= index <= count:
        raise UsageProblem(f"--shard {text!r}: I must be 1 to N")
    return index - 1, count


def build_lake(sources: Iterable[str | os.PathLike], dest: str | os.PathLike, *, shard: tuple[int, int] = (0, 1),
               workers: int = 1, buckets: int | None = None, prune: bool = False, strict: bool = False,
               progress: ProgressCallback | None = None, endpoint_url: str | None = None) -> LakeReport:
    """Write the runs of ``sources`` (stores, run files, URLs, index files) as a Parquet lake
    under ``dest`` (a folder or URL); only the buckets whose sources changed are rewritten.

    ``shard=(i, n)`` takes buckets ``b % n == i`` only (0-based here), so ``n`` builders on
    different machines share the work without talking to each other. A bad run log is
    reported in ``errors`` and skipped, or raises :class:`~runlog.errors.BadRunLog` with ``strict``.
    """
    _require_extras()
    sources = [str(s) for s in sources]
    missing = [s for s in sources if not is_url(s) and not os.path.lexists(s)]
    if missing and len(missing) == len(sources):
        raise UsageProblem(f"nothing to build from: {', '.join(missing)} does not exist (give a store folder, a "
                           "run-log file, a chunked run folder, an index file or a URL)")
    lake = LakeDest(dest, endpoint_url)
    count = open_descriptor(lake, buckets)
    index, shards = shard
    if shards > count:
        raise UsageProblem(f"--shard {index + 1}/{shards}: the lake has {count} buckets, so at most {count} shards")
    report = LakeReport()
    grouped: dict[int, list[SourceRef]] = {}
    for ref in discover(sources, endpoint_url, lambda key, exc: _discovery_error(report, key, exc, strict)):
        bucket = bucket_of(ref.name, count)
        if bucket % shards == index:
            grouped.setdefault(bucket, []).append(ref)
    tasks = _changed(lake, grouped, shards, index, prune, report)
    now = datetime.now(timezone.utc)
    stamp = now.isoformat(timespec="microseconds")
    todo = [BucketTask(lake.url if lake.remote else str(lake.path), endpoint_url, b, grouped.get(b, []), prune,
                       strict, stamp, time.time_ns()) for b in tasks]
    total = sum(len(grouped.get(b, [])) for b in tasks)
    _run(todo, workers, report, progress, total)
    return report


def _require_extras() -> None:
    for module in ("pyarrow", "orjson"):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtra("lake", module) from None


def _discovery_error(report: LakeReport, key: str, exc: BadRunLog, strict: bool) -> None:
    report.failed += 1
    report.errors.append((key, exc.reason if exc.path == key else str(exc)))
    if strict:
        raise BadRunLog(key, exc.reason if exc.path == key else str(exc))


def _changed(lake: LakeDest, grouped: dict[int, list[SourceRef]], shards: int, index: int, prune: bool,
             report: LakeReport) -> list[int]:
    """The buckets of this shard to visit; for the others, their counts (and their
    recorded errors, read again) go to ``report`` without rewriting anything."""
    states = published(lake)
    todo = []
    for bucket in sorted(set(grouped) | {b for b in states if b % shards == index}):
        refs = grouped.get(bucket, [])
        newest = states.get(bucket, [None])[-1]
        same = newest is not None and sources_digest((r.key, r.size, r.fp) for r in refs) == newest.digest
        if not same or newest.racy or len(states[bucket]) > 1:
            todo.append(bucket)
            continue
        report.unchanged += len(refs)
        if newest.errors:  # report them again, as ingest does, without reading the sources
            state, _ = read_state(lake, bucket)
            failed = [(e.key, e.error) for e in state.entries if e.error]
            report.unchanged -= len(failed)
            report.failed += len(failed)
            report.errors += failed
    return todo


def _run(todo: list[BucketTask], workers: int, report: LakeReport, progress: ProgressCallback | None,
         total: int) -> None:
    done = 0

    def finished(task: BucketTask, result: BucketResult) -> None:
        nonlocal done
        report.add(result)
        done += len(task.refs)
        if progress:
            progress(done, total)
        if result.stopped:
            key, message = result.errors[-1]
            raise BadRunLog(key, message)

    if workers <= 1 or len(todo) <= 1:
        for task in todo:
            finished(task, build_bucket(task))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: the parent may hold threads (object storage clients), which fork would copy half-alive.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(build_bucket, task): task for task in todo}
        try:
            for future in as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
