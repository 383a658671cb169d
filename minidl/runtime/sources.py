"""Where the kernels' CUDA sources are, and what their signatures say.

The `.cu` files live in `kernels/` at the top of a source checkout and ship inside an
installed package as `minidl/runtime/kernels/` (setup.py copies them there when it builds).
They are looked up from the minidl package that was imported: the `kernels/` beside it
when it runs from a source tree (a checkout, a student copy, an editable install), else
the installed copy. So a copy always runs its own kernels, whatever else is installed.

A kernel's signature is read from its source (no hand-kept table), so the Python side
cannot drift from the CUDA side:

    template <typename T> __global__ void avg_pool2d_forward(const T* __restrict__ x, T* __restrict__ y, int N, ...)
        -> Kernel("avg_pool2d_forward", "pooling.cu", (Param("x", "T", pointer=True, const=True), ...), templated=True)

A comment line right above a kernel may say how many elements its arrays hold, as products of
its number parameters and integer constants, and launch() checks every call against it (a
kernel reading past an array would abort the emulator's process, or read garbage on a GPU):

    // sizes: x = N*C*H*W, y = N*C*HO*WO      -> sizes={"x": ("N", "C", "H", "W"), "y": (...)}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parents[1]  # the minidl package that was imported


def is_source_tree(folder: Path) -> bool:
    """Whether `folder` is a minidl source tree (a checkout or a student copy): setup.py, minidl/, kernels/."""
    return all((folder / name).is_file() for name in ("setup.py", "minidl/__init__.py", "kernels/common.cuh"))


def find_source_dir(package: Path = PACKAGE) -> Path:
    """The kernels of the minidl package at `package`: its source tree's kernels/, else the installed copy."""
    tree = package.parent
    if is_source_tree(tree):
        return tree / "kernels"
    installed = package / "runtime" / "kernels"
    if (installed / "common.cuh").is_file():
        return installed
    raise FileNotFoundError(
        f"the CUDA sources of minidl at {package} are missing: expected {tree / 'kernels'} (a source checkout) "
        f"or {installed} (an installed package); reinstall minidl"
    )


SOURCE_DIR = find_source_dir()

C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}  # what a kernel's T may be
FIXED_TYPES = {
    "int": np.dtype(np.int32),
    "long long": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
}


@dataclass(frozen=True)
class Param:
    """One kernel parameter: `const T* __restrict__ x` is Param("x", "T", pointer=True, const=True)."""

    name: str
    ctype: str
    pointer: bool
    const: bool

    def dtype(self, t: np.dtype | None) -> np.dtype:
        return t if self.ctype == "T" else FIXED_TYPES[self.ctype]

    def __str__(self) -> str:
        return f"{'const ' if self.const else ''}{self.ctype}{'*' if self.pointer else ''} {self.name}"


@dataclass(frozen=True)
class Kernel:
    name: str
    source: str  # the file under kernels/
    params: tuple[Param, ...]
    templated: bool  # template <typename T>: instantiated for float and double
    sizes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (array, factors: number parameters or constants)

    def signature(self) -> str:
        return f"{self.name}({', '.join(map(str, self.params))})"

    def instance(self, t: np.dtype | None) -> str:
        """The name expression of its instantiation for T = t, e.g. 'conv2d_forward<float>'."""
        return f"{self.name}<{C_TYPES[t]}>" if self.templated else self.name

    @cached_property
    def arrays(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.pointer)

    @cached_property
    def scalars(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.pointer)

    @cached_property
    def scalar_names(self) -> list[str]:
        return [p.name for p in self.scalars]


_KERNEL = re.compile(r"(template\s*<\s*typename\s+T\s*>\s*)?__global__\s+void\s+(\w+)\s*\(([^)]*)\)")
_PARAM = re.compile(r"^(const\s+)?(T|int|long long|float|double)\s*(\*)?\s*(?:__restrict__\s+)?(\w+)$")
_INCLUDE = re.compile(r'^#include "([\w.]+)"[ \t]*$', re.MULTILINE)
_PRAGMA_ONCE = re.compile(r"^#pragma once[ \t]*$", re.MULTILINE)
_SIZES = re.compile(r"^// sizes: (.*)$")


