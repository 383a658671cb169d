"""Grading a class's lab sheets as a teacher types it: `python -m minidl.lab grade --part sheets`, and the
files the platforms read (Gradescope's results.json and autograder bundle, GitHub Classroom's
workflow), checked against their published formats. The sheets run on cpu whatever the leg, so all
of it runs once, in the cpu leg."""

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import host_only

from minidl.lab.exercises import EXERCISES
from minidl.lab.platforms import classroom_workflow
from minidl.lab.sheets import graded_cells, read_sheet, sheet_paths, source, write_sheet

ROOT = Path(__file__).resolve().parents[2]
SHEETS = sheet_paths(ROOT / "notebooks")
pytestmark = host_only

# Gradescope's results.json, as its specification describes it
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format): a score (required
# where the tests carry none), tests each with a name, a score and a max_score, an output, a status of
# "passed" or "failed", and visibilities of four values.
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
GRADESCOPE_RESULTS = {
    "type": "object",
    "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "output", "status"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "number": {"type": "string"},
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "output": {"type": "string"},
                    "status": {"enum": ["passed", "failed"]},
                    "visibility": VISIBILITY,
                },
            },
        },
    },
}


def run_lab(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run([sys.executable, "-m", "minidl.lab", *args], capture_output=True, text=True, timeout=900,
                          cwd=folder, env=env)  # fmt: skip


def student_copy(folder: Path) -> Path:
    """A student copy as `student` writes it (exercises blanked, the student sheets)."""
    done = run_lab(ROOT, "student", str(folder))
    assert done.returncode == 0, done.stderr
    return folder


def cell(notebook: dict, grade_id: str) -> dict:
    (found,) = [c for c in notebook["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    return found


def validate_results(results: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="nbformat brings jsonschema (pip install -e '.[dev]')")
    jsonschema.validate(results, GRADESCOPE_RESULTS)
    assert results["score"] == sum(t["score"] for t in results["tests"])
    assert all(t["score"] <= t["max_score"] for t in results["tests"])


def test_grading_a_class_of_sheets_writes_grades_reports_and_gradescope_results(tmp_path):
    """alice hands in the teacher's sheets, solutions and answers; bob fills one cell right, writes the KL
    penalty the wrong way round and edits its test cell to pass whatever runs, and answers a question;
    carol's copy has no notebooks. The grader takes the test cells from the teacher's sheets, so bob's
    edit changes nothing."""
    subs = tmp_path / "submissions"
    alice = student_copy(subs / "alice")
    for path in SHEETS:
        shutil.copyfile(path, alice / "notebooks" / path.name)
    bob = student_copy(subs / "bob")
    teacher1, teacher2 = read_sheet(SHEETS[0]), read_sheet(SHEETS[1])
    sheet1, sheet2 = read_sheet(bob / "notebooks" / SHEETS[0].name), read_sheet(bob / "notebooks" / SHEETS[1].name)
    cell(sheet1, "gaussian-noise")["source"] = cell(teacher1, "gaussian-noise")["source"]
    cell(sheet1, "score")["source"] = "It points to the mean of the clean points."
    right = "return (rho * md.log(rho / rho_hat) + (1 - rho) * md.log((1 - rho) / (1 - rho_hat))).sum()"
    wrong = "return (rho_hat * md.log(rho_hat / rho) + (1 - rho_hat) * md.log((1 - rho_hat) / (1 - rho))).sum()"
    assert right in source(cell(teacher2, "kl"))
    cell(sheet2, "kl")["source"] = source(cell(teacher2, "kl")).replace(right, wrong)
    cell(sheet2, "kl-test")["source"] = "pass  # all good"
    write_sheet(bob / "notebooks" / SHEETS[0].name, sheet1)
    write_sheet(bob / "notebooks" / SHEETS[1].name, sheet2)
    carol = student_copy(subs / "carol")
    shutil.rmtree(carol / "notebooks")

    done = run_lab(ROOT, "grade", str(subs), "--part", "sheets", "--jobs", "2", "--out", str(tmp_path / "grades"))
    assert done.returncode == 0, done.stderr
    rows = {r["submission"]: r for r in csv.DictReader((tmp_path / "grades" / "grades.csv").open())}
    tests = [(f"{p.stem}/{c.grade_id}", c.points) for p in SHEETS for c in graded_cells(read_sheet(p))
             if c.kind == "test"]  # fmt: skip
    total = sum(points for _, points in tests)
    assert float(rows["alice"]["sheet points"]) == total and all(float(rows["alice"][c]) == p for c, p in tests)
    bob_row = rows["bob"]
    assert float(bob_row["1_denoising_autoencoders/gaussian-noise-test"]) == 2
    assert float(bob_row["2_regularized_autoencoders/kl-test"]) == 0, "bob's edited test cell was used"
    assert float(bob_row["sheet points"]) == 2
    assert float(rows["carol"]["sheet points"]) == 0
    assert set(rows) == {"alice", "bob", "carol"} and "alice" in done.stdout

    bob_report = (tmp_path / "grades" / "reports" / "bob.txt").read_text()
    assert "kl-test" in bob_report and "expected KL(0.2‖0.2) + KL(0.2‖0.6)" in bob_report
    assert "not written yet" in bob_report and "It points to the mean of the clean points." in bob_report
    assert "graded by hand" in bob_report
    carol_report = (tmp_path / "grades" / "reports" / "carol.txt").read_text()
    assert "notebooks/1_denoising_autoencoders.ipynb is missing" in carol_report

    for name in ("alice", "bob", "carol"):
        results = json.loads((tmp_path / "grades" / "results" / f"{name}.json").read_text())
        validate_results(results)
    alice_results = json.loads((tmp_path / "grades" / "results" / "alice.json").read_text())
    sheet_tests = [t for t in alice_results["tests"] if ":" in t["name"] and not t["name"].startswith("exercise")]
    assert len(sheet_tests) == len(tests) and all(t["status"] == "passed" for t in sheet_tests)
    assert alice_results["score"] == total  # the exercises were not graded (--part sheets): 0 points each


def test_a_broken_results_json_is_refused_by_the_schema():
    """The schema of the test above can fail: a test without max_score, a status Gradescope does not know."""
    jsonschema = pytest.importorskip("jsonschema", reason="nbformat brings jsonschema (pip install -e '.[dev]')")
    good = {"score": 1.0, "tests": [{"name": "t", "score": 1.0, "max_score": 1.0, "output": "", "status": "passed"}]}
    jsonschema.validate(good, GRADESCOPE_RESULTS)
    test = good["tests"][0]
    for broken in ({"tests": [test]}, {"score": 1.0, "tests": [{**test, "status": "ok"}]},
                   {"score": 1.0, "tests": [{k: v for k, v in test.items() if k != "max_score"}]}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, GRADESCOPE_RESULTS)


def test_the_classroom_workflow_runs_check_per_exercise_with_its_points(tmp_path):
    """GitHub Classroom's published format: a command-grader step per test (test-name, command, timeout,
    max-score), then the reporter with each step's result as <ID>_RESULTS and the ids as runners."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the workflow")
    copy = student_copy(tmp_path / "handout")
    text = (copy / ".github" / "workflows" / "classroom.yml").read_text()
    assert text == classroom_workflow()
    workflow = yaml.safe_load(text)
    assert workflow["on"] == ["push", "repository_dispatch"] and workflow["permissions"]["checks"] == "write"
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    graders = [s for s in steps if s.get("uses") == "classroom-resources/autograding-command-grader@v1"]
    assert [(s["with"]["command"], s["with"]["max-score"]) for s in graders] == [
        (f"python -m minidl.lab check {e.number}", e.points) for e in EXERCISES]  # fmt: skip
    assert all({"test-name", "command", "timeout", "max-score"} <= set(s["with"]) for s in graders)
    (reporter,) = [s for s in steps if s.get("uses") == "classroom-resources/autograding-grading-reporter@v1"]
    ids = [s["id"] for s in graders]
    assert reporter["with"]["runners"] == ",".join(ids)
    assert reporter["env"] == {f"{i.upper()}_RESULTS": f"${{{{steps.{i}.outputs.result}}}}" for i in ids}


def test_the_gradescope_bundle_grades_an_upload_into_results_json(tmp_path):
    """The zip a teacher uploads: setup.sh and run_autograder at its top and the teacher's project; its
    run_autograder, run as Gradescope does (here in a folder standing for /autograder), writes
    results/results.json for the upload."""
    done = run_lab(ROOT, "gradescope", str(tmp_path / "autograder.zip"))
    assert done.returncode == 0, done.stderr
    base = tmp_path / "autograder"
    with zipfile.ZipFile(tmp_path / "autograder.zip") as bundle:
        names = set(bundle.namelist())
        assert {"run_autograder", "setup.sh", "minidl/lab/gradebook.py", "notebooks/4_codes.ipynb"} <= names
        bundle.extractall(base / "source")
    (base / "source" / "run_autograder").chmod(0o755)
    upload = student_copy(tmp_path / "upload")
    sheet = read_sheet(SHEETS[3])
    write_sheet(upload / "notebooks" / SHEETS[3].name, sheet)  # the teacher's solutions: every test of sheet 4
    shutil.copytree(upload, base / "submission")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env |= {"AUTOGRADER": str(base), "PYTHON": sys.executable}
    ran = subprocess.run([str(base / "source" / "run_autograder"), "--part", "sheets"], capture_output=True,
                         text=True, timeout=900, env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    results = json.loads((base / "results" / "results.json").read_text())
    validate_results(results)
    passed = {t["name"] for t in results["tests"] if t["status"] == "passed"}
    assert passed == {f"4_codes: {c.grade_id}" for c in graded_cells(sheet) if c.kind == "test"}


def square_sheet() -> dict:
    """A teacher's sheet: write square(x); a test of 2 points with a hidden part."""

    def cell(kind, grade_id, text, **flags):
        meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": False,
                "task": False} | flags  # fmt: skip
        return {"cell_type": kind, "metadata": {"nbgrader": meta}, "source": text, "outputs": [],
                "execution_count": None}  # fmt: skip

    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        cell("code", "square", "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
             solution=True),
        cell("code", "square-test", "assert square(3) == 9, 'square(3) must be 9'\n### BEGIN HIDDEN TESTS\n"
             "assert square(-2) == 4, 'square(-2) must be 4'\n### END HIDDEN TESTS", grade=True, locked=True, points=2),
    ]}  # fmt: skip


