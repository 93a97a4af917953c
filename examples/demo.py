"""`make demo`: record the example pipelines, index them with real run logs, and show them.

The demo writes where every runlog command looks by default, in the repo's root
(all ignored by git): its runs (ids ``demo-*``) into ``.run_log_store``, their
catalog files into ``.catalog``, and the index ``runlog.db``. It replaces its own
runs and rebuilds the index on every run, so running it twice gives the same
output (times apart), and afterwards `runlog runs`, `runlog show demo-steps` or
`runlog serve` work as typed, with no options.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STORE = REPO / ".run_log_store"  # the default store
CATALOG = REPO / ".catalog"  # where runs of that store keep their catalog files
DB = REPO / "runlog.db"  # the default index
REAL_LOGS = REPO / "examples" / "real-logs"
BIN = Path(sys.executable).parent
RUNLOG = str(BIN / "runlog")

PIPELINES = [
    ("examples/experiment_tracking_api.py", ["demo-api"]),
    ("examples/experiment_tracking_step.py", ["demo-steps"]),
    ("examples/parallel_branches.py", ["4", "demo-parallel"]),
    ("examples/failing_pipeline.py", ["demo-failing"]),
    ("examples/sweep.py", []),  # sweep-01..06 and sweep-ensemble: fixed times, the same everywhere
]


# The demo's commands must not pick up a user's own defaults.
ENV = {k: v for k, v in os.environ.items() if k not in ("RUNLOG_DB", "RUNLOG_STORE", "RUNLOG_LAYOUT")}


def heading(text: str) -> None:
    print(f"\n== {text} ==")


def show(*args: str) -> None:
    """Print a runlog command as a user would type it in the repo's root, then run it."""
    shown = " ".join(shlex.quote(_short(a)) for a in ("runlog", *args))
    print(f"\n$ {shown}")
    sys.stdout.flush()
    done = subprocess.run([RUNLOG, *args], cwd=REPO, env=ENV)
    if done.returncode not in (0, 1):
        sys.exit(f"demo: `{shown}` failed with exit code {done.returncode}")


def _short(arg: str) -> str:
    return os.path.relpath(arg, REPO) if arg.startswith("/") else arg


def clear_previous_demo() -> None:
    """Remove what an earlier demo wrote: its runs, their catalog files, the index."""
    for folder in (STORE, CATALOG):
        for entry in folder.glob("demo-*") if folder.is_dir() else ():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)


def record_examples() -> None:
    heading(f"Recording the example pipelines into {_short(str(STORE))}")
    env = dict(ENV, RUNLOG=RUNLOG, PYTHON=sys.executable, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    commands = [[sys.executable, script, str(STORE), *args] for script, args in PIPELINES]
    commands.append(["bash", "examples/experiment_tracking_env.sh", str(STORE), "demo-env"])
    for command in commands:
        script = command[1]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        print(f"  {script:<40} {'ok' if done.returncode == 0 else f'FAILED ({done.returncode})'}")
        if done.returncode != 0:
            sys.exit(done.stderr)


def summarise_store() -> None:
    from runlog import RunLogStore

    heading(f"The demo's runs, read back from {_short(str(STORE))}")
    store = RunLogStore(STORE)
    for info in store.list_runs():
        if not info.run_id.startswith("demo-"):
            continue
        run = store.get_run(info.run_id)
        print(f"\n  {info.run_id}  [{run.status}]  tag={run.tag or '-'}  layout={info.layout}  steps={sum(1 for _ in run.iter_steps())}")
        _print_steps(run.steps, depth=2)


def _print_steps(steps, depth: int) -> None:
    pad = "  " * depth
    for step in steps.values():
        metrics = ", ".join(f"{k}={_brief(v)}" for k, v in step.user_defined_metrics.items())
        note = f"  ({step.message})" if step.message else ""
        print(f"{pad}{step.name:<14} {step.status:<8}{'  ' + metrics if metrics else ''}{note}")
        for branch in step.branches.values():
            print(f"{pad}  branch {branch.internal_name.rsplit('.', 1)[-1]} [{branch.status}]")
            _print_steps(branch.steps, depth + 2)


def _brief(value) -> str:
    if isinstance(value, dict) and value and all(k.isdigit() for k in value):
        points = list(value.values())
        return f"{_brief(points[0])}..{_brief(points[-1])} ({len(points)} steps)"
    if isinstance(value, float):
        return format(value, ".4g")
    return str(value)


def index_and_query() -> None:
    heading("Indexing them, with real runnable/magnus run logs, into SQLite")
    real = [str(p) for p in sorted(REAL_LOGS.iterdir()) if p.is_dir()]
    show("ingest", str(STORE), *real, "--quiet")
    heading("Asking the index")
    show("runs", "--metric", "loss", "--metric", "answer")
    show("runs", "--tag", "sweep", "--param", "lr", "--param", "batch", "--metric", "min:loss",
         "--metric", "argmin:loss", "--where", "min:loss < 0.25", "--sort", "min:loss")
    show("keys", "--like", "%loss%")
    show("compare", "sweep-01", "sweep-03", "--summary", "min")
    show("metrics", "demo-steps", "--key", "loss")
    show("query", "--named", "failed_steps")


def main() -> None:
    clear_previous_demo()
    record_examples()
    summarise_store()
    index_and_query()
    heading("Next")
    print("  Put runlog on your PATH:        source .venv/bin/activate")
    print("  Then, in this folder:")
    print("    runlog runs                              every run in runlog.db (the default index)")
    print("    runlog show demo-parallel                one run: its steps, branches and metrics")
    print("    runlog runs --metric min:loss --sort min:loss --limit 3    the three lowest losses")
    print("    runlog serve                             browse and compare them, with charts, at http://127.0.0.1:8001/-/runlog/runs")
    print("    runlog export mlflow --all --dry-run     what an export to MLflow would send")


if __name__ == "__main__":
    main()
