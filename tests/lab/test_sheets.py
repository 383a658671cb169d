"""The lab sheets (notebooks/): nbgrader's metadata, the student version made without nbgrader, and
every sheet run top to bottom by nbclient in a fresh kernel, the teacher's with its solutions and
the student's with its stubs. Notebooks pick their device themselves and the rest touches no
device, so all of it runs once, in the cpu leg."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import host_only

from minidl.lab.sheets import (
    ANSWER_STUB,
    SheetError,
    graded_cells,
    read_sheet,
    sheet_paths,
    source,
    stub_message,
    student_version,
)

ROOT = Path(__file__).resolve().parents[2]
SHEETS = sheet_paths(ROOT / "notebooks")
pytestmark = host_only


def nbgrader(grade_id, **flags):
    meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": False,
            "task": False} | flags  # fmt: skip
    return {"nbgrader": meta}


def small_sheet() -> dict:
    """A teacher's sheet of each kind of cell, as nbgrader's Create Assignment toolbar writes them."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# A sheet"},
        {"cell_type": "code", "metadata": nbgrader("square", solution=True), "execution_count": 3,
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "ran\n"}],
         "source": 'def square(x):\n    """x²"""\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION\n'},
        {"cell_type": "code", "metadata": nbgrader("square-test", grade=True, locked=True, points=2),
         "execution_count": None, "outputs": [],
         "source": "assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert square(-2) == 4\n### END HIDDEN TESTS\n"},
        {"cell_type": "markdown", "metadata": nbgrader("why", solution=True, grade=True, points=1),
         "source": "Because squares are areas."},
        {"cell_type": "markdown", "metadata": nbgrader("plot", task=True, locked=True, points=1),
         "source": "Draw the parabola."},
    ]  # fmt: skip
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_the_student_version_blanks_solutions_hides_hidden_tests_and_clears_outputs():
    student = student_version(small_sheet(), "sheet0")
    solution, tests, answer, task = (source(c) for c in student["cells"][1:])
    assert solution == (
        f'def square(x):\n    """x²"""\n    raise NotImplementedError({stub_message("sheet0", "square")!r})'
    )
    assert "return x * x" not in solution and tests == "assert square(3) == 9"
    assert answer == ANSWER_STUB and task == "Draw the parabola."
    assert student["cells"][1]["outputs"] == [] and student["cells"][1]["execution_count"] is None
    assert [c["metadata"] for c in student["cells"]] == [c["metadata"] for c in small_sheet()["cells"]]
    namespace = {}
    exec(solution, namespace)
    with pytest.raises(NotImplementedError, match="sheet0, cell 'square' not written yet"):
        exec(tests, namespace)
    kinds = [(c.grade_id, c.kind, c.points) for c in graded_cells(small_sheet())]
    assert kinds == [("square", "solution", 0), ("square-test", "test", 2), ("why", "answer", 1), ("plot", "task", 1)]


@pytest.mark.parametrize(
    "change, message",
    [(lambda s: s["cells"][2]["metadata"]["nbgrader"].update(schema_version=2), "schema_version 2, expected 3"),
     (lambda s: s["cells"][2]["metadata"]["nbgrader"].update(grade_id="square"), "must be unique"),
     (lambda s: s["cells"][2]["metadata"]["nbgrader"].pop("points"), "needs points > 0"),
     (lambda s: s["cells"][1].update(source="def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n"),
      "BEGIN SOLUTION is never closed"),
     (lambda s: s["cells"][1].update(source="def square(x):\n    return x * x\n"), "needs a ### BEGIN SOLUTION")],
)  # fmt: skip
def test_a_malformed_sheet_is_refused_naming_the_cell(change, message):
    sheet = small_sheet()
    change(sheet)
    with pytest.raises(SheetError, match=message):
        student_version(sheet, "sheet0")


