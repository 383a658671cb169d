"""python -m minidl.lab list | student DIR | check N|all | grade SUBMISSIONS/ | probe (the grader's child)

`check` is the student's self-check: it grades the copy it is run from (the minidl source tree
that holds the working directory, else the one this minidl was imported from) with that copy's
own checks, which its author can change. `grade` is the teacher's: it takes only the solution
regions out of each submission and grades them inside the teacher's own project (gradebook.py).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ..backend import DEVICES, cuda_available
from ..cli import run
from ..experiments.options import positive_int
from ..runtime.sources import is_source_tree
from .exercises import EXERCISES, exercise, stubs
from .gradebook import SubmissionError, device_for, grade_class, heading, outcome
from .grading import grade
from .isolation import CHOICES, IsolationError
from .solutions import PROJECT_ENTRIES, MarkerError, write_copy
from .student import imported_tree, serve, source_tree


def project_root() -> Path:
    """The source tree this minidl runs from (a student copy is made from it)."""
    root = imported_tree()
    if not is_source_tree(root):
        raise SystemExit(f"a student copy is made from a source checkout of minidl; this one is installed at {root}")
    return root


def list_exercises() -> int:
    for e in EXERCISES:
        print(f"{e.number:3d}  {e.title:<72} [{', '.join(e.devices)}]  {e.sheet}")
    return 0


def write_student_copy(folder: Path) -> int:
    root, target = project_root(), folder.resolve()
    copied = [root / entry for entry in PROJECT_ENTRIES]
    if target == root or any(target == c or c in target.parents for c in copied):
        print(f"error: {folder} is inside what the copy is made of ({', '.join(PROJECT_ENTRIES)} of {root}); "
              "give a new folder outside them, e.g. handout/", file=sys.stderr)  # fmt: skip
        return 2
    try:
        regions = write_copy(root, folder, stubs())
    except (FileExistsError, MarkerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote a student copy to {folder}: {regions} solution regions of {len(EXERCISES)} exercises blanked.")
    print(f"The sheets are in {folder / 'docs' / 'exercises'}; a student grades with: python -m minidl.lab check N")
    return 0


def copy_to_grade() -> Path | None:
    """The copy that `check` grades: the source tree around the working directory, else the imported one
    (when minidl was imported from a source tree, not an installed package)."""
    return source_tree(Path.cwd().resolve()) or (imported_tree() if is_source_tree(imported_tree()) else None)


def no_gpu_for(device: str | None) -> bool:
    """Whether --device cuda was asked for where there is none (said on stderr)."""
    if device == "cuda" and not cuda_available():
        print("error: --device cuda needs an NVIDIA GPU and CuPy; grade kernels on emu here", file=sys.stderr)
        return True
    return False


def check(which: str, device: str | None, timeout: float) -> int:
    tree = copy_to_grade()
    if tree is None:
        print(
            "error: run the grader inside a copy of minidl (the folder `python -m minidl.lab student` made, or a "
            f"checkout); {Path.cwd()} is in none, and minidl is imported from {imported_tree()}",
            file=sys.stderr,
        )
        return 2
    chosen = EXERCISES if which == "all" else (exercise(int(which)),)
    if which != "all" and device is not None and device not in chosen[0].devices:
        print(f"error: exercise {which} is graded on {' or '.join(chosen[0].devices)}, not {device}", file=sys.stderr)
        return 2
    if no_gpu_for(device):
        return 2
    print(f"grading the copy at {tree}")
    passed = 0
    for e in chosen:
        print(heading(e, device_for(e, device)), end="", flush=True)
        verdict = grade(tree, e.number, device_for(e, device), timeout)
        passed += verdict.passed
        print(outcome(verdict))
    print(f"{passed} of {len(chosen)} exercises pass")
    return 0 if passed == len(chosen) else 1


def grade_submissions(folder: Path, out: Path | None, jobs: int, device: str | None, timeout: float,
                      isolation: str) -> int:  # fmt: skip
    if no_gpu_for(device):
        return 2
    out = out or folder.resolve().parent / f"{folder.resolve().name}-grades"
    try:
        rows = grade_class(project_root(), folder, out, jobs, device, timeout, isolation)
    except (SubmissionError, IsolationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"{row.label:<24} {row.passed:2d} of {len(EXERCISES)} pass" + (f"  ({row.why})" if row.reason else ""))
    print(f"the gradebook: {out / 'grades.csv'}; each submission's report: {out / 'reports'}")
    return 0


def exercise_choice(text: str) -> str:
    if text == "all":
        return text
    try:
        exercise(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'all' or an exercise number 1-{len(EXERCISES)}") from e
    return text


def timeout_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of seconds")
    return seconds


def pipe_pair(text: str) -> tuple[int, int]:
    try:
        requests, replies = (int(fd) for fd in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected two file descriptors, e.g. 5,6") from None
    return requests, replies


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minidl.lab", description="Lab exercises: list, hand out, grade.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the exercises, one line each")
    student = commands.add_parser("student", help="write a student copy of the project (solutions blanked)")
    student.add_argument("folder", type=Path, help="a new (or empty) folder")
    check_parser = commands.add_parser("check", help="the student's self-check of the copy it is run in")
    check_parser.add_argument("exercise", type=exercise_choice, help="an exercise number, or 'all'")
    teacher = commands.add_parser("grade", help="the teacher's: grade every submission in a folder into a gradebook")
    teacher.add_argument("submissions", type=Path, help="a folder of student copies (folders or archives)")
    teacher.add_argument("--out", type=Path, default=None, help="the gradebook's folder (default SUBMISSIONS-grades)")
    teacher.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help="submissions graded at once")
    teacher.add_argument(
        "--isolation",
        choices=CHOICES,
        default="auto",
        help="what each student's code runs in: a bubblewrap sandbox, or a session swept of its processes "
        "(default auto: bubblewrap where it works)",
    )
    for command in (check_parser, teacher):
        command.add_argument(
            "--device",
            choices=DEVICES,
            default=None,
            help="emu or cuda for kernel exercises (default emu); the others run on cpu",
        )
        command.add_argument(
            "--timeout", type=timeout_seconds, default=600.0, help="seconds per exercise (default 600)"
        )
    probe = commands.add_parser("probe", help="answer a grader's requests (what check runs in a child)")
    probe.add_argument("--device", choices=DEVICES, required=True)
    probe.add_argument("--copy", type=Path, required=True, help="the copy being graded (the child refuses any other)")
    probe.add_argument("--pipes", type=pipe_pair, required=True, help="the requests' and replies' file descriptors")
    args = parser.parse_args(argv)
    if args.command == "list":
        return list_exercises()
    if args.command == "student":
        return write_student_copy(args.folder)
    if args.command == "probe":
        return serve(args.device, args.copy, *args.pipes)
    if args.command == "grade":
        return grade_submissions(args.submissions, args.out, args.jobs, args.device, args.timeout, args.isolation)
    return check(args.exercise, args.device, args.timeout)


if __name__ == "__main__":
    run(main)
