"""The teaching exercises (minidl.lab): markers, the student copy, and the grader.

The grader must pass the project itself, fail a fresh student copy on every exercise with
that exercise's "not implemented" message and nothing else, and fail planted wrong
solutions with a message that names the case. It is started as a student types it:
`python -m minidl.lab ...` with the copy as the working directory, in this environment,
where the project itself is installed too (`pip install -e .`, as the README and CI do)."""

import importlib.metadata
import io
import os
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_cxx

from minidl.lab import solutions, wire
from minidl.lab.exercises import EXERCISES, exercise, stubs

ROOT = Path(__file__).resolve().parents[2]
once = pytest.mark.skipif(
    os.environ.get("MINIDL_DEVICE", "cpu") != "cpu",
    reason="the grader picks its own devices (cpu, and emu for kernels): it runs once, in the cpu leg",
)


def run_lab(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m minidl.lab ARGS` typed in `folder`, with nothing pinned (no PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run(
        [sys.executable, "-m", "minidl.lab", *args], capture_output=True, text=True, timeout=900, cwd=folder, env=env
    )


def installed_minidl() -> Path | None:
    """Where the minidl installed in this environment lives (an editable install: its source tree)."""
    try:
        importlib.metadata.distribution("minidl")
    except importlib.metadata.PackageNotFoundError:
        return None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-c", "import minidl; print(minidl.__file__)"]
    found = subprocess.run(command, capture_output=True, text=True, cwd="/", env=env)
    return Path(found.stdout.strip()).parents[1] if found.returncode == 0 else None


def verdicts(stdout: str) -> dict[int, tuple[str, str]]:
    """exercise -> (verdict, the indented lines under it) from the output of `check`."""
    found, current = {}, None
    for line in stdout.splitlines():
        if line.startswith("exercise "):
            current = int(line.split()[1])
            found[current] = (line.split(" ... ")[1].split(" after ")[0], "")
        elif line.startswith("    ") and current is not None:
            found[current] = (found[current][0], found[current][1] + line.strip() + "\n")
    return found


# ------------------------------------------------------------------ markers
def test_every_exercise_has_regions_and_a_sheet_that_names_its_files_and_command():
    regions = solutions.find_regions(ROOT)
    assert {r.number for r in regions} == {e.number for e in EXERCISES}
    assert len(EXERCISES) >= 10
    for e in EXERCISES:
        sheet = (ROOT / e.sheet).read_text()
        assert f"python -m minidl.lab check {e.number}" in sheet
        for path in {r.path for r in regions if r.number == e.number}:
            assert str(path) in sheet, f"{e.sheet} does not name {path}"


@pytest.mark.parametrize(
    "text, suffix, problem",
    [
        ("x\n### BEGIN SOLUTION exercise 1\ny\n", ".py", "never closed"),
        (
            "### BEGIN SOLUTION exercise 1\n### BEGIN SOLUTION exercise 2\n### END SOLUTION\n",
            ".py",
            "inside the region",
        ),
        ("### END SOLUTION\n", ".py", "without a BEGIN"),
        ("// BEGIN SOLUTION exercise 1\n// END SOLUTION\n", ".py", "marks solutions with '###'"),
        ("### BEGIN SOLUTION\n### END SOLUTION\n", ".py", "BEGIN SOLUTION exercise N"),
        ("// BEGIN SOLUTION exercise 0\n// END SOLUTION\n", ".cu", "BEGIN SOLUTION exercise N"),
        ("// BEGIN SOLUTION exercise 3\n// END SOLUTION now\n", ".cu", "END SOLUTION' alone"),
    ],
)
def test_a_malformed_marker_is_an_error_that_names_the_line(text, suffix, problem):
    with pytest.raises(solutions.MarkerError, match=problem) as error:
        solutions.regions_in(text, Path("f" + suffix))
    assert f"f{suffix}:" in str(error.value)


def test_blanking_replaces_each_region_by_a_stub_that_names_the_exercise():
    python = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION exercise 2\n    return x + y\n    ### END SOLUTION\n"
    blanked = solutions.blank(
        python, solutions.regions_in(python, Path("a.py")), {2: ("Exercise 2 not implemented: f", "s.md")}
    )
    assert blanked == (  # the markers stay, so that the grader finds the answer written between them
        "def f(x):\n    y = 1\n    ### BEGIN SOLUTION exercise 2\n"
        "    raise NotImplementedError('Exercise 2 not implemented: f')\n    ### END SOLUTION\n"
    )
    namespace = {}
    exec(compile(blanked, "a.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="Exercise 2 not implemented"):
        namespace["f"](1)
    cuda = "__global__ void k() {\n    // BEGIN SOLUTION exercise 5\n    int i = 0;\n    // END SOLUTION\n}\n"
    blanked = solutions.blank(
        cuda, solutions.regions_in(cuda, Path("k.cu")), {5: ("Exercise 5 not implemented", "s.md")}
    )
    assert blanked.splitlines()[1:5] == [
        "    // BEGIN SOLUTION exercise 5",
        "    // Exercise 5: write this part; the sheet is s.md",
        '    minidl_trap("Exercise 5 not implemented");',
        "    // END SOLUTION",
    ]


def test_the_lab_lists_every_exercise():
    result = run_lab(ROOT, "list")
    assert result.returncode == 0, result.stderr
    for e in EXERCISES:
        assert f"{e.number:3d}  {e.title}" in result.stdout and e.sheet in result.stdout


@once
def test_bad_requests_are_refused_with_what_was_expected(tmp_path):
    assert "exercise number 1-12" in run_lab(ROOT, "check", "13").stderr
    for timeout in ("nan", "inf", "0", "-5", "soon"):
        refused = run_lab(ROOT, "check", "1", "--timeout", timeout)
        assert refused.returncode == 2 and "expected a positive number of seconds" in refused.stderr, refused.stderr
    inside = run_lab(ROOT, "student", "minidl/handout")  # copied into itself until shutil failed
    assert inside.returncode == 2 and "is inside what the copy is made of" in inside.stderr, inside.stderr
    assert not (ROOT / "minidl" / "handout").exists()
    wrong_device = run_lab(ROOT, "check", "3", "--device", "emu")
    assert wrong_device.returncode == 2 and "exercise 3 is graded on cpu, not emu" in wrong_device.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "work.txt").write_text("a student's work")
    taken = run_lab(ROOT, "student", str(tmp_path / "taken"))
    assert taken.returncode == 2 and "not an empty folder" in taken.stderr
    nothing = run_lab(ROOT, "grade", str(tmp_path / "nothing"))
    assert nothing.returncode == 2 and "is not a folder of submissions" in nothing.stderr, nothing.stderr
    no_jobs = run_lab(ROOT, "grade", str(tmp_path), "--jobs", "0")
    assert no_jobs.returncode == 2 and "--jobs: expected a number ≥ 1, got 0" in no_jobs.stderr, no_jobs.stderr
    assert (tmp_path / "taken" / "work.txt").read_text() == "a student's work"


def test_a_child_that_does_not_answer_in_time_is_killed(tmp_path):
    """A child that had not said hello by the deadline raised out of Student() and was left running."""
    from minidl.lab.student import Student, StudentTimedOut

    copy = tmp_path / "project"
    solutions.write_copy(ROOT, copy, stubs=None)
    with pytest.raises(StudentTimedOut):
        Student(copy, "cpu", timeout=0.001)
    left = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(process / "cwd").startswith(str(copy)):
                left.append((process / "cmdline").read_bytes())
        except OSError:  # it ended, or is not ours
            pass
    assert not left, left


def test_the_grader_reads_data_from_the_students_process_and_nothing_that_runs():
    """wire.py carries plain values and arrays; a pickle, an object array or a malformed frame is refused."""
    value = {"loss": np.float32(0.5), "grads": (np.arange(6.0).reshape(2, 3), None), "steps": [79, 79], "ok": True}
    got = wire.unpack(wire.pack(value)[8:])
    assert got["steps"] == [79, 79] and got["ok"] is True and got["grads"][1] is None
    np.testing.assert_array_equal(got["grads"][0], value["grads"][0])
    assert got["loss"].dtype == np.float32 and got["loss"] == 0.5
    with pytest.raises(TypeError, match="plain values and NumPy arrays"):
        wire.pack({"model": object()})
    with pytest.raises(ValueError, match="Object arrays cannot be saved"):
        wire.pack(np.array([object()]))
    npy = io.BytesIO()  # an object array as np.save writes it with allow_pickle: a pickle inside
    np.lib.format.write_array_header_1_0(npy, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    npy.write(pickle.dumps(np.array([object()], dtype=object)))
    header = b'{"value": {"array": 0}, "arrays": [%d]}' % len(npy.getvalue())
    for body in (struct.pack("<Q", len(header)) + header + npy.getvalue(), b"not a message", b"\x03" + bytes(7)):
        with pytest.raises(wire.WireError):
            wire.unpack(body)


# ------------------------------------------------------------------ grading
@once
@needs_cxx
def test_the_project_passes_every_exercise():
    result = run_lab(ROOT, "check", "all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {n: v for n, (v, _) in verdicts(result.stdout).items()} == {e.number: "PASS" for e in EXERCISES}


@once
@needs_cxx
def test_a_student_copy_fails_every_exercise_with_its_not_implemented_message(tmp_path):
    copy = tmp_path / "student"
    made = run_lab(ROOT, "student", str(copy))
    assert made.returncode == 0, made.stderr
    regions = solutions.find_regions(copy)  # the handout's markers, each around its stub alone
    assert [(r.path, r.number) for r in regions] == [(r.path, r.number) for r in solutions.find_regions(ROOT)]
    for r in regions:
        body = solutions.body((copy / r.path).read_text(), r)
        assert body == solutions.stub(r, *stubs()[r.number]), f"{r.path}:{r.first + 1} still holds a solution"
    for path in solutions.source_files(ROOT):  # each file is the original with its regions blanked
        original = (ROOT / path).read_text()
        assert (copy / path).read_text() == solutions.blank(original, solutions.regions_in(original, path), stubs())
    assert all((copy / e.sheet).is_file() for e in EXERCISES)
    for number in [e.number for e in EXERCISES]:  # one exercise at a time, as a student checks them
        result = run_lab(copy, "check", str(number))
        assert result.returncode == 1 and f"grading the copy at {copy}" in result.stdout, result.stdout
        ((got, (verdict, message)),) = verdicts(result.stdout).items()
        assert got == number and verdict == "NOT IMPLEMENTED", (number, verdict, message)
        assert message.strip() == exercise(number).stub_message


@once
@needs_cxx
def test_the_grader_grades_the_copy_it_is_run_from_with_another_minidl_installed(tmp_path):
    """With the teacher's checkout installed editable, `minidl.kernels` used to resolve to the teacher's
    kernels/, so every blank kernel exercise of a student copy passed. Graded from inside the copy (its
    top folder, or a folder below it, where `python` imports the installed minidl), the copy's own
    kernels run."""
    installed = installed_minidl()
    if installed is None:
        pytest.skip("minidl is not installed in this environment (pip install -e .): the case needs another minidl")
    copy = tmp_path / "handout"
    assert run_lab(ROOT, "student", str(copy)).returncode == 0
    assert installed.resolve() != copy.resolve()
    kernel_exercises = [e.number for e in EXERCISES if "emu" in e.devices]
    assert len(kernel_exercises) >= 3
    for folder in (copy, copy / "docs" / "exercises"):
        for number in kernel_exercises:
            result = run_lab(folder, "check", str(number))
            assert f"grading the copy at {copy}" in result.stdout, result.stdout + result.stderr
            ((verdict, message),) = verdicts(result.stdout).values()
            assert verdict == "NOT IMPLEMENTED" and message.strip() == exercise(number).stub_message, result.stdout


def test_outside_every_copy_the_grader_grades_the_minidl_it_imported_or_says_where_to_run(tmp_path):
    result = run_lab(tmp_path, "check", "1", "--timeout", "1")
    if installed_minidl() is None:
        assert result.returncode != 0
    else:
        assert f"grading the copy at {installed_minidl()}" in result.stdout, result.stdout + result.stderr


PLANTED = {
    "an off-by-one in the max-pool kernel's window": (
        "kernels/pooling.cu",
        "for (int j = 0; j < KW; ++j) {",
        "for (int j = 0; j <= KW; ++j) {",
        5,
        "FAIL",
        "max_pool2d_forward's y is wrong",
        "case: max_pool2d float32: x (2, 3, 7, 7)",
    ),
    "a bounds test that lets the kernel read past the row": (
        "kernels/pooling.cu",
        "if (col < 0 || col >= W) continue;",
        "if (col < 0 || col > W) continue;",
        5,
        "CRASH",
        "AddressSanitizer stopped the kernel",
        "where: max_pool2d_forward<float>, block (",
    ),
    "a block reduction that sums shared slots no thread wrote": (  # zeros on the emulator once, garbage on a GPU
        "kernels/sigmoid_loss.cu",
        """    for (int i = threadIdx.x; i < count; i += blockDim.x) local += partial[i];
    const T total = block_sum(local);
    if (threadIdx.x == 0) out[0] = scale * total;""",
        """    __shared__ T slots[MINIDL_BLOCK];
    for (int i = threadIdx.x; i < count; i += blockDim.x) local += partial[i];
    if ((int)threadIdx.x < count) slots[threadIdx.x] = local;  // the other threads leave their slots alone
    __syncthreads();
    if (threadIdx.x == 0) {
        T total = T(0);
        for (int i = 0; i < MINIDL_BLOCK; ++i) total += slots[i];
        out[0] = scale * total;
    }""",
        6,
        "FAIL",
        "the loss is wrong in 1 of 1 values; the largest error: got nan",
        "case: bce float32: 1 values, reduction 'mean'",
    ),
    "a block reduction whose last thread sums the slots before the others wrote them": (  # a race on a GPU
        "kernels/sigmoid_loss.cu",
        """    for (int i = threadIdx.x; i < count; i += blockDim.x) local += partial[i];
    const T total = block_sum(local);
    if (threadIdx.x == 0) out[0] = scale * total;""",
        """    __shared__ T slots[MINIDL_BLOCK];
    for (int i = threadIdx.x; i < count; i += blockDim.x) local += partial[i];
    slots[threadIdx.x] = local;  // no __syncthreads() before the last thread reads every slot
    if (threadIdx.x == blockDim.x - 1) {
        T total = T(0);
        for (int i = 0; i < (int)blockDim.x; ++i) total += slots[i];
        out[0] = scale * total;
    }""",
        6,
        "FAIL",
        "sum_partials<float>: a race between the threads of block (0, 0, 0)",
        "case: bce float32: 1 values, reduction 'mean'",
    ),
    "a missing transpose in conv2d's weight gradient": (
        "minidl/ops/conv.py",
        "gw = times_transposed(gy.transpose(1, 2, 3, 0).reshape(o, -1), cols)",
        "gw = times_transposed(gy.reshape(o, -1), cols)",
        4,
        "FAIL",
        "the weight gradient conv2d_weight_grad(x, gy) is wrong",
        "case: x (2, 3, 7, 7), w (4, 3, 3, 3)",
    ),
    "a wrong bias correction in Adam": (
        "minidl/optim.py",
        'denom = (v**0.5) / bias2_sqrt + d["eps"]',
        'denom = (v**0.5) * bias2_sqrt + d["eps"]',
        7,
        "FAIL",
        "the parameter after step 1 is wrong",
        "case: Adam float64, parameter (7, 5), 5 steps",
    ),
}


@once
def test_a_solution_that_forks_a_sleeping_child_is_graded_at_once_and_leaves_nothing_running(tmp_path):
    """The child held the grader's output pipe open: the grader waited for the timeout, reported TIMEOUT
    though grading had finished, and left the child running. (The child sleeps past the timeout: a
    grader that waits for it says TIMEOUT; no wall-clock bound in the test.)"""
    copy = tmp_path / "project"
    solutions.write_copy(ROOT, copy, stubs=None)
    tensor = copy / "minidl" / "autograd" / "engine.py"
    pid_file = tmp_path / "child.pid"
    begin = "    ### BEGIN SOLUTION exercise 1\n"
    fork = (
        f"    import os, time\n    child = os.fork()\n"
        f"    if child == 0:\n        time.sleep(120)\n        os._exit(0)\n"
        f"    open({str(pid_file)!r}, 'w').write(str(child))\n"
    )  # fmt: skip  (the parent writes it)
    tensor.write_text(tensor.read_text().replace(begin, begin + fork, 1))
    result = run_lab(copy, "check", "1", "--timeout", "60")
    assert verdicts(result.stdout)[1][0] == "PASS", result.stdout + result.stderr  # not TIMEOUT: it did not wait
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 60  # a kill lands at once; this only waits for the kernel to show it
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), "the forked child was left running"


def _running(pid: int) -> bool:
    """Whether process pid exists and is not a zombie (killed, awaiting its reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@once
@needs_cxx
@pytest.mark.parametrize("mistake", sorted(PLANTED))
def test_a_planted_wrong_solution_fails_with_a_message_that_names_the_case(mistake, tmp_path):
    path, right, wrong, number, verdict, what, where = PLANTED[mistake]
    copy = tmp_path / "project"
    solutions.write_copy(ROOT, copy, stubs=None)  # the whole project, solutions kept
    source = (copy / path).read_text()
    assert right in source
    (copy / path).write_text(source.replace(right, wrong, 1))  # the first: max-pool's forward comes before avg's
    result = run_lab(copy, "check", str(number))
    assert result.returncode == 1
    got, message = verdicts(result.stdout)[number]
    assert got == verdict and what in message and where in message, result.stdout
