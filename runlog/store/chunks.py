"""A run in pieces: chunk names of the ``chunked-fs`` layout, putting a chunked run
back together, and placing a step or branch inside a whole run by its internal name.

Both layouts and every generation share this: runnable 0.6+ writes
``BranchLog-<branch>.json``, the seed and magnus write versioned chunks
``StepLog-<internal name>-<time_ns>.json`` (the largest time_ns wins).

>>> chunk_version("StepLog-par.b1.train-1795685403145456310.json")
('StepLog', 'par.b1.train', 1795685403145456310)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import RunlogError
from ..models import BranchLog, RunLog, StepLog

VERSIONED = re.compile(r"^(StepLog|BranchLog)-(.+)-(\d{16,})\.json$")
_G3_BRANCH = re.compile(r"^BranchLog-(.+)\.json$")
_PARAMETER = re.compile(r"^Parameter-(.+)\.json$")


def chunk_version(name: str) -> tuple[str, str, int] | None:
    """``(kind, internal name, version)`` of a versioned chunk file name, else None."""
    match = VERSIONED.match(name)
    return (match.group(1), match.group(2), int(match.group(3))) if match else None


def chunk_file_name(kind: str, internal_name: str, version: int) -> str:
    return f"{kind}-{internal_name}-{version}.json"


def assemble_chunks(run: RunLog, names: list[str], load_json: Callable[[str], Any],
                    load_chunk: Callable[[str, type], Any]) -> RunLog:
    """Put a chunked run together from the names of its chunk files (any order):
    ``load_json(name)`` parses one, ``load_chunk(name, model)`` parses one into a model."""
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    g3_branches: dict[str, str] = {}
    for name in sorted(names):
        if name.startswith("."):
            continue
        if found := chunk_version(name):
            kind, internal, version = found
            if (kind, internal) not in newest or newest[(kind, internal)][0] < version:
                newest[(kind, internal)] = (version, name)
        elif match := _G3_BRANCH.match(name):
            g3_branches[match.group(1)] = name
        elif match := _PARAMETER.match(name):
            run.parameters.setdefault(match.group(1), load_json(name))
    steps: dict[str, tuple[int, StepLog]] = {}
    branches: dict[str, tuple[int, BranchLog]] = {}
    for (kind, internal), (version, name) in newest.items():
        target, model = (steps, StepLog) if kind == "StepLog" else (branches, BranchLog)
        target[internal] = (version, load_chunk(name, model))
    for internal, name in g3_branches.items():
        branches.setdefault(internal, (0, load_chunk(name, BranchLog)))
    _attach(run, steps, branches)
    return run


def _attach(run: RunLog, steps: dict[str, tuple[int, StepLog]], branches: dict[str, tuple[int, BranchLog]]) -> None:
    """Put chunk files back in place: a step in the longest branch whose name prefixes
    it, a branch in the longest step whose name prefixes it. Steps come in the order
    they started (file versions break ties), as in a file-system log."""
    branch_logs = {name: log for name, (_, log) in branches.items()}
    versions = {name: version for name, (version, _) in steps.items()}
    for _, step in steps.values():
        parent = _longest_prefix(step.internal_name, branch_logs)
        (branch_logs[parent].steps if parent else run.steps)[step.internal_name] = step
    # G3 branch files hold their own steps: index those too, so nested branches find owners.
    every_step = {s.internal_name: s for s in run.iter_steps()}
    for branch in branch_logs.values():
        for inner in branch.steps.values():
            every_step.setdefault(inner.internal_name, inner)
    for name in sorted(branch_logs, key=lambda n: (n.count("."), n)):
        owner = _longest_prefix(name, every_step)
        if owner is not None:  # an orphan branch has nothing to hang on; the run stays readable
            every_step[owner].branches[name] = branch_logs[name]
    if steps:
        _sort_steps(run.steps, versions)


def _sort_steps(steps: dict[str, StepLog], versions: dict[str, int]) -> None:
    ordered = sorted(steps.values(), key=lambda s: (_first_time(s), versions.get(s.internal_name, 0)))
    steps.clear()
    steps.update((s.internal_name, s) for s in ordered)
    for step in ordered:
        for branch in step.branches.values():
            _sort_steps(branch.steps, versions)


def _first_time(step: StepLog) -> str:
    """When a step started: its first attempt, or for a composite its earliest inner step."""
    times = [a.start_time for a in step.attempts if a.start_time]
    times += [_first_time(s) for b in step.branches.values() for s in b.steps.values()]
    return min(times, default="~")


def _longest_prefix(name: str, candidates) -> str | None:
    best = None
    for other in candidates:
        if name.startswith(other + ".") and (best is None or len(other) > len(best)):
            best = other
    return best


# -- placing a step or a branch in a whole run (file-system layout) ---------------


def parent_name(internal_name: str) -> str:
    """``par.b1`` for ``par.b1.train``; ``""`` at the root."""
    return internal_name.rsplit(".", 1)[0] if "." in internal_name else ""


def place_step(run: RunLog, step: StepLog) -> RunLog:
    """Insert ``step`` into the branch its internal name points at."""
    branch_name = parent_name(step.internal_name)
    if not branch_name:
        old = run.steps.get(step.internal_name)
        run.steps[step.internal_name] = _keep_branches(step, old)
        return run
    owner = run.find_step(parent_name(branch_name))
    if owner is None:
        raise RunlogError(f"step {step.internal_name!r}: no composite step {parent_name(branch_name)!r} in run {run.run_id!r}")
    branch = owner.branches.setdefault(branch_name, BranchLog(internal_name=branch_name, status="PROCESSING"))
    branch.steps[step.internal_name] = _keep_branches(step, branch.steps.get(step.internal_name))
    return run


def place_branch(run: RunLog, branch: BranchLog) -> RunLog:
    """Add or replace a branch's own record (its status), keeping the steps it holds."""
    owner = run.find_step(parent_name(branch.internal_name))
    if owner is None:
        raise RunlogError(f"branch {branch.internal_name!r}: no step {parent_name(branch.internal_name)!r} "
                          f"in run {run.run_id!r}")
    old = owner.branches.get(branch.internal_name)
    owner.branches[branch.internal_name] = branch.model_copy(update={"steps": old.steps if old else {}})
    return run


def _keep_branches(step: StepLog, old: StepLog | None) -> StepLog:
    # A composite step's record is rewritten (status) while its branches are
    # written by others: keep the branches already in the file.
    if old is not None and not step.branches and old.branches:
        return step.model_copy(update={"branches": old.branches})
    return step
