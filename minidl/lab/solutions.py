"""Solution regions in minidl's own sources, and the student copy made by blanking them.

A region is marked as nbgrader marks one, with the number of the exercise it belongs to,
by a line `### BEGIN SOLUTION exercise 5` before it and a line `### END SOLUTION` after it
(in Python; in CUDA the comment is `//` instead of `###`).

The markers are comments: the project itself runs complete. In a student copy every region
keeps its markers and its body becomes a stub that fails loudly and names its exercise and
sheet: in Python `raise NotImplementedError(...)`, in CUDA a comment and `minidl_trap(...)`
(kernels/common.cuh), which stops the kernel (the emulator reports the message; a GPU traps).
The student writes the answer between the markers; splice() takes those bodies, and only
those, out of a handed-in copy and into a fresh copy of the teacher's project.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .handin import SubmissionError, read_source

COMMENT = {".py": "###", ".cu": "//", ".cuh": "//"}  # the marker's comment, by file suffix
_MARKER = re.compile(r"^(?P<indent>\s*)(?P<comment>###|//) (?P<kind>BEGIN|END) SOLUTION(?P<rest>.*)$")
_BEGIN_REST = re.compile(r"^ exercise (?P<number>[1-9]\d*)\s*$")

# What a copy of the project holds (paths under the project root); caches and builds are left out.
PROJECT_ENTRIES = (
    "minidl",
    "kernels",
    "tests",
    "examples",
    "docs",
    "benchmarks",
    "README.md",
    "pyproject.toml",
    "setup.py",
    ".gitignore",
)
_LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".hypothesis")


class MarkerError(ValueError):
    """A solution marker is malformed, unclosed, nested or of the wrong comment style."""


@dataclass(frozen=True)
class Region:
    """Lines first..last (0-based, both markers included) of `path` solve exercise `number`."""

    path: Path  # relative to the project root
    number: int
    first: int
    last: int
    indent: str


def regions_in(text: str, path: Path) -> list[Region]:
    """The solution regions of one source file's text."""
    comment = COMMENT.get(path.suffix)
    regions, open_at = [], None
    for k, line in enumerate(text.splitlines()):
        marker = _MARKER.match(line)
        if marker is None:
            continue
        where = f"{path}:{k + 1}"
        if marker["comment"] != comment:
            raise MarkerError(f"{where}: a {path.suffix} file marks solutions with {comment!r}, got {line.strip()!r}")
        if marker["kind"] == "BEGIN":
            number = _BEGIN_REST.match(marker["rest"])
            if number is None:
                raise MarkerError(f"{where}: expected '{comment} BEGIN SOLUTION exercise N', got {line.strip()!r}")
            if open_at is not None:
                raise MarkerError(f"{where}: BEGIN SOLUTION inside the region opened at line {open_at[0] + 1}")
            open_at = (k, int(number["number"]), marker["indent"])
        else:
            if marker["rest"].strip():
                raise MarkerError(f"{where}: expected '{comment} END SOLUTION' alone, got {line.strip()!r}")
            if open_at is None:
                raise MarkerError(f"{where}: END SOLUTION without a BEGIN SOLUTION")
            regions.append(Region(path, open_at[1], open_at[0], k, open_at[2]))
            open_at = None
    if open_at is not None:
        raise MarkerError(f"{path}:{open_at[0] + 1}: BEGIN SOLUTION is never closed by END SOLUTION")
    return regions


def source_files(root: Path) -> list[Path]:
    """The files under root (relative paths) that may hold solution regions."""
    files = []
    for top in ("minidl", "kernels"):
        files += [p.relative_to(root) for p in sorted((root / top).rglob("*")) if p.suffix in COMMENT]
    return files


def find_regions(root: Path) -> list[Region]:
    """Every solution region of the project at root."""
    return [r for path in source_files(root) for r in regions_in((root / path).read_text(), path)]