def run_lab(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m minidl.lab ARGS` as a teacher types it in `folder`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run([sys.executable, "-m", "minidl.lab", *args], capture_output=True, text=True, timeout=600,
                          cwd=folder, env=env)  # fmt: skip


def assert_student_sheets(folder: Path) -> None:
    written = sorted(folder.glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in SHEETS]
    for path in written:
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path.name
        assert f"{path.stem}, cell " in text and ANSWER_STUB in text, path.name
        assert json.loads(text)["nbformat"] == 4


def test_sheets_command_writes_the_student_versions(tmp_path):
    done = run_lab(ROOT, "sheets", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert f"wrote the student versions of {len(SHEETS)} lab sheets" in done.stdout
    assert_student_sheets(tmp_path / "out")


def test_the_student_copy_holds_the_student_sheets(tmp_path):
    """`student` left notebooks/ out while the copy's README described the notebooks."""
    done = run_lab(ROOT, "student", str(tmp_path / "handout"))
    assert done.returncode == 0, done.stderr
    assert_student_sheets(tmp_path / "handout" / "notebooks")
    assert "notebooks" in done.stdout


# ------------------------------------------------------------ the sheets of notebooks/
def code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in read_sheet(path)["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", SHEETS, ids=[p.stem for p in SHEETS])
def test_every_sheet_has_solutions_autograded_tests_and_written_answers(path):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' brings nbformat")
    nbformat.validate(nbformat.read(path, as_version=4))  # nbformat 4's own schema (cell ids included)
    kinds = [c.kind for c in graded_cells(read_sheet(path), path.stem)]
    assert kinds.count("solution") >= 1 and kinds.count("test") >= 1 and kinds.count("answer") >= 1, kinds
    assert all(c.points > 0 for c in graded_cells(read_sheet(path)) if c.kind in ("test", "answer"))


def test_committed_sheets_carry_no_outputs():
    assert len(SHEETS) == 5, "notebooks/ holds a sheet per assignment topic"
    for path in SHEETS:
        for cell in read_sheet(path)["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} keeps outputs"


def test_every_sheet_states_its_measured_full_size_time_within_ten_minutes():
    """Each sheet's first cell says how long it took at full size, where (2 CPU cores, the device) and
    when; every time is within the 10 minutes a sheet may take, and docs/notebooks.md's table says
    the same."""
    table = (ROOT / "docs" / "notebooks.md").read_text()
    for path in SHEETS:
        intro = "".join(read_sheet(path)["cells"][0]["source"])
        said = re.search(r"\*\*Full size\*\* \(`QUICK = False`\) took (\d+) min (\d+) s on 2 CPU cores "
                         r"\(AMD EPYC, no GPU, [^)]*; 20\d\d-\d\d-\d\d\)", intro)  # fmt: skip
        assert said, f"{path.name} does not state its full-size time, device and date"
        minutes, seconds = int(said[1]), int(said[2])
        assert minutes * 60 + seconds <= 600 and seconds < 60, f"{path.name}: {minutes} min {seconds} s"
        assert f"| `{path.stem}` | {minutes} min {seconds} s |" in table, f"docs/notebooks.md disagrees on {path.stem}"


def test_every_sheet_starts_with_the_same_setup_and_device_cells():
    """The cell that installs minidl on a fresh machine (Colab) runs before minidl can be imported, and
    the one that picks the device follows the parameters: each sheet carries a copy of both, and they
    must not drift apart."""
    cells = [code_cells(path) for path in SHEETS]
    assert len({c[0] for c in cells}) == 1 and cells[0][0].startswith("# Setup."), "the setup cells differ"
    assert len({c[2] for c in cells}) == 1 and "sheet_run" in cells[0][2], "the device cells differ"


@pytest.mark.parametrize(
    "smi, extra",
    [("| NVIDIA-SMI 550.54.15  Driver Version: 550.54.15  CUDA Version: 12.4 |", "notebook,cuda12"),
     ("| NVIDIA-SMI 580.82.07  Driver Version: 580.82.07  CUDA Version: 13.0 |", "notebook,cuda13"),
     ("| NVIDIA-SMI 470.57.02  Driver Version: 470.57.02  CUDA Version: 11.4 |", "notebook"),
     (None, "notebook")],
)  # fmt: skip
def test_the_setup_cell_installs_what_a_sheet_needs_and_the_cupy_of_the_gpus_cuda(smi, extra, tmp_path, monkeypatch):
    """On a machine without minidl (find_spec finds nothing), from notebooks/: the setup cell installs the
    repository with the notebook extra (not the developers' dev) and the CuPy that nvidia-smi's CUDA
    version calls for, and puts the repository on this kernel's path; the install is recorded, not run."""
    import importlib.util

    if smi is not None:
        (tmp_path / "nvidia-smi").write_text(f"#!/bin/sh\necho '{smi}'\n")
        (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}" if smi else str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    commands = []
    monkeypatch.setattr(subprocess, "check_call", commands.append)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(ROOT / "notebooks")
    exec(code_cells(SHEETS[0])[0], {})
    assert commands == [[sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extra}]"]]
    assert sys.path[0] == str(ROOT)


def test_the_notebook_extra_holds_what_the_sheets_import_in_jupyter():
    setup = (ROOT / "setup.py").read_text()
    assert '"notebook": ["ipykernel' in setup and "ipywidgets" in setup


def execute(notebook, tmp_path: Path, allow_errors: bool = False):
    """Run a notebook (nbformat's node) in a fresh kernel by nbclient, its parameters set to QUICK and OUT
    in tmp_path, this checkout's minidl first on the kernel's path (another may be installed); returns it
    with its outputs."""
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[dev]' brings nbclient")
    tagged = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "a sheet needs one cell tagged 'parameters'"
    tagged[0].source += f"\n# the test's small run\nQUICK = True\nOUT = {str(tmp_path / 'runs')!r}\n"
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    client.execute(env={**os.environ, "PYTHONPATH": path})
    return notebook


def errors(notebook) -> dict[int, tuple[str, str]]:
    return {k: (o["ename"], o["evalue"]) for k, c in enumerate(notebook.cells) if c.cell_type == "code"
            for o in c.outputs if o["output_type"] == "error"}  # fmt: skip


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade", False) and not meta.get("solution", False) and cell.cell_type == "code"


@pytest.mark.parametrize("path", SHEETS, ids=[p.stem for p in SHEETS])
def test_the_teachers_sheet_runs_top_to_bottom_and_passes_its_tests(path, tmp_path):
    """With its solutions, at QUICK size: any error in any cell fails, and QUICK says its numbers are a
    smoke test (that a rerun loads the reference runs: tests/test_notebooks.py)."""
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' brings nbformat")
    notebook = execute(nbformat.read(path, as_version=4), tmp_path)
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "a smoke test" in text and "nothing about the method" in text, "QUICK did not say it is a smoke test"
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} showed no figure"


@pytest.mark.parametrize("path", SHEETS, ids=[p.stem for p in SHEETS])
def test_the_student_version_runs_and_every_autograded_cell_fails_on_the_stubs(path, tmp_path):
    """The student's sheet (without its reference runs, the teacher's cells either version shares): every
    test cell fails with the stub's own message, and no cell fails otherwise."""
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' brings nbformat")
    student = nbformat.reads(json.dumps(student_version(read_sheet(path), path.stem)), as_version=4)
    student.cells = [c for c in student.cells if "long-run" not in c.get("metadata", {}).get("tags", [])]
    notebook = execute(student, tmp_path, allow_errors=True)
    failed = errors(notebook)
    tests = [k for k, c in enumerate(notebook.cells) if is_test(c)]
    assert tests and set(tests) <= set(failed), f"test cells that passed on stubs: {sorted(set(tests) - set(failed))}"
    for k, (name, value) in failed.items():
        assert name == "NotImplementedError" and f"{path.stem}, cell '" in value and "not written yet" in value, (
            f"cell {k} ({grade_id(notebook.cells[k])}) failed with {name}: {value}"
        )


def test_a_planted_wrong_solution_fails_its_test_cell(tmp_path):
    """The KL penalty written the wrong way round, KL(rho_hat ‖ rho): its test cell fails, the others pass."""
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' brings nbformat")
    notebook = nbformat.read(ROOT / "notebooks" / "2_regularized_autoencoders.ipynb", as_version=4)
    notebook.cells = [c for c in notebook.cells if "long-run" not in c.get("metadata", {}).get("tags", [])]
    (kl,) = [c for c in notebook.cells if grade_id(c) == "kl"]
    right = "return (rho * md.log(rho / rho_hat) + (1 - rho) * md.log((1 - rho) / (1 - rho_hat))).sum()"
    assert right in kl.source
    kl.source = kl.source.replace(right, "return (rho_hat * md.log(rho_hat / rho) "
                                         "+ (1 - rho_hat) * md.log((1 - rho_hat) / (1 - rho))).sum()")  # fmt: skip
    failed = errors(execute(notebook, tmp_path, allow_errors=True))
    assert [grade_id(notebook.cells[k]) for k in failed] == ["kl-test"]
    assert failed[min(failed)][0] == "AssertionError" and "expected KL(0.2‖0.2) + KL(0.2‖0.6)" in failed[min(failed)][1]
