"""What runlog's pages share: finding the index a request asks for (after Datasette's
permissions), running the index's own query code on Datasette's connection, and the
step tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from datasette.utils.asgi import NotFound

from ..errors import UsageProblem
from .urls import index_names

T = TypeVar("T")


class Index:
    """A Datasette connection as the index code takes it (``db.conn``)."""

    def __init__(self, conn):
        self.conn = conn


async def database_for(datasette, request):
    """``(name, Datasette database)`` of the runlog index a page asks for (``?db=``)."""
    names = index_names(datasette)
    name = request.args.get("db") or (names[0] if names else None)
    if name not in names:
        raise NotFound(f"no runlog index named {name!r}" if name else "no runlog index attached")
    for table in ("runs", "steps", "attempts", "params", "metrics"):
        await datasette.ensure_permissions(
            request.actor, [("view-table", (name, table)), ("view-database", name), "view-instance"]
        )
    return name, datasette.get_database(name)


async def on_index(db, work: Callable[[Index], T]) -> T:
    """Run ``work(index)`` on one of Datasette's connections to ``db`` (in its thread)."""
    return await db.execute_fn(lambda conn: work(Index(conn)))


def pairs(args) -> list[tuple[str, str]]:
    """Every ``(name, value)`` of a request's query string, repeated names kept."""
    return [(name, value) for name in args for value in args.getlist(name)]


def attempt(work: Callable[[], T], fallback: T) -> tuple[T, str]:
    """``(result, "")``, or ``(fallback, message)`` when the user's input names nothing."""
    try:
        return work(), ""
    except UsageProblem as exc:
        return fallback, str(exc)


def step_tree(steps: list[dict[str, Any]], attempt_counts: dict[str, int]) -> list[dict[str, Any]]:
    """Nest steps under their composite step, branch by branch, keeping run order.

    >>> tree = step_tree([{"step_name": "par", "branch": ""}, {"step_name": "par.b1.t", "branch": "par.b1"}], {})
    >>> [b["label"] for b in tree[0]["branches"]], tree[0]["branches"][0]["steps"][0]["step_name"]
    (['b1'], 'par.b1.t')
    """
    nodes = {s["step_name"]: {**s, "attempts": attempt_counts.get(s["step_name"], 0), "branches": []} for s in steps}
    branches: dict[str, dict] = {}
    root: list[dict[str, Any]] = []
    for step in steps:
        node, branch = nodes[step["step_name"]], step["branch"] or ""
        if not branch:
            root.append(node)
            continue
        if branch not in branches:
            parent = _parent_step(branch, nodes)
            label = branch[len(parent) + 1:] if parent else branch
            branches[branch] = {"name": branch, "label": label, "steps": []}
            (nodes[parent]["branches"] if parent else _orphan_holder(root)).append(branches[branch])
        branches[branch]["steps"].append(node)
    return root


def _parent_step(branch: str, nodes: dict) -> str | None:
    """The composite step holding a branch: the longest step name that prefixes it."""
    candidates = [name for name in nodes if branch.startswith(name + ".")]
    return max(candidates, key=len) if candidates else None


def _orphan_holder(root: list[dict]) -> list[dict]:
    """A branch whose composite step is missing hangs off a placeholder at the root."""
    for node in root:
        if node.get("orphans"):
            return node["branches"]
    holder = {"step_name": "(branches without their step)", "name": "", "orphans": True, "branches": [],
              "status": "", "step_type": "", "attempts": 0, "message": ""}
    root.append(holder)
    return holder["branches"]