def stub(region: Region, message: str, sheet: str) -> list[str]:
    """The lines that replace a region's body (between its markers) in the student copy."""
    if region.path.suffix == ".py":
        return [f"{region.indent}raise NotImplementedError({message!r})"]
    return [
        f"{region.indent}// Exercise {region.number}: write this part; the sheet is {sheet}",
        f'{region.indent}minidl_trap("{message}");',
    ]


def blank(text: str, regions: Iterable[Region], stubs: dict[int, tuple[str, str]]) -> str:
    """text with the body of every region replaced by its stub; stubs maps an exercise to (message, sheet)."""
    return replace_bodies(text, {r: stub(r, *stubs[r.number]) for r in regions})


def replace_bodies(text: str, bodies: dict[Region, list[str]]) -> str:
    """text with the lines between each region's markers replaced by bodies[region]."""
    lines = text.splitlines()
    for region in sorted(bodies, key=lambda r: r.first, reverse=True):
        lines[region.first + 1 : region.last] = bodies[region]
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def body(text: str, region: Region) -> list[str]:
    """The lines of text between region's markers."""
    return text.splitlines()[region.first + 1 : region.last]


def splice(handed_in: Path, blanked: Path) -> tuple[dict[int, str], set[int]]:
    """Write the bodies of the solution regions of the copy at `handed_in` into the blanked copy at
    `blanked` (write_copy's, from the teacher's project), file by file and region by region in order,
    each read by handin.read_source (a link, a FIFO, a device is refused, never followed or opened).
    A file whose regions do not match the handout's (missing, a marker deleted, a region duplicated)
    gives nothing. Returns, for each exercise with such a file, the reason (its regions stay stubs),
    and the exercises with a region whose body differs from the blanked copy's (written)."""
    broken: dict[int, str] = {}
    written: set[int] = set()
    for path in source_files(blanked):
        handout_text = (blanked / path).read_text()
        handout = regions_in(handout_text, path)
        if not handout:
            continue
        numbers = [r.number for r in handout]
        try:
            text = read_source(handed_in, path)
            regions = regions_in(text, path)
        except FileNotFoundError:
            reason = f"{path} is missing"
        except (MarkerError, UnicodeDecodeError, SubmissionError) as e:
            reason = str(e)
        else:
            found = [r.number for r in regions]
            if found == numbers:
                bodies = {mine: body(text, theirs) for mine, theirs in zip(handout, regions)}
                written |= {mine.number for mine, lines in bodies.items() if lines != body(handout_text, mine)}
                (blanked / path).write_text(replace_bodies(handout_text, bodies))
                continue
            reason = (f"{path} has solution regions of exercises {found}, the handout {numbers} "
                      "(a marker deleted, or a region copied?)")  # fmt: skip
        for number in numbers:
            broken.setdefault(number, reason)
    return broken, written


def write_copy(root: Path, destination: Path, stubs: dict[int, tuple[str, str]] | None,
               then: Callable[[Path], object] | None = None) -> int:  # fmt: skip
    """Copy the project at root to destination (which must not exist, or be empty), with every
    solution region blanked when stubs is given, and `then(copy)` called on it (the student
    sheets written in). The copy is built beside destination and renamed into place, so an
    interrupted copy leaves nothing half-written. Returns the number of regions blanked."""
    destination = Path(destination).resolve()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise FileExistsError(f"{destination} already exists and is not an empty folder; give a new one")
    regions = find_regions(root) if stubs is not None else []
    unknown = sorted({r.number for r in regions} - set(stubs or {}))
    if unknown:
        raise MarkerError(f"solution regions of unknown exercises {unknown} in {root}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        for entry in PROJECT_ENTRIES:
            source = root / entry
            if source.is_dir():
                shutil.copytree(source, work / entry, ignore=_LEFT_OUT)
            elif source.is_file():
                shutil.copy2(source, work / entry)
        for path in {r.path for r in regions}:
            text = (work / path).read_text()
            (work / path).write_text(blank(text, [r for r in regions if r.path == path], stubs))
        if then is not None:
            then(work)
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the copy gets the usual permissions
        if destination.exists():
            destination.rmdir()
        os.replace(work, destination)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return len(regions)
