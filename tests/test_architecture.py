"""The layout holds: imports flow one way (cli -> features -> index -> store -> the
bottom), no import circle anywhere in runlog/ (imports inside functions count), no
class over 150 lines or function over 60, and docs/architecture.md names only paths
that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "runlog"
# Lower layers never import higher ones; features may use each other (without circles).
LAYERS = {"models": 0, "errors": 0, "values": 0, "store": 1, "index": 2, "record": 3, "web": 3, "mlflow": 3, "lake": 3,
          "api": 4, "cli": 5}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> set[str]:
    """runlog modules that ``name`` imports, at any depth of its code, TYPE_CHECKING blocks aside."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in node.body for n in ast.walk(inner)}
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + (node.module.split(".") if node.module else [])) \
                if node.level else (node.module or "")
            subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
            found |= subs or ({base} if base in MODULES else set())
    found.discard(name)
    return found


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def path_between(start: str, goal: str) -> list[str] | None:
    """Modules from ``start`` to ``goal`` along imports (breadth first), or None."""
    trails, seen = [[start]], {start}
    while trails:
        trail = trails.pop(0)
        for nxt in sorted(GRAPH[trail[-1]]):
            if nxt == goal:
                return trail + [nxt]
            if nxt not in seen:
                seen.add(nxt)
                trails.append(trail + [nxt])
    return None


def test_no_import_circle():
    circles = set()
    for name, targets in GRAPH.items():
        for target in targets:
            back = path_between(target, name)
            if back is None:
                continue
            cycle = [name] + back[:-1]
            root = min(cycle, key=len)
            # A package importing its own submodules (to re-export them) is not a circle of design.
            if not all(n == root or n.startswith(root + ".") for n in cycle):
                circles.add(" -> ".join(cycle + [name]))
    assert sorted(circles) == []


def test_imports_flow_down_the_layers():
    upward = [f"{name} -> {target}" for name, targets in GRAPH.items() for target in targets
              if layer(name) is not None and layer(target) is not None and layer(target) > layer(name)]
    assert upward == []


def test_the_bottom_imports_nothing_of_runlog():
    assert {name: targets for name, targets in GRAPH.items() if layer(name) == 0 and targets} == {}


@pytest.mark.parametrize("kind, limit", [(ast.ClassDef, 150), ((ast.FunctionDef, ast.AsyncFunctionDef), 60)])
def test_no_long_class_or_function(kind, limit):
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, kind) and node.end_lineno - node.lineno + 1 > limit:
                long.append(f"{path.relative_to(REPO)}:{node.name} {node.end_lineno - node.lineno + 1} lines")
    assert long == []


def test_every_package_says_what_it_is_for():
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and len(doc.splitlines()) >= 2, f"{name} has no docstring saying what it is for"


def test_architecture_doc_is_short_and_names_real_paths():
    text = (REPO / "docs" / "architecture.md").read_text()
    assert text.count("\n") < 150
    named = {ref.rstrip("/") for ref in re.findall(r"`([^`\s]+)`", text)
             if ("/" in ref or ref.endswith(".py")) and not re.search(r"[<>*:{}$=]", ref)}
    missing = sorted(ref for ref in named if not (REPO / ref).exists() and not (PACKAGE / ref).exists())
    assert missing == []
    assert len(named) > 30


def private_imports(name: str, path: Path) -> list[str]:
    """``_names`` that ``name`` takes from a module of another package: imported
    (``from ..index.flatten import _utc``) or read through an imported module
    (``tracking._active_sink``)."""
    tree = ast.parse(path.read_text())
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    own_package = ".".join(here)
    modules: dict[str, str] = {}  # local name -> runlog module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + (node.module.split(".") if node.module else [])) \
                if node.level else (node.module or "")
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
                elif base in MODULES and _private(alias.name) and _package_of(base) != own_package:
                    found.append(f"{name}: from {base} import {alias.name}")
        elif isinstance(node, ast.Import):
            modules.update({a.asname: a.name for a in node.names if a.asname and a.name in MODULES})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr):
            target = modules.get(node.value.id)
            if target is not None and _package_of(target) != own_package:
                found.append(f"{name}: {target}.{node.attr}")
    return found


def _private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_module_uses_another_packages_private_names():
    found = {line for name, path in MODULES.items() for line in private_imports(name, path)}
    assert sorted(found) == []
