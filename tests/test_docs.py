"""The README and docs/*.md (not the exercise sheets, which tests/lab checks) say what is true:
every python block runs as a reader would paste it, every command a bash, sh or console block
shows is run by a named test as a user types it, and every relative link leads somewhere. The
docs pick no device of their own, so all of it runs once, in the cpu leg."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import STANDIN, host_only

from minidl import backend

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
pytestmark = host_only

FENCE = re.compile(r"^```(?P<kind>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
SHELL = {"bash", "sh", "console"}
KINDS = SHELL | {"python", "text"}  # a block that shows output, a tree or a signature is `text`

# Every command the pages show -> what runs it as a user types it: "tests/<file>.py::<test>", or
# ".ci/run::<its line>" for the install, which CI's script does in a fresh venv of its own. A test
# may run the command with smaller sizes or in a folder of its own; the comment says how.
DOCTOR, INSTALL, EXAMPLES = (
    "tests/framework/test_doctor.py::",
    "tests/framework/test_install.py::",
    "tests/experiments/",
)
EXERCISES, HERE = "tests/lab/test_exercises.py::", "tests/test_docs.py::"
IN_A_STUDENT_COPY = EXERCISES + "test_a_student_copy_fails_every_exercise_with_its_not_implemented_message"
RUN_BY = {
    "python3 -m venv .venv": ".ci/run::python3 -m venv .venv-ci",
    ". .venv/bin/activate": ".ci/run::. .venv-ci/bin/activate",
    'pip install -e ".[dev]"': '.ci/run::python -m pip install --quiet -e ".[dev,bench]"',
    "python -m minidl.doctor": DOCTOR + "test_the_doctor_checks_every_kernel_family_and_says_all_is_well",
    "python -m minidl.doctor --device emu": DOCTOR + "test_a_compiler_with_flags_in_cxx_builds_the_kernels",
    "python examples/quickstart.py": HERE + "test_the_quickstart_runs_as_typed",
    "PYTHONPATH=. python examples/quickstart.py --device emu --steps 2":
        INSTALL + "test_a_fresh_clone_imports_and_runs_its_quickstart_with_nothing_installed",
    # with --epochs 1 --limit 256 --test-limit 500: the defaults train for many minutes
    "python examples/conv_dae_mnist.py":
        EXAMPLES + "test_examples.py::test_example_runs_and_writes_figures_and_metrics",
    # on a planted suite that fails on emu only
    "bash tests/all_devices.sh": INSTALL + "test_the_suite_command_runs_every_leg_and_adds_them_up",
    "python -m pytest tests/framework": HERE + "test_the_framework_folder_runs_alone",
    "python -m minidl.lab list": EXERCISES + "test_the_lab_lists_every_exercise",
    "python -m minidl.lab student handout/": IN_A_STUDENT_COPY,
    "python -m minidl.lab check 1": IN_A_STUDENT_COPY,  # each exercise by its number, in a student copy
    "python -m minidl.lab check 5": IN_A_STUDENT_COPY,
    "python -m minidl.lab check all": EXERCISES + "test_the_project_passes_every_exercise",
    # a class of honest, blank, broken, cheating and hostile submissions
    "python -m minidl.lab grade submissions/":
        "tests/lab/test_grading_a_class.py::test_the_gradebook_holds_each_submissions_verdicts",
    "python -m minidl.lab sheets handout-sheets/":
        "tests/lab/test_sheets.py::test_sheets_command_writes_the_student_versions",
    # a class of the teacher's sheets, a half-done one with an edited test cell, none at all
    "python -m minidl.lab grade submissions/ --part sheets":
        "tests/lab/test_grading_sheets.py::test_grading_a_class_of_sheets_writes_grades_reports_and_gradescope_results",
    "python -m minidl.lab gradescope autograder.zip":
        "tests/lab/test_grading_sheets.py::test_the_gradescope_bundle_grades_an_upload_into_results_json",
}  # fmt: skip
GPU_INSTALL = 'pip install -e ".[dev,cuda12]"'  # what the README, the kernels page and the doctor tell a GPU user
PENDING = {ROOT / "docs" / "adding-an-op.md"}  # written on the op table's branch; checked once it is here


def blocks() -> list[tuple[str, str, str]]:
    """(where, kind, body) of every fenced block of the pages; where is 'page:line'."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            where = f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
            found.append((where, m["kind"].strip(), m["body"]))
    return found


def commands(kind: str, body: str) -> list[str]:
    """The commands of a shell block: each line (continuations joined) without its comment; in a
    console block, the lines after a `$ ` prompt."""
    if kind == "console":
        return [line[2:].strip() for line in body.splitlines() if line.startswith("$ ")]
    lines = re.sub(r"\s*\\\n\s*", " ", body).splitlines()
    return [c for c in (re.sub(r"(^|\s+)#.*$", "", line).strip() for line in lines) if c]


def shown_commands() -> dict[str, str]:
    """command -> where it is first shown."""
    shown = {}
    for where, kind, body in blocks():
        for command in commands(kind, body) if kind in SHELL else []:
            shown.setdefault(command, where)
    return shown


