"""Layers of the package, read from the source: no import cycle, the spec and core layers do not
depend on ``explore/``, the drawing layer does not reach the model, functions stay short, and
the model modules do no file I/O. The helpers (``tests/layers.py``) are checked first on a tiny
synthetic package with a known cycle."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.layers import (
    cycles,
    file_io_calls,
    function_lengths,
    import_graph,
    imported_names,
    module_files,
    path_to,
    reachable,
)

PACKAGE = Path(__file__).resolve().parents[1] / "elmoe_dse"
#: The longest function allowed, from ``def`` to its last line.
MAX_FUNCTION_LINES = 80
#: Functions at or above the limit today; none may join them. Delete a line when it is fixed.
KNOWN_LONG_FUNCTIONS: set[str] = set()
#: Model modules (and packages): pure functions of their arguments.
MODEL_MODULES = (
    "workload",
    "routing",
    "cache",
    "speculative",
    "roofline",
    "evaluator",
    "platforms",
    "costs",
)


# ---- the helpers, on a synthetic package ---------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    return _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": """
                import os

                from pkg import b


                def f():
                    return b
            """,
            "pkg/b.py": """
                def g():
                    from .sub.c import h  # function-local, relative

                    return h
            """,
            "pkg/sub/__init__.py": "from . import c\n",
            "pkg/sub/c.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from ..a import f


                def h():
                    x = 1
                    return x


                class K:
                    def method(self):
                        def inner():
                            return open("data.txt").read()

                        return inner
            """,
            "pkg/d.py": """
                from pathlib import Path

                from pkg.sub import c, K


                def load():
                    return Path("x").read_text()
            """,
        },
    )


def test_modules_are_named_by_their_dotted_path(pkg: Path) -> None:
    assert set(module_files(pkg)) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.d"}


def test_edges_resolve_relative_local_typing_and_submodule_imports(pkg: Path) -> None:
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"}  # external os dropped
    assert graph["pkg.b"] == {"pkg.sub.c"}  # function-local, relative
    assert graph["pkg.sub.c"] == {"pkg.a"}  # TYPE_CHECKING, two levels up
    assert graph["pkg.sub"] == {"pkg.sub.c"}  # from . import c: the submodule
    assert graph["pkg.d"] == {"pkg.sub.c", "pkg.sub"}  # K is a name in pkg.sub
    assert graph["pkg"] == set()


def test_imported_names_of_one_module_source() -> None:
    import ast

    tree = ast.parse("from .. import x\nfrom ..x import y\nimport p.q\n")
    known = {"p", "p.x", "p.x.y", "p.q", "p.s.m"}
    assert imported_names("p.s.m", Path("m.py"), tree, known) == {"p.x", "p.x.y", "p.q"}


def test_the_known_cycle_is_found_with_its_path(pkg: Path) -> None:
    graph = import_graph(pkg)
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    parent = reachable(graph, "pkg.a")
    assert path_to(parent, "pkg.a", "pkg.a") == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    assert "pkg.d" not in parent
    del graph["pkg.sub.c"]
    assert cycles(graph) == []


def test_function_lengths_run_from_def_to_end_including_methods(pkg: Path) -> None:
    lengths = dict((name, n) for n, name in function_lengths(pkg))
    assert lengths["pkg.sub.c:h"] == 3
    assert lengths["pkg.sub.c:K.method"] == 5
    assert lengths["pkg.sub.c:K.method.inner"] == 2
    assert function_lengths(pkg)[0] == (5, "pkg.sub.c:K.method")


def test_file_io_calls_are_found(pkg: Path) -> None:
    assert file_io_calls(pkg / "sub" / "c.py") == ["16: open("]
    assert sorted(file_io_calls(pkg / "d.py")) == ["8: .read_text(", "8: Path("]
    assert file_io_calls(pkg / "b.py") == []


# ---- the package ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE)


def _is(module: str, target: str) -> bool:
    return module == target or module.startswith(f"{target}.")


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    assert not found, "import cycles (strongly connected components):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_specs_import_nothing_from_explore(graph: dict[str, set[str]]) -> None:
    wrong = {
        m: sorted(t for t in targets if _is(t, "elmoe_dse.explore"))
        for m, targets in graph.items()
        if _is(m, "elmoe_dse.specs")
    }
    assert not {m: t for m, t in wrong.items() if t}


def test_scenario_imports_nothing_from_explore(graph: dict[str, set[str]]) -> None:
    wrong = sorted(t for t in graph["elmoe_dse.scenario"] if _is(t, "elmoe_dse.explore"))
    assert not wrong


def test_plots_do_not_reach_the_model(graph: dict[str, set[str]]) -> None:
    chains = []
    for module in sorted(m for m in graph if _is(m, "elmoe_dse.plots")):
        parent = reachable(graph, module)
        for target in sorted(parent):
            if _is(target, "elmoe_dse.evaluator") or _is(target, "elmoe_dse.scenario"):
                chains.append(" -> ".join(path_to(parent, module, target)))
    assert not chains, "plots reach the model:\n" + "\n".join(chains)


def _long_functions() -> list[tuple[int, str]]:
    return [(n, name) for n, name in function_lengths(PACKAGE) if n >= MAX_FUNCTION_LINES]


def test_longest_function_is_under_the_limit() -> None:
    offenders = _long_functions()
    assert not offenders, "\n".join(f"{n:4d} lines  {name}" for n, name in offenders)


def test_no_new_long_functions() -> None:
    new = [(n, name) for n, name in _long_functions() if name not in KNOWN_LONG_FUNCTIONS]
    assert not new, "\n".join(f"{n:4d} lines  {name}" for n, name in new)


def _model_files() -> list[tuple[str, Path]]:
    return [
        (name, path)
        for name, path in module_files(PACKAGE).items()
        if any(_is(name, f"elmoe_dse.{m}") for m in MODEL_MODULES)
    ]


@pytest.mark.parametrize(
    ("module", "path"),
    [pytest.param(name, path, id=name) for name, path in _model_files()],
)
def test_model_modules_do_no_file_io(module: str, path: Path) -> None:
    assert file_io_calls(path) == []