@pytest.mark.parametrize(
    "body, test_cell, status, says",
    [("    return x * x", None, "pass", ""),
     ("    return abs(x) * 3", "pass", "fail", "square(-2) must be 4"),  # its own test cell: ignored; hidden tests run
     ("    import builtins\n    builtins.AssertionError = ValueError\n    return x + 7", None, "fail", "square(3)"),
     ("    print('square-test PASS 2/2')\n    return 0", None, "fail", "square(3) must be 9"),
     ("    import os\n    os._exit(3)", None, "crash", "exit status 3"),
     ("    while True:\n        pass", None, "timeout", "no result after 8 s"),
     ("    raise NotImplementedError('sheet0, cell x not written yet')", None, "not implemented", "not written yet")],
    ids=["right", "own-test-cell", "replaces-assert", "prints-pass", "exits", "hangs", "stub"],
)  # fmt: skip
def test_a_sheet_is_judged_in_the_grader_whatever_the_students_cell_does(body, test_cell, status, says):
    """The test cells are the teacher's and run in the grader; the student's code runs in the child, where
    replacing AssertionError or printing a verdict reaches nothing; a crash or a hang is the verdict."""
    from minidl.lab.sheet_grading import grade_sheet

    teacher = square_sheet()
    submitted = json.loads(json.dumps(teacher))
    submitted["cells"][0]["source"] = f"def square(x):\n{body}\n"
    if test_cell is not None:
        submitted["cells"][1]["source"] = test_cell
    (verdict,) = grade_sheet(ROOT, teacher, submitted, "sheet0", "cpu", 8.0).tests
    assert (verdict.status, verdict.points, verdict.max_points) == (status, 2.0 if status == "pass" else 0.0, 2.0)
    assert says in verdict.message, verdict.message
