"""Static views of a package for the layer tests: its import graph and its function lengths.

Pure functions over source files (nothing is imported). The graph keeps every import a module
can run: top-level, function-local and ``TYPE_CHECKING`` ones. Edges go to the named module only
(not to its parent packages, which every import would otherwise reach), and only inside the
package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

Graph = dict[str, set[str]]


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file for every ``.py`` under the package folder ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_names(module: str, path: Path, tree: ast.AST, known: Iterable[str]) -> set[str]:
    """The modules of ``known`` that ``module`` (parsed as ``tree``) imports anywhere.

    Relative imports are resolved against the module's package; ``from pkg import name`` is an
    edge to ``pkg.name`` when that is a module, else to ``pkg``.
    """
    modules = set(known)
    package = module if _is_package(path) else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != module}


def import_graph(root: Path) -> Graph:
    """Module -> the package's modules it imports (see :func:`imported_names`)."""
    files = module_files(root)
    return {
        name: imported_names(name, path, ast.parse(path.read_text()), files)
        for name, path in files.items()
    }


def reachable(graph: Mapping[str, set[str]], start: str) -> dict[str, str | None]:
    """Every module reachable from ``start`` (itself excluded unless on a cycle), each with the
    module it was first reached from (depth first), so a path can be printed."""
    parent: dict[str, str | None] = {}
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt not in parent:
                parent[nxt] = node
                stack.append(nxt)
    return parent


def path_to(parent: Mapping[str, str | None], start: str, end: str) -> list[str]:
    """The import chain ``start -> ... -> end`` recorded by :func:`reachable`."""
    chain = [end]
    node = parent[end]
    while node != start:
        assert node is not None
        chain.append(node)
        node = parent[node]
    return [start, *chain[::-1]]


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (sorted), i.e. import cycles."""
    reach = {node: set(reachable(graph, node)) for node in graph}
    seen: set[str] = set()
    out = []
    for node in sorted(graph):
        if node in seen:
            continue
        component = sorted({node} | {m for m in reach[node] if node in reach.get(m, ())})
        seen.update(component)
        if len(component) > 1:
            out.append(component)
    return out


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """(lines from ``def`` to the last line, ``module:qualified.name``) of every function and
    method under ``root``, longest first."""
    out = []
    for module, path in module_files(root).items():
        tree = ast.parse(path.read_text())
        for qualname, node in _functions(tree, ""):
            assert node.end_lineno is not None
            out.append((node.end_lineno - node.lineno + 1, f"{module}:{qualname}"))
    return sorted(out, key=lambda item: (-item[0], item[1]))


def _functions(
    node: ast.AST, prefix: str
) -> Iterable[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


#: Calls that read or write files: builtins, pathlib methods, and Path construction.
FILE_IO_FUNCTIONS = frozenset({"open", "Path"})
FILE_IO_METHODS = frozenset(
    {"read_text", "write_text", "read_bytes", "write_bytes", "open", "glob", "rglob", "iterdir"}
)


def file_io_calls(path: Path) -> list[str]:
    """``line: call`` for each call in the file that does file I/O (see the constants above)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FILE_IO_FUNCTIONS:
            out.append(f"{node.lineno}: {func.id}(")
        elif isinstance(func, ast.Attribute) and func.attr in FILE_IO_METHODS:
            out.append(f"{node.lineno}: .{func.attr}(")
    return out