def read_source(source: str) -> str:
    """A kernel file with its local #includes pasted in, each once, with #line marks so that
    compiler messages and AddressSanitizer reports name the real file and line. A pasted header's
    `#pragma once` becomes a blank line (pasting each once does its work; in the one file that the
    compiler sees it would only draw a warning).
    (CuPy caches compiled modules by this code string: a header edit must change it.)"""
    seen: set[str] = set()

    def expand(name: str) -> str:
        if name in seen:
            return ""
        seen.add(name)
        text = _PRAGMA_ONCE.sub("", (SOURCE_DIR / name).read_text())
        text += "" if text.endswith("\n") else "\n"
        parts, at = [f'#line 1 "{name}"\n'], 0
        for match in _INCLUDE.finditer(text):
            parts += [text[at : match.start()], expand(match.group(1))]
            line_after = text.count("\n", 0, match.end()) + 2  # the include's own line is number count + 1
            parts.append(f'#line {line_after} "{name}"\n')
            at = match.end() + 1  # past the include's newline
        return "".join([*parts, text[at:]])

    return expand(source)


def parse_kernels(code: str, source: str) -> dict[str, Kernel]:
    """Every __global__ function of `code`, with its parameters."""
    found = {}
    for match in _KERNEL.finditer(code):
        params = []
        for text in filter(None, (" ".join(p.split()) for p in match.group(3).split(","))):
            parsed = _PARAM.match(text)
            if not parsed:
                raise ValueError(f"{source}: kernel {match.group(2)}: cannot read parameter {text!r}")
            const, ctype, star, name = parsed.groups()
            params.append(Param(name, ctype, bool(star), bool(const)))
        line_above = code[: match.start()].rstrip("\n").rpartition("\n")[2]
        sizes = _sizes(line_above, params, f"{source}: kernel {match.group(2)}")
        found[match.group(2)] = Kernel(match.group(2), source, tuple(params), bool(match.group(1)), sizes)
    return found


def _sizes(line: str, params: list[Param], where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The array sizes a '// sizes: a = N*C, b = 2' line declares (none without one), each factor an
    integer parameter or constant."""
    declared = _SIZES.match(line.strip())
    if not declared:
        return ()
    arrays = {p.name for p in params if p.pointer}
    integers = {p.name for p in params if not p.pointer and p.ctype in ("int", "long long")}
    sizes = []
    for item in declared.group(1).split(","):
        array, _, product = (part.strip() for part in item.partition("="))
        factors = tuple(f.strip() for f in product.split("*"))
        if array not in arrays or not all(f in integers or f.isdigit() for f in factors):
            raise ValueError(f"{where}: cannot read the size {item.strip()!r}: expected ARRAY = FACTOR*..., each "
                             f"factor one of its integer parameters {sorted(integers)} or a constant")  # fmt: skip
        sizes.append((array, factors))
    return tuple(sizes)


@lru_cache(maxsize=1)
def kernels() -> dict[str, Kernel]:
    """Every kernel of kernels/*.cu by name (names are unique across files)."""
    table: dict[str, Kernel] = {}
    for path in sorted(SOURCE_DIR.glob("*.cu")):
        for name, kernel in parse_kernels(read_source(path.name), path.name).items():
            if name in table:
                raise ValueError(f"kernel {name} is defined in both {table[name].source} and {path.name}")
            table[name] = kernel
    return table


def sources() -> list[str]:
    return sorted({k.source for k in kernels().values()})


def name_expressions(source: str) -> list[str]:
    """Every instantiation of a file's kernels, e.g. 'conv2d_forward<float>'."""
    names = []
    for k in kernels().values():
        if k.source == source:
            names += [k.instance(t) for t in C_TYPES] if k.templated else [k.name]
    return names
