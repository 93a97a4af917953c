"""``runlog exec``: a command recorded as one step of a run, possibly inside branches
created on the way, so that several processes can each record one branch.

>>> from runlog.record import exec_step
>>> exec_step("r1", "train", ["echo hi; export RUNNABLE_TRACK_loss=0.5"])   # doctest: +SKIP
0
"""

from __future__ import annotations

import os

from ..errors import InvalidName, UsageProblem
from ..models import BranchLog, RunLog, StepLog
from ..store import DEFAULT_STORE, Layout, RunLogStore, validate_name
from .run import BranchRecorder, Run
from .shell import shell_text


def exec_step(
    run_id: str,
    step: str,
    command: list[str],
    tag: str = "",
    store: str | os.PathLike = DEFAULT_STORE,
    layout: Layout = "file-system",
    endpoint_url: str | None = None,
) -> int:
    """Run ``command`` as step ``step`` of run ``run_id`` (created when missing).

    ``step`` may be an internal name (``par.left.train``): the composite step and the
    branch are created when missing, so several processes can each record one branch.
    The run's status becomes FAIL when the step fails, and SUCCESS otherwise unless an
    earlier step failed. ``store`` may be a URL (``s3://bucket/prefix``). Returns the
    command's exit code."""
    parts = step_parts(run_id, step)
    shell_text(command)
    run = Run.attach(run_id, store=RunLogStore(store, layout, endpoint_url=endpoint_url), create=True, tag=tag)
    scope = run
    with run.store.locked(run_id):  # several processes may create the same composite
        current = run.store.get_run(run_id)
        for depth in range(0, len(parts) - 1, 2):
            composite = ".".join(parts[: depth + 1])
            branch = f"{composite}.{parts[depth + 1]}"
            if current.find_step(composite) is None:
                run.store.put_step(run_id, StepLog(name=parts[depth], internal_name=composite,
                                                   status="PROCESSING", step_type="parallel",
                                                   code_identities=run.code_identities()), _locked=True)
                current = run.store.get_run(run_id)
            if branch not in current.find_step(composite).branches:
                run.store.put_branch(run_id, BranchLog(internal_name=branch, status="PROCESSING"), _locked=True)
                current = run.store.get_run(run_id)
            scope = BranchRecorder(run, branch)
    with scope.step(parts[-1]) as recorder:
        code = recorder.run_command(command)
    with run.store.locked(run_id):
        current = run.store.get_run(run_id)
        _roll_up(run, current, parts, failed=code != 0)
        failed = code != 0 or current.status == "FAIL"
        run.store.update_run(run_id, status="FAIL" if failed else "SUCCESS", _locked=True)
    return code


def step_parts(run_id: str, step: str) -> list[str]:
    """The dot-separated parts of ``step``, once it and ``run_id`` are names that stay in the
    store; a bad one is a :class:`UsageProblem` naming the whole name and the rule it breaks.

    >>> step_parts("r1", "par.left.train")
    ['par', 'left', 'train']
    >>> step_parts("r1", "../s")
    Traceback (most recent call last):
    ...
    runlog.errors.UsageProblem: invalid step name '../s': must not contain '/'
    """
    try:  # the whole name first: its parts alone ('', '', '/s') would hide what is wrong
        validate_name(run_id)
        validate_name(step, "step name")
    except InvalidName as exc:
        raise UsageProblem(str(exc)) from None
    parts = step.split(".")
    if len(parts) % 2 == 0 or "" in parts:
        raise UsageProblem(f"invalid step name {step!r}: use NAME or COMPOSITE.BRANCH.NAME "
                           "(an odd number of non-empty dot-separated parts)")
    return parts


def _roll_up(run, current: RunLog, parts: list[str], failed: bool) -> None:
    """After a step inside branches: set its branches' status (FAIL sticks) and each
    composite's (FAIL if any branch failed, SUCCESS when all succeeded)."""
    for depth in range(len(parts) - 3, -1, -2):
        composite = ".".join(parts[: depth + 1])
        branch = f"{composite}.{parts[depth + 1]}"
        owner = current.find_step(composite)
        old = owner.branches[branch]
        status = "FAIL" if failed or old.status == "FAIL" else "SUCCESS"
        run.store.put_branch(run.run_id, BranchLog(internal_name=branch, status=status), _locked=True)
        owner.branches[branch] = old.model_copy(update={"status": status})
        statuses = {b.status for b in owner.branches.values()}
        rolled = "FAIL" if "FAIL" in statuses else "SUCCESS" if statuses == {"SUCCESS"} else "PROCESSING"
        run.store.put_step(run.run_id, owner.model_copy(update={"status": rolled, "branches": {}}), _locked=True)
        failed = rolled == "FAIL"