def runner_exists(runner: str) -> bool:
    """Whether `runner` names a test function that exists, or a line that CI's script holds."""
    path, _, name = runner.partition("::")
    if path == ".ci/run":  # a student copy (minidl.lab student) leaves CI's script out
        return not (ROOT / path).exists() or name in (ROOT / path).read_text().splitlines()
    if not (ROOT / path).is_file():
        return False
    tree = ast.parse((ROOT / path).read_text())
    return any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body)


def clean_env(**variables: str) -> dict[str, str]:
    """The environment a reader types in: no device chosen, this checkout's minidl."""
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDL_DEVICE", "PYTHONPATH")}
    return {**env, "PYTHONPATH": str(ROOT), **variables}


def test_every_block_says_what_it_is():
    unknown = [f"{where}: ```{kind}" for where, kind, _ in blocks() if kind not in KINDS]
    assert not unknown, f"fenced blocks must be one of {sorted(KINDS)} (so the commands in them are checked): {unknown}"


def test_every_command_shown_is_run_by_a_test():
    shown = shown_commands()
    assert "python examples/quickstart.py" in shown, (
        "the reader of the commands found none: it cannot pass by not seeing"
    )
    untested = [f"{where}: {command}" for command, where in shown.items() if command not in RUN_BY]
    assert not untested, "commands the docs show that no test runs (add the test and its entry in RUN_BY):\n" + (
        "\n".join(untested)
    )
    missing = [f"{command} -> {runner}" for command, runner in RUN_BY.items() if not runner_exists(runner)]
    assert not missing, "RUN_BY names tests (or lines of .ci/run) that do not exist:\n" + "\n".join(missing)
    stale = sorted(set(RUN_BY) - set(shown))
    assert not stale, f"RUN_BY lists commands no page shows any more: {stale}"


def test_the_reader_of_commands_joins_lines_and_drops_comments():
    body = "# a comment\npython -m minidl.lab grade submissions/ \\\n    --jobs 2   # two at a time\n\nls\n"
    assert commands("bash", body) == ["python -m minidl.lab grade submissions/ --jobs 2", "ls"]
    assert commands("console", "$ python -m minidl.doctor\nminidl doctor: all 13 checks passed\n") == [
        "python -m minidl.doctor"
    ]


def python_blocks() -> list:
    return [pytest.param(body, id=where) for where, kind, body in blocks() if kind == "python"]


@pytest.mark.parametrize("code", python_blocks())
def test_every_python_block_runs_as_pasted(code, tmp_path):
    """Each block, saved as a file of its own and run in an empty folder. A block that asks for
    cuda runs on the CuPy stand-in where there is no GPU (its kernels on the emulator: g++)."""
    env = clean_env()
    if '"cuda"' in code and backend.cupy_problem() is not None:
        if shutil.which("g++") is None:
            pytest.skip("no C++ compiler (g++): the CuPy stand-in runs kernels on the emulator")
        env["PYTHONPATH"] = os.pathsep.join([str(STANDIN), str(ROOT)])
    (tmp_path / "snippet.py").write_text(code)
    result = subprocess.run([sys.executable, "snippet.py"], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def quickstart(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "examples/quickstart.py", *args], capture_output=True, text=True, cwd=ROOT,
                          env=clean_env(), timeout=300)  # fmt: skip


def test_the_quickstart_runs_as_typed():
    """The first command of the README; its --help promised two minutes, the README one: both say
    what it does now."""
    promise = "finishes in seconds"
    assert promise in (ROOT / "README.md").read_text() and promise in quickstart("--help").stdout
    result = quickstart()
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [float(m) for m in re.findall(r"^step +\d+ +loss ([\d.]+)$", result.stdout, re.M)]
    assert len(losses) == 7 and losses[-1] < losses[0] / 10, result.stdout  # steps 1, 50, ..., 300: it learns
    assert re.search(r"^reconstruction MSE on new images: [\d.]+$", result.stdout, re.M), result.stdout


def test_the_framework_folder_runs_alone():
    """`python -m pytest tests/framework`, the fast loop: the folder runs by itself from the top of
    the checkout (here its import-graph tests, which read sources only; the rest is the suite's)."""
    command = [sys.executable, "-m", "pytest", "tests/framework", "-q", "-k", "import_graph", "-p", "no:cacheprovider"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=clean_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and "error" not in result.stdout.lower(), result.stdout


def test_the_doctor_names_the_install_command_the_docs_show(tmp_path):
    """Without CuPy the doctor said `pip install minidl[cuda12]` (minidl is not on PyPI) while the
    README said `pip install -e ".[dev,cuda12]"`: one command, said the same way everywhere."""
    for page in ("README.md", "docs/kernels.md"):
        assert f"`{GPU_INSTALL}`" in (ROOT / page).read_text(), page
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise ImportError('planted: no CuPy here')\n")
    show = "from minidl import doctor; print(*doctor.facts('emu'), sep='\\n')"
    env = clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    result = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("no GPU: ")]
    assert GPU_INSTALL in line, line


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m[1]) for m in re.finditer(r"^#+ (.*)$", text, re.M)}


def test_every_relative_link_leads_to_a_file_and_its_heading():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if file in PENDING and not file.exists():
                continue
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
