"""Lab sheets: notebooks in nbgrader's format, and the student version made from the teacher's.

A sheet (notebooks/*.ipynb) is the teacher's version, complete. Its cells carry nbgrader's cell
metadata, schema version 3, so a teacher who uses nbgrader can take the sheets as they are:

    {"nbgrader": {"grade_id": "dae-loss", "solution": bool, "grade": bool, "locked": bool,
                  "task": bool, "points": 2, "schema_version": 3}}

    a solution cell (code)          solution, not grade: the student writes what lies between
                                    `### BEGIN SOLUTION` and `### END SOLUTION`
    an autograded test cell (code)  grade and locked, with points: asserts; what lies between
                                    `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` is graded
                                    but not shown to the student
    a written answer (markdown)     solution and grade, with points: graded by hand
    a task (markdown)               task, with points: graded by hand

student_version() makes what a student gets, without nbgrader: each solution region replaced by a
stub that raises NotImplementedError naming the sheet and the cell, a written answer's text by
"YOUR ANSWER HERE", hidden tests removed, every output cleared. Notebooks are read and written as
JSON (nbformat 4), so neither nbformat nor nbgrader is needed to hand sheets out.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..serialization import atomic_write

SCHEMA_VERSION = 3
ANSWER_STUB = "YOUR ANSWER HERE"
_REGION = re.compile(r"^(?P<indent>[ \t]*)### (?P<kind>BEGIN|END) (?P<what>SOLUTION|HIDDEN TESTS)[ \t]*$")


class SheetError(ValueError):
    """A sheet whose nbgrader metadata or markers are malformed; the message names the sheet and cell."""


@dataclass(frozen=True)
class Cell:
    """A graded or written cell of a sheet, by its nbgrader metadata."""

    grade_id: str
    kind: str  # "solution", "test", "answer", "task" or "locked"
    points: float
    source: str


def read_sheet(path: Path) -> dict:
    """A notebook (nbformat 4) as a dict; SheetError if it is not one."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SheetError(f"{path}: not a readable notebook ({e})") from None
    if not isinstance(notebook, dict) or notebook.get("nbformat") != 4 or not isinstance(notebook.get("cells"), list):
        raise SheetError(f"{path}: not a Jupyter notebook of format 4")
    return notebook


def write_sheet(path: Path, notebook: dict) -> None:
    """Write a notebook as Jupyter does (indent 1, a final newline), whole or not at all."""
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def source(cell: dict) -> str:
    """A cell's source as one string (Jupyter writes a list of lines; anything else but text reads as "")."""
    text = cell.get("source", "")
    if isinstance(text, list):
        return "".join(line for line in text if isinstance(line, str))
    return text if isinstance(text, str) else ""


def metadata(cell: dict) -> dict | None:
    """The cell's nbgrader metadata (None: an ordinary cell)."""
    return cell.get("metadata", {}).get("nbgrader")


def kind_of(meta: dict, cell_type: str) -> str:
    """What an nbgrader cell is, from its flags (see the module docstring)."""
    if meta.get("task"):
        return "task"
    if meta.get("solution") and meta.get("grade"):
        return "answer" if cell_type == "markdown" else "solution"
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "test"
    return "locked"


def graded_cells(notebook: dict, name: str = "sheet") -> list[Cell]:
    """The nbgrader cells of a notebook in order, checked: schema version 3, unique grade ids, points
    on graded cells, autograded tests in code cells."""
    cells, seen = [], set()
    for k, cell in enumerate(notebook["cells"]):
        meta = metadata(cell)
        if meta is None:
            continue
        where = f"{name}, cell {k + 1}"
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise SheetError(f"{where}: nbgrader schema_version {meta.get('schema_version')!r}, expected 3")
        grade_id = meta.get("grade_id")
        if not isinstance(grade_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", grade_id) or grade_id in seen:
            raise SheetError(f"{where}: grade_id {grade_id!r} must be unique letters, digits, - and _")
        seen.add(grade_id)
        kind = kind_of(meta, cell["cell_type"])
        points = meta.get("points", 0)
        if kind in ("test", "answer", "task") and not (isinstance(points, int | float) and points > 0):
            raise SheetError(f"{where} ({grade_id}): a {kind} cell needs points > 0, got {points!r}")
        if kind == "test" and cell["cell_type"] != "code":
            raise SheetError(f"{where} ({grade_id}): an autograded test must be a code cell")
        cells.append(Cell(grade_id, kind, float(points) if kind != "solution" else 0.0, source(cell)))
    return cells


def strip_region(text: str, what: str, stub: str | None, where: str) -> str:
    """text with each `### BEGIN <what>` … `### END <what>` region replaced by `stub` (at the region's
    indent; None: removed, markers and all). Solution regions keep their markers, as nbgrader's do not:
    here the stub alone is left, so the student writes in its place."""
    out, inside = [], None
    for line in text.splitlines():
        marker = _REGION.match(line)
        if marker is None or marker["what"] != what:
            if inside is None:
                out.append(line)
            continue
        if marker["kind"] == "BEGIN":
            if inside is not None:
                raise SheetError(f"{where}: BEGIN {what} inside another")
            inside = marker["indent"]
            if stub is not None:
                out.append(inside + stub)
        else:
            if inside is None:
                raise SheetError(f"{where}: END {what} without a BEGIN {what}")
            inside = None
    if inside is not None:
        raise SheetError(f"{where}: BEGIN {what} is never closed")
    return "\n".join(out)


def stub_message(sheet: str, grade_id: str) -> str:
    """What a student's stub says when it runs."""
    return f"{sheet}, cell {grade_id!r} not written yet: write your code in place of this line"


def student_version(notebook: dict, sheet: str) -> dict:
    """The student's notebook made from the teacher's (see the module docstring)."""
    graded_cells(notebook, sheet)  # checked before anything is written
    student = copy.deepcopy(notebook)
    for cell in student["cells"]:
        meta = metadata(cell)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if meta is None:
            continue
        where, kind = f"{sheet}, cell {meta['grade_id']}", kind_of(meta, cell["cell_type"])
        text = source(cell)
        if kind == "solution" and cell["cell_type"] == "code":
            stub = f"raise NotImplementedError({stub_message(sheet, meta['grade_id'])!r})"
            if "### BEGIN SOLUTION" not in text:
                raise SheetError(f"{where}: a solution cell needs a ### BEGIN SOLUTION region")
            text = strip_region(text, "SOLUTION", stub, where)
        elif kind == "answer":
            text = ANSWER_STUB
        elif kind == "test":
            text = strip_region(text, "HIDDEN TESTS", None, where)
        cell["source"] = text.splitlines(keepends=True)  # lines, as Jupyter writes them
    return student


def sheet_paths(folder: Path) -> list[Path]:
    """The sheets of a folder: its notebooks, by name."""
    return sorted(Path(folder).glob("*.ipynb"))


def write_student_sheets(sheets: Path, out: Path) -> list[Path]:
    """The student version of every sheet in `sheets`, written to `out` (made if missing) under the same
    names; returns their paths."""
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    for path in sheet_paths(sheets):
        target = Path(out) / path.name
        write_sheet(target, student_version(read_sheet(path), path.stem))
        written.append(target)
    return written
