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
