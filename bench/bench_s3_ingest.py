"""Ingest from S3: time and memory against the number of runs in the bucket.

    .venv/bin/python -m bench.bench_s3_ingest [--runs 2000 8000] [--listed 10000 100000]

A real S3 API server (moto, as in the tests) on a loopback port holds N small
file-system runs. For each N: a full ingest, a re-ingest of the unchanged bucket
(GET requests counted from the server's log: 0 means nothing was downloaded),
and the peak Python memory of the full ingest (tracemalloc). Flat memory shows as
a peak that does not grow with N.

``--listed``: a bucket far bigger than the server could hold. The listing's pages
are made up (tests/s3_server.py's MadeUpListing) and the index knows every run
already, so an ingest streams N listed runs and downloads none: its time and peak
memory against the baseline of walking the same listing alone, in the same run.
Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from s3_server import TEST_ENV, MadeUpListing, S3Server  # noqa: E402

from runlog.index import ingest  # noqa: E402
from runlog.store.objects import S3Storage, open_storage  # noqa: E402
from runlog.store import iter_remote_sources  # noqa: E402
from runlog.models import RunLog, StepAttempt, StepLog  # noqa: E402


def run_json(run_id: str) -> bytes:
    """A finished run of 3 steps with a 20-point series each (~8 KB)."""
    steps = {}
    for n in range(3):
        attempt = StepAttempt(attempt_number=1, status="SUCCESS", start_time="2024-01-01 00:00:00.000000",
                              end_time="2024-01-01 00:00:01.000000")
        steps[f"s{n}"] = StepLog(name=f"s{n}", internal_name=f"s{n}", status="SUCCESS", attempts=[attempt],
                                 user_defined_metrics={"loss": {str(i): 1 / (i + 1) for i in range(20)}})
    return RunLog(run_id=run_id, status="SUCCESS", tag="bench", steps=steps).to_json().encode()


def fill(server: S3Server, bucket: str, prefix: str, start: int, stop: int) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: client.put_object(Bucket=bucket, Key=f"{prefix}/run-{i:07d}.json",
                                                  Body=run_json(f"run-{i:07d}")), range(start, stop)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, nargs="*", default=[2000, 8000])
    parser.add_argument("--listed", type=int, nargs="*", default=[10_000, 100_000])
    args = parser.parse_args()
    os.environ.update(TEST_ENV)
    with tempfile.TemporaryDirectory(prefix="runlog-bench-s3-") as scratch:
        server = S3Server(Path(scratch) / "s3")
        server.start()
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint
        try:
            import boto3

            boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket="bench")
            # Warm up first: botocore loads its service models (~20 MiB) on first use.
            fill(server, "bench", "warm", 0, 1)
            ingest(["s3://bench/warm"], Path(scratch) / "warm.db")
            have = 0
            if args.runs:
                print(f"{'runs':>8} {'ingest s':>9} {'runs/s':>8} {'peak MiB':>9} {'B/run':>7} {'re-ingest s':>12} {'GETs':>5}")
            for n in sorted(args.runs):
                fill(server, "bench", "store", have, n)
                have = n
                db = Path(scratch) / f"i{n}.db"
                tracemalloc.start()
                began = time.perf_counter()
                report = ingest(["s3://bench/store"], db)
                took = time.perf_counter() - began
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                assert report.ingested == n, report.summary()
                mark = server.mark()
                began = time.perf_counter()
                again = ingest(["s3://bench/store"], db)
                retook = time.perf_counter() - began
                fetched = [p for m, p, _ in server.requests_since(mark) if m == "GET" and "?" not in p]
                assert again.unchanged == n
                print(f"{n:>8} {took:>9.1f} {n / took:>8.0f} {peak / 2**20:>9.1f} {peak / n:>7.0f} "
                      f"{retook:>12.1f} {len(fetched):>5}", flush=True)
            print()
            if args.listed:
                print(f"{'listed':>8} {'walk s':>7} {'ingest s':>9} {'x walk':>7} {'peak MiB':>9}")
            for n in sorted(args.listed):
                listed(n, Path(scratch) / f"listed{n}.db")
        finally:
            server.stop()


def listed(n: int, db: Path) -> None:
    """Re-ingest of a made-up listing of n unchanged runs, against walking the listing."""
    listing = MadeUpListing(f"s3://bench/listed{n}", n)
    listing.index(db)
    real = S3Storage.list_page
    S3Storage.list_page = listing.list_page
    try:
        began = time.perf_counter()
        walked = sum(1 for _ in iter_remote_sources(open_storage(listing.url)))
        walk = time.perf_counter() - began
        began = time.perf_counter()
        report = ingest([listing.url], db, prune=True)
        took = time.perf_counter() - began
        tracemalloc.start()  # again, for memory alone: tracing slows Python down
        ingest([listing.url], db, prune=True)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        S3Storage.list_page = real
    assert walked == report.unchanged == n, report.summary()
    print(f"{n:>8} {walk:>7.1f} {took:>9.1f} {took / walk:>7.1f} {peak / 2**20:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
