"""How an exercise is graded: cases, comparisons a student can act on, and a child process.

A check (minidl/lab/checks.py) announces each case with case(...) and compares with
compare(...), which raises CheckFailed naming the case, the shapes, the largest error and
where it is, and a hint. Each exercise is graded in a child process (grade_in_child), so a
kernel that reads out of bounds, which AddressSanitizer stops, or that never ends, is
reported as a failure of its case instead of ending the grader. The child runs the minidl of
the copy being graded, Python and CUDA alike, whatever other minidl is installed: it starts
with the copy as its working directory and first on its import path, and refuses to grade
if minidl came from anywhere else (the kernels are found beside the imported package).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor
from ..runtime.sources import PACKAGE, is_source_tree

VERDICT = "minidl-lab-verdict: "  # the child's last line of output starts with this
CASE = "case: "


class CheckFailed(AssertionError):
    """A check's verdict for the student: what is wrong, in which case, and a hint."""


class _Cases:
    current = "(before the first case)"
    count = 0


def case(description: str) -> None:
    """Announce the case about to be checked (printed, so a crash can be traced to it)."""
    _Cases.current, _Cases.count = description, _Cases.count + 1
    print(CASE + description, flush=True)


def fail(what: str, hint: str = "") -> NoReturn:
    raise CheckFailed(f"{what}\n  case: {_Cases.current}" + (f"\n  hint: {hint}" if hint else ""))


def compare(what: str, got, want, rtol: float = 1e-5, atol: float = 1e-6, hint: str = "") -> None:
    """got must equal want (a NumPy reference) to rtol/atol: same shape, no NaN, close values."""
    got = backend.to_numpy(got.data if isinstance(got, Tensor) else got)
    got, want = np.asarray(got), np.asarray(want)
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


# ------------------------------------------------------------ the child process
@dataclass
class Verdict:
    status: str  # "pass", "fail", "not implemented", "crash" or "timeout"
    message: str
    cases: int
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def grade_here(number: int, device: str, copy: Path) -> Verdict:
    """Run exercise `number`'s check in this process, on the minidl of the copy at `copy` (refused
    if this process imported another), and print the verdict line."""
    from .exercises import exercise

    start = time.perf_counter()
    if imported_tree() != copy.resolve():
        message = f"asked to grade the copy at {copy}, this process imported minidl from {imported_tree()}"
        verdict = Verdict("crash", message, 0, 0.0)
        print(VERDICT + json.dumps(verdict.__dict__), flush=True)
        return verdict
    try:
        exercise(number).check(device)
        status, message = "pass", ""
    except CheckFailed as e:
        status, message = "fail", str(e)
    except Exception as e:  # a stub, or the student's code raising: say which case and what
        text = f"{type(e).__name__}: {e}"
        if re.search(r"Exercise \d+ not implemented", text):
            status, message = "not implemented", re.search(r"Exercise \d+ not implemented[^\n]*", text)[0]
        else:
            status, message = "fail", f"the code raised {text}\n  case: {_Cases.current}"
    verdict = Verdict(status, message, _Cases.count, time.perf_counter() - start)
    print(VERDICT + json.dumps(verdict.__dict__), flush=True)
    return verdict


def source_tree(folder: Path) -> Path | None:
    """The minidl source tree (checkout or student copy) that holds `folder`, if any."""
    return next((tree for tree in (folder, *folder.parents) if is_source_tree(tree)), None)


def imported_tree() -> Path:
    """The folder that holds the minidl package this process imported."""
    return PACKAGE.parent


def child_environment(tree: Path) -> dict[str, str]:
    """The environment of a process that must import minidl from `tree`: it first on the import path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def grade_in_child(tree: Path, number: int, device: str, timeout: float) -> Verdict:
    """Grade exercise `number` of the copy at `tree` on `device` in a child process; a crash or a
    hang becomes a verdict."""
    command = [sys.executable, "-m", "minidl.lab", "grade", str(number), "--device", device, "--copy", str(tree)]
    start = time.perf_counter()
    out, err, returncode = run_contained(command, tree, child_environment(tree), timeout)
    if returncode is None:
        return Verdict(
            "timeout",
            f"no result after {timeout:g} s (an endless loop?)\n  case: {_last_case(out)}",
            _count_cases(out),
            timeout,
        )
    for line in reversed(out.splitlines()):
        if line.startswith(VERDICT):
            return Verdict(**json.loads(line[len(VERDICT) :]))
    return Verdict(
        "crash",
        describe_crash(err, returncode) + f"\n  case: {_last_case(out)}",
        _count_cases(out),
        time.perf_counter() - start,
    )


def run_contained(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[str, str, int | None]:
    """Run `command` in a process group of its own, its output into files (not pipes, which a forked
    grandchild could hold open); when it exits or its time is up, kill whatever is left of the group.
    Returns stdout, stderr and the exit status (None: timed out)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd, env=env,
                                 start_new_session=True)  # fmt: skip
        try:
            returncode = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)  # the child's own children too
            child.wait()
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), returncode


def _count_cases(stdout: str) -> int:
    return sum(line.startswith(CASE) for line in stdout.splitlines())


def _last_case(stdout: str) -> str:
    cases = [line[len(CASE) :] for line in stdout.splitlines() if line.startswith(CASE)]
    return cases[-1] if cases else "(before the first case)"


def describe_crash(stderr: str, returncode: int) -> str:
    """What a crashed child's stderr says, in a line or two: AddressSanitizer's finding and
    the CUDA thread the emulator names, or else the end of stderr."""
    finding = re.search(r"ERROR: AddressSanitizer: ([\w-]+)", stderr)
    access = re.search(r"^(READ|WRITE) of size (\d+)", stderr, re.MULTILINE)
    thread = re.search(r"minidl emulator: in kernel (.*)", stderr)
    if finding:
        text = f"AddressSanitizer stopped the kernel: {finding[1]}"
        if access:
            text += f", a {access[1]} of {access[2]} bytes outside every array"
        if thread:
            text += f"\n  where: {thread[1]}"
        return text + "\n  hint: an index past the end (or before the start) of an array; check the bounds tests"
    tail = "\n".join(stderr.strip().splitlines()[-6:])
    return f"the grader's process died (exit status {returncode}):\n{tail}"
