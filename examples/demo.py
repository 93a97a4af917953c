"""`make demo`: record the example pipelines, index them with the fixtures, and show them.

Everything goes under demo/ in the repo (ignored by git) and is rebuilt on every
run, so running the demo twice gives the same result.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo"
STORE = DEMO / ".run_log_store"
DB = DEMO / "runlog.db"
FIXTURES = REPO.parent / "shared" / "fixtures" / "runnable"
BIN = Path(sys.executable).parent
RUNLOG = str(BIN / "runlog")

PIPELINES = [
    ("examples/experiment_tracking_api.py", ["demo-api"]),
    ("examples/experiment_tracking_step.py", ["demo-steps"]),
    ("examples/parallel_branches.py", ["4", "demo-parallel"]),
    ("examples/failing_pipeline.py", ["demo-failing"]),
]


def heading(text: str) -> None:
    print(f"\n== {text} ==")


def show(*args: str, check: bool = True) -> None:
    """Print a runlog command as a user would type it, then run it."""
    shown = " ".join(shlex.quote(_short(a)) for a in ("runlog", *args))
    print(f"\n$ {shown}")
    sys.stdout.flush()
    done = subprocess.run([RUNLOG, *args], cwd=REPO)
    if check and done.returncode not in (0, 1):
        sys.exit(f"demo: `{shown}` failed with exit code {done.returncode}")


def _short(arg: str) -> str:
    return os.path.relpath(arg, REPO) if arg.startswith("/") else arg


def record_examples() -> None:
    heading("Recording the example pipelines")
    env = dict(os.environ, RUNLOG=RUNLOG, PYTHON=sys.executable, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for script, args in PIPELINES:
        done = subprocess.run([sys.executable, script, str(STORE), *args], cwd=REPO, env=env, capture_output=True, text=True)
        status = "ok" if done.returncode == 0 else f"FAILED ({done.returncode})"
        print(f"  {script:<40} {status}")
        if done.returncode != 0:
            sys.exit(done.stderr)
    done = subprocess.run(
        ["bash", "examples/experiment_tracking_env.sh", str(STORE), "demo-env"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    print(f"  {'examples/experiment_tracking_env.sh':<40} {'ok' if done.returncode == 0 else 'FAILED'}")
    if done.returncode != 0:
        sys.exit(done.stderr)


def summarise_store() -> None:
    from runlog import RunLogStore

    heading(f"Runs in {STORE.relative_to(REPO)}")
    store = RunLogStore(STORE)
    for info in store.list_runs():
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
    heading("Indexing the demo runs and the real runnable/magnus fixtures into SQLite")
    args = ["ingest", str(STORE)]
    if FIXTURES.is_dir():
        args += [str(p) for p in sorted(FIXTURES.iterdir())]
    show(*args, "--db", str(DB), "--quiet")
    show("runs", "--db", str(DB), "--metric", "loss", "--metric", "answer")
    show("metrics", "demo-steps", "--key", "loss", "--db", str(DB))
    show(
        "query",
        "select run_id, step_name, key, step, value from metrics where key = :key order by value limit 5",
        "-p", "key", "loss", "--db", str(DB),
    )


def main() -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    record_examples()
    summarise_store()
    index_and_query()
    heading("Next")
    print(f"  Browse the runs, with charts:  runlog serve --db {DB.relative_to(REPO)}   (then open http://127.0.0.1:8001)")
    print(f"  Export them to MLflow:        runlog export mlflow --all --db {DB.relative_to(REPO)} --tracking-uri http://127.0.0.1:5000")
    print("  (with .venv/bin on your PATH, or prefix the commands with .venv/bin/)")


if __name__ == "__main__":
    main()
