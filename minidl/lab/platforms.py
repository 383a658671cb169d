"""What the grading platforms read: Gradescope's results.json and autograder bundle, GitHub Classroom's workflow.

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/) runs a bundle's
`setup.sh` once to build its image, then `run_autograder` for each submission, with the student's
upload in /autograder/submission; it reads /autograder/results/results.json: `score`, `tests`
(each `name`, `score`, `max_score`, `status`, `output`, `visibility`), `output`, `execution_time`.
Our run_autograder grades the upload with `python -m minidl.lab grade` (the teacher's project is
the bundle's source) and copies that submission's results to where Gradescope reads them.

GitHub Classroom (https://github.com/classroom-resources/autograding-command-grader) runs
`.github/workflows/classroom.yml` in each student's repository: a step per test with
classroom-resources/autograding-command-grader (`test-name`, `command`, `timeout` in minutes,
`max-score`; a test passes when its command exits 0), then autograding-grading-reporter with
each step's result in the environment as <STEP ID IN CAPITALS>_RESULTS and the step ids as
`runners`. Ours runs `python -m minidl.lab check N` per exercise, worth its points. It runs in the
student's repository, so it is the student's self-check: the grade a teacher can trust is `grade`'s.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .exercises import EXERCISES
from .solutions import write_copy

VISIBLE = "visible"


def gradescope_results(row, device: str | None = None) -> dict:
    """A gradebook row (gradebook.Row) in Gradescope's results.json format: a test per exercise (its
    points if it passes) and per autograded sheet cell (its points if it passes); the written answers,
    graded by hand on Gradescope, are not tests here."""
    tests = []
    for e in EXERCISES:
        verdict = row.verdicts.get(e.number)
        passed = verdict is not None and verdict.passed
        if verdict is None:
            output = "not graded: " + (row.why or "the submission could not be read")
        else:
            output = f"{verdict.status.upper()} after {verdict.cases} cases\n{verdict.message}".strip()
        tests.append({"name": f"exercise {e.number}: {e.title}", "number": str(e.number),
                      "score": float(e.points if passed else 0), "max_score": float(e.points),
                      "status": "passed" if passed else "failed", "output": output, "visibility": VISIBLE})  # fmt: skip
    for sheet in row.sheets:
        for t in sheet.tests:
            tests.append({"name": f"{sheet.sheet}: {t.grade_id}", "score": float(t.points),
                          "max_score": float(t.max_points), "status": "passed" if t.status == "pass" else "failed",
                          "output": f"{t.status.upper()}\n{t.message}".strip(), "visibility": VISIBLE})  # fmt: skip
    seconds = sum(v.seconds for v in row.verdicts.values()) + sum(s.seconds for s in row.sheets)
    written = sum(c.points for s in row.sheets for c, _ in s.answers)
    return {
        "score": float(sum(t["score"] for t in tests)),
        "execution_time": round(seconds, 1),
        "output": f"{row.passed} of {len(EXERCISES)} exercises pass; lab sheets {row.sheet_points:g} autograded "
        f"points; {written:g} points of written answers are graded by hand"
        + (f"\ncould not be graded in full: {row.why}" if row.reason else ""),
        "visibility": VISIBLE,
        "stdout_visibility": "hidden",
        "tests": tests,
    }


RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission: the student's upload (their copy of the project, as
# `python -m minidl.lab student` made it, or a zip of it) is in /autograder/submission. It is graded by
# the teacher's project in /autograder/source, and its results go where Gradescope reads them.
# (AUTOGRADER and PYTHON move it elsewhere for a trial run; its arguments go to `grade`, e.g. --part sheets.)
set -euo pipefail
base=${AUTOGRADER:-/autograder}
work=$(mktemp -d)
mkdir "$work/submissions"
cp -r "$base/submission" "$work/submissions/submission"
cd "$base/source"
"${PYTHON:-python3}" -m minidl.lab grade "$work/submissions" --out "$work/grades" --jobs 1 --device emu "$@"
mkdir -p "$base/results"
cp "$work/grades/results/submission.json" "$base/results/results.json"
"""

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder's image (Ubuntu): Python, a C++ compiler
# for the kernels' CPU emulator, bubblewrap to sandbox the students' code, and minidl from the source.
set -euo pipefail
apt-get update
apt-get install -y python3 python3-pip python3-venv g++ bubblewrap
python3 -m pip install --break-system-packages -e "/autograder/source[notebook]" 2>/dev/null \\
  || python3 -m pip install -e "/autograder/source[notebook]"
"""


def write_gradescope_bundle(root: Path, archive: Path) -> Path:
    """The zip a teacher uploads as a Gradescope programming assignment's autograder: setup.sh and
    run_autograder at its top, beside the teacher's project (solutions and lab sheets kept)."""
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle"
        write_copy(root, bundle, None, then=lambda copy: shutil.copytree(root / "notebooks", copy / "notebooks"))
        for name, text in (("run_autograder", RUN_AUTOGRADER), ("setup.sh", SETUP_SH)):
            (bundle / name).write_text(text)
            (bundle / name).chmod(0o755)
        made = shutil.make_archive(str(Path(folder) / "autograder"), "zip", bundle)
        archive.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(made, archive)
    return archive


def classroom_workflow(minutes: int = 10) -> str:
    """.github/workflows/classroom.yml: a command-grader step per exercise, then the reporter."""
    steps = [
        "    - name: Checkout code\n      uses: actions/checkout@v4",
        "    - name: Set up Python\n      uses: actions/setup-python@v5\n      with:\n        python-version: '3.11'",
        "    - name: Install minidl\n      run: python -m pip install -e '.[dev]'",
    ]
    for e in EXERCISES:
        steps.append(
            f"    - name: exercise {e.number}\n      id: exercise-{e.number}\n"
            f"      uses: classroom-resources/autograding-command-grader@v1\n      with:\n"
            f"        test-name: {json.dumps(f'exercise {e.number}: {e.title}')}\n"  # a JSON string is YAML's too
            f"        command: python -m minidl.lab check {e.number}\n"
            f"        timeout: {minutes}\n        max-score: {e.points}"
        )
    results = "\n".join(f'        EXERCISE-{e.number}_RESULTS: "${{{{steps.exercise-{e.number}.outputs.result}}}}"'
                        for e in EXERCISES)  # fmt: skip
    runners = ",".join(f"exercise-{e.number}" for e in EXERCISES)
    steps.append(
        f"    - name: Autograding Reporter\n      uses: classroom-resources/autograding-grading-reporter@v1\n"
        f"      env:\n{results}\n      with:\n        runners: {runners}"
    )
    head = ("name: Autograding Tests\n'on':\n- push\n- repository_dispatch\npermissions:\n  checks: write\n"
            "  actions: read\n  contents: read\njobs:\n  run-autograding-tests:\n    runs-on: ubuntu-latest\n"
            "    if: github.actor != 'github-classroom[bot]'\n    steps:\n")  # fmt: skip
    return head + "\n".join(steps) + "\n"


def write_classroom_workflow(copy: Path) -> Path:
    """Write classroom_workflow() into a student copy (the template repository of a Classroom assignment)."""
    path = copy / ".github" / "workflows" / "classroom.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(classroom_workflow())
    return path
