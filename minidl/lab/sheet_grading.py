"""Grading a lab sheet: the student's cells run in a child process, the teacher's test cells judge here.

grade_sheet() walks the teacher's sheet in order. Each code cell but a test cell runs in the
student's process (student.Student, on the teacher's project at `tree`: the sheet's kernel,
sheet_kernel.py): for a solution cell the student's source, found by its grade_id in the
submitted notebook (a cell that is missing there runs as the stub), for every other cell the
teacher's; the `parameters` cell is followed by the grading's QUICK, OUT and DEVICE, and cells
tagged "long-run" (the full experiments) are skipped. Each test cell is the teacher's, hidden
tests included, and runs here, in the grader's process: the names it reads but does not define
(its imports and its references are its own) are fetched from the student's process, data as
data and anything else as a Remote that calls there. So a student who edits a test cell changes
nothing, and what the student's code does in its process can change only the values it returns.
"""

from __future__ import annotations

import ast
import builtins
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..autograd.tensor import Tensor
from .grading import printable
from .isolation import SWEPT, Sandbox
from .sheet_kernel import HANDLE, TENSOR, tagged
from .sheets import Cell, graded_cells, kind_of, metadata, source, student_version
from .student import Student, StudentCrashed, StudentRaised, StudentTimedOut

LONG_RUN = "long-run"  # the tag of a cell the grader skips (a full experiment; graded cells never need it)


@dataclass
class TestVerdict:
    grade_id: str
    status: str  # "pass", "fail", "not implemented", "crash" or "timeout"
    points: float
    max_points: float
    message: str = ""

    def __post_init__(self):
        self.message = printable(self.message)


@dataclass
class SheetResult:
    """One sheet of one submission: its autograded tests, and the written answers for the teacher."""

    sheet: str
    tests: list[TestVerdict] = field(default_factory=list)
    answers: list[tuple[Cell, str]] = field(default_factory=list)  # (the teacher's cell, the student's text)
    reason: str = ""  # why the sheet could not be graded in full
    seconds: float = 0.0

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def max_points(self) -> float:
        return sum(t.max_points for t in self.tests)


class Remote:
    """An object of the student's process (a function, a model): calls and attributes go there."""

    def __init__(self, student: Student, handle: tuple):
        self._student, self._handle = student, handle

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return _received(self._student, self._student.sheet_attr(self._handle, name))

    def __call__(self, *args, **kwargs):
        return _received(self._student, self._student.sheet_call(self._handle, _sent(args), _sent(kwargs)))

    def __repr__(self) -> str:
        return f"<the notebook's {self._handle[2]}>"


def _sent(value):
    """An argument as the student's process receives it (sheet_kernel.decode makes it an object again)."""
    if isinstance(value, Remote):
        return value._handle
    if isinstance(value, Tensor):
        return (TENSOR, value.numpy(), value.requires_grad)
    if isinstance(value, list | tuple):
        return type(value)(_sent(v) for v in value)
    if isinstance(value, dict):
        return {k: _sent(v) for k, v in value.items()}
    return value


def _received(student: Student, value):
    if tagged(value, HANDLE):
        return Remote(student, value)
    if isinstance(value, list | tuple):
        return type(value)(_received(student, v) for v in value)
    if isinstance(value, dict):
        return {k: _received(student, v) for k, v in value.items()}
    return value


def free_names(code: str) -> list[str]:
    """The names a cell reads but neither assigns, imports nor defines (nor are builtins), in order."""
    tree = ast.parse(code)
    stored, loaded = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded.append if isinstance(node.ctx, ast.Load) else stored.add)(node.id)
        elif isinstance(node, ast.alias):
            stored.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            stored.add(node.name)
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
    return [n for n in dict.fromkeys(loaded) if n not in stored and not hasattr(builtins, n)]


def _failure(e: BaseException, code: str, name: str) -> str:
    """A test's failure in a line or two: its message, or the assert line that failed."""
    text = str(e).strip()
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == name]
    where = code.splitlines()[lines[-1] - 1].strip() if lines else ""
    if isinstance(e, AssertionError):
        return text or f"failed: {where}"
    return f"{type(e).__name__}: {text}" + (f"\n  at: {where}" if where else "")


def run_test(student: Student, cell: Cell, name: str) -> TestVerdict:
    """One test cell, here, with the names it reads from the student's process."""
    try:
        scope = {"__builtins__": builtins, "__name__": "__test__"}
        for free in free_names(cell.source):
            scope[free] = _received(student, student.sheet_get(free))
        exec(compile(cell.source, name, "exec"), scope)
    except StudentRaised as e:
        status = "not implemented" if "not written yet" in str(e) else "fail"
        return TestVerdict(cell.grade_id, status, 0.0, cell.points, f"your code raised {e}")
    except (StudentCrashed, StudentTimedOut):
        raise
    except Exception as e:  # an assert of the test, or the test could not use what the code returned
        return TestVerdict(cell.grade_id, "fail", 0.0, cell.points, _failure(e, cell.source, name))
    return TestVerdict(cell.grade_id, "pass", cell.points, cell.points)


