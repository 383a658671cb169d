"""The three rooms and their one-way dependencies, read from the source as Python reads it:
the framework (minidl outside minidl.experiments and minidl.lab) imports neither the lab
application (minidl.experiments) nor the teaching tools (minidl.lab); the application does not
import the teaching tools."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "minidl"
APPLICATION, TEACHING = "minidl.experiments", "minidl.lab"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module that `source` (the text of `module`) imports, anywhere in it (at the top, in a
    function, under TYPE_CHECKING), as absolute names; `from x import y` counts x.y too, since y may
    be a module."""
    package = module if is_package else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def room(module: str) -> str:
    for name in (APPLICATION, TEACHING):
        if module == name or module.startswith(name + "."):
            return name
    return "minidl" if module == "minidl" or module.startswith("minidl.") else "outside"


SOURCES = sorted(PACKAGE.rglob("*.py"))
FORBIDDEN = {"minidl": {APPLICATION, TEACHING}, APPLICATION: {TEACHING}, TEACHING: set()}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_a_module_imports_only_from_its_own_room_and_the_rooms_below(path):
    own = room(module_name(path))
    found = imported(path.read_text(), module_name(path), path.name == "__init__.py")
    wrong = sorted(m for m in found if room(m) in FORBIDDEN[own])
    assert not wrong, f"{module_name(path)} ({own}) imports {wrong}: the dependencies go one way only"


def test_the_reader_of_imports_sees_relative_and_nested_imports():
    """The check above cannot pass by not seeing: a framework module with relative imports of the
    application and the teaching tools inside a function is caught."""
    source = "def f():\n    from ..experiments import models\n    from ..lab.grading import grade\n"
    found = imported(source, "minidl.autograd.planted")
    assert {"minidl.experiments.models", "minidl.lab.grading"} <= found
    assert {room(m) for m in found} == FORBIDDEN[room("minidl.autograd.planted")]


def top_level_imports(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of `modules` that `source` imports while it is being imported: the statements at
    its top level (not in a function, not under `if TYPE_CHECKING`). `from x import y` is an edge to
    x.y where that is a module, else to x; an edge to a package that holds the importer is left out,
    since Python imports a module's packages before the module anyway."""
    package = module if is_package else module.rpartition(".")[0]
    edges = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            origin = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin for a in node.names]
        else:
            continue
        edges |= {t for t in targets if t in modules and not (module + ".").startswith(t + ".")}
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph` (module -> modules it imports), each once, by depth-first search."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_module_of_minidl_imports_one_that_imports_it_back():
    """No import cycle: a module never needs one that is still being imported (Tensor's operators are
    bound late, by minidl.ops, as DeZero's setup_variable)."""
    names = {module_name(p): p for p in SOURCES}
    graph = {m: top_level_imports(p.read_text(), m, p.name == "__init__.py", set(names)) for m, p in names.items()}
    assert not cycles(graph), "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles(graph))


def test_the_cycle_finder_finds_a_planted_cycle_through_a_relative_import():
    modules = {"minidl.a", "minidl.b", "minidl.c"}
    graph = {
        "minidl.a": top_level_imports("from . import b\n", "minidl.a", False, modules),
        "minidl.b": top_level_imports("from .c import f\n", "minidl.b", False, modules),
        "minidl.c": top_level_imports("def g():\n    from . import a\nfrom .a import h\n", "minidl.c", False, modules),
    }
    assert cycles(graph) == [["minidl.a", "minidl.b", "minidl.c", "minidl.a"]]
