"""What every benchmark shares: the machine's description, timing, tables and result files."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """CPU count and model, OS, Python, SQLite and the libraries measured."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import mlflow

        info["mlflow"] = mlflow.__version__
    except ImportError:
        info["mlflow"] = None
    try:
        memory = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        info["memory_gb"] = round(int(memory) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    return info


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def median_ms(work: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """``(first call ms, median ms of the next ``repeat`` calls, result)``."""
    first, result = timed(work)
    times = [timed(work)[0] for _ in range(repeat)]
    return first * 1000, statistics.median(times) * 1000, result


def work_folder(given: Path | None, name: str) -> Path:
    """Where a benchmark keeps its generated data: ``given`` (kept, and reused when run
    again), else a new temporary folder."""
    import tempfile

    work = given or Path(tempfile.mkdtemp(prefix=f"runlog-bench-{name}-"))
    work.mkdir(parents=True, exist_ok=True)
    return work


def age(root: Path, seconds: int) -> None:
    """Give every file under ``root`` an mtime ``seconds`` ago (a store of finished runs)."""
    moment = time.time_ns() - seconds * 1_000_000_000
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), ns=(moment, moment))


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (readable as plain text too)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = [f"### {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def save(name: str, payload: dict[str, Any], stamp: str | None = None) -> Path:
    """Write ``payload`` (plus the machine's description) to ``bench/results/<name>-<stamp>.json``."""
    RESULTS.mkdir(exist_ok=True)
    stamp = stamp or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    body = {"benchmark": name, "when": stamp, "machine": machine(), **payload}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path