def submitted_cells(submitted: dict | None) -> dict[str, dict]:
    """The submitted notebook's nbgrader cells by grade_id (a cell without one is not read)."""
    cells = {}
    for cell in (submitted or {}).get("cells", []):
        meta = metadata(cell) if isinstance(cell, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            cells.setdefault(meta["grade_id"], cell)
    return cells


def cell_code(cell: dict, kind: str | None, theirs: dict[str, dict], stubs: dict[str, str], tree: Path,
              device: str) -> str:  # fmt: skip
    """What the child runs for a cell of the teacher's sheet that is not a test: the student's solution
    (the stub if it is missing), else the teacher's cell, the parameters with the grading's own."""
    grade_id = metadata(cell)["grade_id"] if kind else None
    if kind == "solution":
        return source(theirs[grade_id]) if grade_id in theirs else stubs[grade_id]
    code = source(cell)
    if "parameters" in cell.get("metadata", {}).get("tags", []):
        code += f"\n# set by the grader\nQUICK = True\nOUT = {str(tree / 'sheet-runs')!r}\nDEVICE = {device!r}\n"
    return code


def died(e: Exception, timeout: float) -> tuple[str, str]:
    """The status and message of the tests left when the child hung or crashed."""
    if isinstance(e, StudentTimedOut):
        return "timeout", f"no result after {timeout:g} s (an endless loop?)"
    return "crash", str(e)


def grade_sheet(tree: Path, teacher: dict, submitted: dict | None, sheet: str, device: str, timeout: float,
                sandbox: Sandbox = SWEPT) -> SheetResult:  # fmt: skip
    """Grade one submitted sheet against the teacher's (see the module docstring)."""
    start, result = time.perf_counter(), SheetResult(sheet)
    stubs = {metadata(c)["grade_id"]: source(c) for c in student_version(teacher, sheet)["cells"] if metadata(c)}
    theirs = submitted_cells(submitted)
    cells = {c.grade_id: c for c in graded_cells(teacher, sheet)}
    missing = [g for g, c in cells.items() if c.kind in ("solution", "answer") and g not in theirs]
    if missing:
        result.reason = f"cells missing from the notebook (run as the blank version): {', '.join(missing)}"
    dead: tuple[str, str] | None = None  # once the child crashed or hung: the status and message of what is left
    with Student(tree, device, timeout, sandbox) as student:
        for k, cell in enumerate(teacher["cells"]):
            meta, name = metadata(cell), f"<{sheet}, cell {k + 1}>"
            kind = kind_of(meta, cell["cell_type"]) if meta else None
            if kind in ("answer", "task"):
                result.answers.append((cells[meta["grade_id"]], source(theirs.get(meta["grade_id"], {}))))
                continue
            if cell["cell_type"] != "code" or LONG_RUN in cell.get("metadata", {}).get("tags", []):
                continue
            if kind == "test":
                test = cells[meta["grade_id"]]
                if dead is None:
                    try:
                        result.tests.append(run_test(student, test, name))
                        continue
                    except (StudentTimedOut, StudentCrashed) as e:
                        dead = died(e, timeout)
                result.tests.append(TestVerdict(test.grade_id, dead[0], 0.0, test.points, dead[1]))
            elif dead is None:
                try:
                    student.sheet_run(cell_code(cell, kind, theirs, stubs, tree, device), name)
                except (StudentTimedOut, StudentCrashed) as e:
                    dead = died(e, timeout)
    result.seconds = time.perf_counter() - start
    return result


def report(result: SheetResult) -> str:
    """A sheet's verdicts and the written answers, as the teacher's report shows them."""
    lines = [f"sheet {result.sheet}: {result.points:g} of {result.max_points:g} autograded points"]
    if result.reason:
        lines.append(f"  could not be graded in full: {printable(result.reason, newlines=False)}")
    for t in result.tests:
        lines.append(f"  {t.grade_id:<28} {t.status.upper():<16} {t.points:g}/{t.max_points:g}")
        lines += ["      " + line for line in t.message.splitlines()]
    for cell, text in result.answers:
        lines.append(f"  {cell.grade_id} ({cell.kind}, {cell.points:g} points, graded by hand):")
        lines += ["      " + line for line in printable(text.strip() or "(no answer)").splitlines()]
    return "\n".join(lines) + "\n"
