"""How an exercise is graded: cases, comparisons a student can act on, and the verdict.

A check (minidl/lab/checks.py) runs in the grader's process with a Student (student.py): it
makes the inputs and the references itself and asks the student's process only for the
outputs of the student's code. It announces each case with case(...) and compares with
compare(...), which raises CheckFailed naming the case, the shapes, the largest error and
where it is, and a hint. grade() turns what happened into a Verdict: every comparison
passed, one failed, the student's code raised (a stub: not implemented), its process died
(AddressSanitizer stops a kernel that reads out of bounds) or its time ran out.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from .isolation import SWEPT, Sandbox
from .student import Student, StudentCrashed, StudentRaised, StudentTimedOut


class CheckFailed(AssertionError):
    """A check's verdict for the student: what is wrong, in which case, and a hint."""


class _Cases:  # the grading in progress, in the grader's process
    current = "(before the first case)"
    count = 0


def case(description: str) -> None:
    """Announce the case about to be checked."""
    _Cases.current, _Cases.count = description, _Cases.count + 1


def fail(what: str, hint: str = "") -> NoReturn:
    raise CheckFailed(f"{what}\n  case: {_Cases.current}" + (f"\n  hint: {hint}" if hint else ""))


def compare(what: str, got, want, rtol: float = 1e-5, atol: float = 1e-6, hint: str = "") -> None:
    """got (the student's output) must equal want (a NumPy reference) to rtol/atol: same shape, no NaN,
    close values."""
    want = np.asarray(want)
    if got is None or isinstance(got, str):
        fail(f"{what} is {got or 'None'}, expected an array of shape {want.shape}", hint)
    got = np.asarray(got)
    if got.dtype.kind not in "biuf":
        fail(f"{what} holds {got.dtype} values, expected numbers", hint)
    if got.shape != want.shape:
        fail(f"{what} has shape {got.shape}, expected {want.shape}", hint)
    bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=False)
    if bad.any():
        error = np.where(np.isnan(got), np.inf, np.abs(got.astype(np.float64) - want))
        at = np.unravel_index(np.argmax(np.where(bad, error, -1)), got.shape) if got.ndim else ()
        where = f" at index {list(map(int, at))}" if got.ndim else ""
        fail(
            f"{what} is wrong in {int(bad.sum())} of {got.size} values; the largest error{where}: "
            f"got {float(got[at]):.8g}, expected {float(want[at]):.8g}",
            hint,
        )


# ------------------------------------------------------------ the verdict
def printable(text: str, newlines: bool = True) -> str:
    """text with each control character written as its escape (ESC as \\x1b, CR as \\r, U+202E as
    \\u202e), newlines kept if `newlines`: what a student's code wrote cannot move a terminal's
    cursor, recolour it or overwrite a line the grader printed."""
    return "".join(
        c if (c == "\n" and newlines) or c == "\t" or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")
        else ascii(c)[1:-1]
        for c in text
    )  # fmt: skip


@dataclass
class Verdict:
    status: str  # "pass", "fail", "not implemented", "crash" or "timeout"
    message: str  # made printable: no control character but newlines
    cases: int
    seconds: float

    def __post_init__(self):
        self.message = printable(self.message)

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def grade(tree: Path, number: int, device: str, timeout: float, sandbox: Sandbox = SWEPT) -> Verdict:
    """Grade exercise `number` of the copy at `tree` on `device`: its code runs in a child process in
    `sandbox`, the check and the verdict here; a crash or a hang of the child becomes the verdict."""
    from .exercises import exercise

    _Cases.current, _Cases.count = "(before the first case)", 0
    start = time.perf_counter()
    try:
        with Student(tree, device, timeout, sandbox) as student:
            exercise(number).check(student)
        status, message = "pass", ""
    except CheckFailed as e:
        status, message = "fail", str(e)
    except StudentRaised as e:
        stub = re.search(r"Exercise \d+ not implemented[^\n]*", str(e))
        if stub:
            status, message = "not implemented", stub[0]
        else:
            status, message = "fail", f"the code raised {e}\n  case: {_Cases.current}"
    except StudentTimedOut:
        status, message = "timeout", f"no result after {timeout:g} s (an endless loop?)\n  case: {_Cases.current}"
    except StudentCrashed as e:
        status, message = "crash", f"{e}\n  case: {_Cases.current}"
    except Exception as e:  # the check could not use what the student's code returned
        status, message = "fail", f"the result could not be checked ({type(e).__name__}: {e})\n  case: {_Cases.current}"
    return Verdict(status, message, _Cases.count, time.perf_counter() - start)
