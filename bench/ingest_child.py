"""One full ingest in a process of its own, so that its peak memory can be read.

    python -m bench.ingest_child STORE DB [--no-summaries]

Prints one JSON line: seconds (ingest() alone), the report's counts, and the
process's peak RSS before and after the ingest (ru_maxrss, KiB on Linux).
``--no-summaries`` ingests as runlog did before its run-level names and summaries
(schema 2) and its tiles of long series: flattening skips them, so their cost can be
measured beside it.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    store, db = sys.argv[1], sys.argv[2]
    from runlog.index import flatten, ingest  # imports first: their memory is reported apart
    from runlog.index.points import MetricPoints

    if "--no-summaries" in sys.argv[3:]:
        flatten.run_param_rows = MetricPoints.summaries = MetricPoints.tiles = lambda *args: []

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = ingest([store], db)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "seconds": seconds, "ingested": report.ingested, "failed": report.failed,
        "metric_points": report.metric_points, "maxrss_kib_after_imports": before, "maxrss_kib": peak,
    }))


if __name__ == "__main__":
    main()
