"""The package's import graph: no cycle anywhere, and the engine imports no app.

The graph is read from the source with ``ast``, not by importing: an edge A -> B is an
``import`` / ``from ... import`` of B executed when A is imported, i.e. a statement at
module level (also inside a module-level ``if``/``try``/``with``, and in class bodies).
Function-local imports are left out on purpose: they run when the function is called,
after every module has finished importing, so they cannot form an import-time cycle
(``tierchain.engine.apps`` loads apps by name at run time, by ``importlib``; see
docs/architecture.md "Apps"). ``if TYPE_CHECKING:`` blocks never run and are left out too.
Importing ``a.b.c`` first imports the packages ``a`` and ``a.b``: those are edges as well,
except a module's own enclosing packages (they are already being imported when it runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "core"
PACKAGE = "tierchain"


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


# The engine side (issue 15): given an app set, it must import none of the apps. Every module of
# these packages and the shared base modules is checked, so a file added to them is covered too.
ENGINE_PACKAGES = ("tierchain.engine", "tierchain.state", "tierchain.wire", "tierchain.crypto")
BASE = ("tierchain", "tierchain.config", "tierchain.domains", "tierchain.errors", "tierchain.limits")
APPS = ("tierchain.apps",)  # accounts, xshard, coordinator, finance


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


ENGINE = tuple(m for m in modules() if m in BASE or m == "tierchain.proofs" or _within(m, ENGINE_PACKAGES))


def _module_level(body: list[ast.stmt]):
    """The import statements a module executes when it is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_level(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _module_level(node.body)


def _with_parents(name: str, known: dict[str, Path]) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & known.keys()


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _module_level(ast.parse(path.read_text(), str(path)).body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges |= _with_parents(alias.name, known)
                continue
            if node.level:  # relative: from the module's own package
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            edges |= _with_parents(target, known)
            for alias in node.names:
                edges |= _with_parents(f"{target}.{alias.name}", known)
        # A module's own packages are no edge: they are on the import stack already when it
        # runs (a package importing its submodules in __init__ is the normal layout).
        graph[name] = edges - _with_parents(name, known)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30 and "tierchain.apps.finance.voucher" in graph  # the walk found the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def _is_app(module: str) -> bool:
    return _within(module, APPS)


@pytest.mark.parametrize("engine", ENGINE)
def test_the_engine_imports_no_app(engine):
    graph = import_graph()
    apps_reached = sorted(m for m in closure(graph, engine) if _is_app(m))
    assert not apps_reached, f"{engine} imports apps {apps_reached}"


def test_the_engine_list_follows_the_package_layout():
    assert {"tierchain.engine.chain", "tierchain.engine.verify", "tierchain.state.tree"} <= set(ENGINE)
    assert not any(_is_app(m) for m in ENGINE)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"a2"}, "a2": {"b"}, "b": {"a2"}}) == ["a2", "b", "a2"]


def test_function_local_and_type_checking_imports_are_no_edges(tmp_path):
    source = (
        "from typing import TYPE_CHECKING\n"
        "import tierchain.wire.tx\n"
        "if TYPE_CHECKING:\n    from tierchain.engine import chain\n"
        "try:\n    from tierchain.wire import block\nexcept ImportError:\n    pass\n"
        "def f():\n    from tierchain.apps import accounts\n"
    )
    names = [
        ast.unparse(node)
        for node in _module_level(ast.parse(source).body)
        if "tierchain" in ast.unparse(node)
    ]
    assert names == ["import tierchain.wire.tx", "from tierchain.wire import block"]
