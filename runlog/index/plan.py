"""Deciding what an ingest must read: a source whose size and mtime (or ETags) match
what the index recorded is unchanged, unless it may have changed within one mtime
tick of its last ingest (a "racy" source, as git calls them): then its content hash
decides.

>>> planner = Planner(conn, now_ns)                      # doctest: +SKIP
>>> planner.decide(Path("store/r1.json"), "file-system").action   # doctest: +SKIP
'unchanged'
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..store import RemoteSource
from .sources import Source, Stat, content_hash, stat_of

# A source whose newest mtime is this close to (or after) its last ingest may
# have changed within one mtime tick: confirm by hash.
RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True)
class Decision:
    """``action``: ``unchanged`` (nothing to do), ``restat`` (same content: record the new
    size/mtime), or ``read`` (read the source and replace its run's rows)."""

    action: str
    stat: Stat
    digest: str | None = None
    old_run_id: str | None = None


class Planner:
    """What to do with each source, from the ``sources`` table of the index."""

    def __init__(self, conn: sqlite3.Connection, now_ns: int):
        self.conn = conn
        self.now_ns = now_ns

    def decide(self, source: Source, layout: str) -> Decision:
        stat = stat_of(source, layout)
        known = self.conn.execute(
            "SELECT run_id, size, mtime_ns, hash, ingested_at FROM sources WHERE path = ?", (str(source),)
        ).fetchone()
        if known and self._unchanged(stat, known):
            return Decision("unchanged", stat)
        digest = content_hash(source, layout)
        if known and known[3] == digest:
            # Same content: remember the new size/mtime (or that it is no longer racy).
            if (stat.size, stat.mtime_ns) != tuple(known[1:3]) or stat.newest_ns < self.now_ns - RACY_WINDOW_NS:
                return Decision("restat", stat, digest)
            return Decision("unchanged", stat)
        return Decision("read", stat, digest, known[0] if known else None)

    def stale(self, source: RemoteSource) -> bool:
        """Whether ingest will download ``source`` (so it is worth fetching ahead)."""
        known = self.conn.execute("SELECT size, mtime_ns FROM sources WHERE path = ?", (str(source),)).fetchone()
        return known is None or known != (source.size, source.fingerprint) or not source.content_tagged

    def _unchanged(self, stat: Stat, known: tuple) -> bool:
        _, size, mtime_ns, _, ingested_at = known
        if size != stat.size or mtime_ns != stat.mtime_ns:
            return False
        try:
            last = datetime.fromisoformat(ingested_at)
        except (TypeError, ValueError):
            return False
        return stat.newest_ns < epoch_ns(last) - RACY_WINDOW_NS


def epoch_ns(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) * 1000
