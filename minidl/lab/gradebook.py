"""Grading a class: each handed-in copy's answers, spliced into the teacher's project, graded into a gradebook.

    python -m minidl.lab grade SUBMISSIONS/ [--out DIR] [--jobs N] [--device emu|cuda] [--timeout S]

A submission is an entry of SUBMISSIONS (a gradebook folder there is not one): a folder
holding a student copy or an archive of one, read as handin.py reads it (plain files only,
archives measured before they are unpacked). For each, in a temporary folder removed
afterwards: the teacher's project blanked as a handout (solutions.write_copy), the bodies of the
submission's solution regions spliced in (solutions.splice: nothing else of the submission is
read), then each exercise graded (grading.grade) in a fresh copy of that, so that what one
exercise's code writes cannot reach another's; an exercise left as the handout's stub is not
implemented without being run. The gradebook is OUT/grades.csv (a row per
submission, a column per exercise, the number passed and the reason a submission could not be
read in full) and OUT/reports/<submission>.txt (each verdict as `check` prints it), in a
folder checked before any grading starts (gradebook_folder). Whatever of a submission is shown
(its name, a reason, a message of its code) is shown printable (grading.printable).

The lab sheets are graded beside the exercises: each notebooks/<sheet>.ipynb of the submission
against the teacher's (sheet_grading.py: the student's solution cells run in the child, on a
copy of the teacher's complete project; the teacher's test cells judge in the grader), each
test cell's points a column of grades.csv, the written answers in the report for grading by
hand. OUT/results/<submission>.json is the same in Gradescope's results.json format (platforms.py).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from ..data import cache_dir
from ..serialization import atomic_write
from .exercises import EXERCISES, Exercise, stubs
from .grading import Verdict, grade, printable
from .handin import SubmissionError, handed_in_copy, is_folder, read_source
from .isolation import Sandbox, choose, describe
from .platforms import gradescope_results
from .sheet_grading import SheetResult, grade_sheet
from .sheet_grading import report as sheet_report
from .sheets import SheetError, graded_cells, read_sheet, sheet_paths
from .solutions import splice, write_copy

STATUS = {"not implemented": "not-implemented"}  # a gradebook cell is one word


@dataclass
class Row:
    """One submission's line of the gradebook."""

    name: str
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    sheets: list[SheetResult] = field(default_factory=list)
    reason: str = ""  # why (part of) it could not be graded

    @property
    def passed(self) -> int:
        return sum(v.passed for v in self.verdicts.values())

    @property
    def sheet_points(self) -> float:
        return sum(s.points for s in self.sheets)

    @property
    def label(self) -> str:
        """The name as shown (a file's name may hold any character but '/')."""
        return printable(self.name, newlines=False)

    @property
    def why(self) -> str:
        return printable(self.reason, newlines=False)


def is_gradebook(path: Path) -> bool:
    """Whether path is a gradebook folder (grades.csv and reports/ in it): never graded as a submission."""
    return is_folder(path) and (path / "grades.csv").is_file() and is_folder(path / "reports")


def gradebook_folder(folder: Path, out: Path) -> Path:
    """The gradebook's folder `out`, made and checked before any grading: a folder (made if missing)
    that can be written, outside the submissions' `folder`; SubmissionError says why not."""
    out, top = out.resolve(), folder.resolve()
    if out == top or top in out.parents:
        raise SubmissionError(f"--out {out} is inside the submissions' folder {top}: it would be graded as a "
                              "submission; give a folder outside it")  # fmt: skip
    if out.exists() and not out.is_dir():
        raise SubmissionError(f"--out {out} exists and is not a folder; give a folder for the gradebook")
    try:
        (out / "reports").mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise SubmissionError(f"--out {out}: the gradebook cannot be written there ({e.strerror})") from None
    return out


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(name, path) of each submission in folder (its entries but hidden ones and gradebooks, by name;
    the name is the entry's, so a folder and its archive are two rows)."""
    if not folder.is_dir():
        raise SubmissionError(f"{folder} is not a folder of submissions")
    entries = []
    for path in sorted(folder.iterdir()):
        if is_gradebook(path):
            print(f"{printable(path.name, newlines=False)}: a gradebook (grades.csv, reports/), not a submission; "
                  "not graded", file=sys.stderr)  # fmt: skip
        elif not path.name.startswith("."):
            entries.append((path.name, path))
    return entries


PARTS = ("all", "exercises", "sheets")  # what `grade --part` grades


def grade_submission(root: Path, name: str, path: Path, device: str, timeout: float, sandbox: Sandbox,
                     part: str = "all") -> Row:  # fmt: skip
    """Grade every exercise (part "all" or "exercises") and every lab sheet ("all" or "sheets") of one
    submission against the teacher's project at root, each in `sandbox` with a cache of the
    submission's own (a copy of MNIST's, its own kernel builds: nothing one submission's code writes
    there reaches another's)."""
    row = Row(name)
    with tempfile.TemporaryDirectory(prefix="minidl-grade-", ignore_cleanup_errors=True) as folder:
        work = Path(folder)
        sandbox = replace(sandbox, cache=work / "cache")
        sandbox.cache.mkdir()
        if (cache_dir() / "mnist.npz").is_file():
            shutil.copyfile(cache_dir() / "mnist.npz", sandbox.cache / "mnist.npz")
        try:
            copy = handed_in_copy(path, work)
        except SubmissionError as e:
            row.reason = str(e)
            return row
        if part != "sheets":
            grade_exercises(root, copy, work, row, device, timeout, sandbox)
        if part != "exercises":
            teacher = work / "teacher"
            write_copy(root, teacher, None)  # the sheets run on the complete project: the exercises are graded apart
            for path in sheet_paths(root / "notebooks"):
                row.sheets.append(grade_submitted_sheet(teacher, copy, path, timeout, sandbox))
    return row


def grade_exercises(root: Path, copy: Path, work: Path, row: Row, device: str, timeout: float, sandbox: Sandbox):
    """Each exercise of the copy at `copy`, its solution regions spliced into a handout of the teacher's
    project, into row.verdicts (and row.reason: why regions could not be read). An exercise whose
    regions all still hold the handout's stubs is not implemented, and is not run: its own code is
    the stub, whatever the rest of the copy does (`check` runs it, and says the same)."""
    handout = work / "handout"
    write_copy(root, handout, stubs())
    broken, written = splice(copy, handout)
    row.reason = "; ".join(dict.fromkeys(broken.values()))
    for e in EXERCISES:
        if e.number in broken:
            row.verdicts[e.number] = Verdict("broken", broken[e.number], 0, 0.0)
            continue
        if e.number not in written:  # the handout's stub, as it was: not run
            row.verdicts[e.number] = Verdict("not implemented", e.stub_message, 0, 0.0)
            continue
        fresh = work / f"exercise-{e.number}"
        shutil.copytree(handout, fresh, symlinks=True)
        try:
            row.verdicts[e.number] = grade(fresh, e.number, device_for(e, device), timeout, sandbox)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)


def submitted_sheet(copy: Path, name: str) -> tuple[dict | None, str]:
    """The submission's notebooks/<name> as a notebook, or None and why not."""
    try:
        notebook = json.loads(read_source(copy, Path("notebooks") / name))
    except FileNotFoundError:
        return None, f"notebooks/{name} is missing"
    except (SubmissionError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"notebooks/{name} is not read: {e}"
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        return None, f"notebooks/{name} is not a notebook"
    return notebook, ""


def grade_submitted_sheet(teacher: Path, copy: Path, path: Path, timeout: float, sandbox: Sandbox) -> SheetResult:
    """One lab sheet of a submission graded against the teacher's (on cpu, in the teacher's project at
    `teacher`); a sheet that cannot be read is graded as its blank version, with the reason."""
    submitted, why = submitted_sheet(copy, path.name)
    result = grade_sheet(teacher, read_sheet(path), submitted, path.stem, "cpu", timeout, sandbox)
    result.reason = "; ".join(filter(None, [why, result.reason]))
    return result


def sheet_columns(root: Path) -> list[tuple[str, float]]:
    """(column, points) of every autograded test cell of the teacher's sheets: `<sheet>/<grade_id>`."""
    columns = []
    for path in sheet_paths(root / "notebooks"):
        try:
            cells = graded_cells(read_sheet(path), path.stem)
        except SheetError as e:
            raise SubmissionError(f"the teacher's sheet {path}: {e}") from None
        columns += [(f"{path.stem}/{c.grade_id}", c.points) for c in cells if c.kind == "test"]
    return columns


def teachers_kernels(root: Path, work: Path, device: str | None, timeout: float, sandbox: Sandbox) -> list[tuple]:
    """The handout (stubs) and the solutions, written under `work`, and grade()'s arguments for each of
    their kernel exercises, with work/builds as the cache: the builds that every submission then reads
    (sandbox.shared) and none writes."""
    calls, builds = [], work / "builds"
    builds.mkdir()
    for name, blanks in (("handout", stubs()), ("solutions", None)):
        write_copy(root, work / name, blanks)
        calls += [(work / name, e.number, device_for(e, device), timeout, replace(sandbox, cache=builds))
                  for e in EXERCISES if "cpu" not in e.devices]  # fmt: skip
    return calls


def device_for(e: Exercise, device: str | None) -> str:
    """Where exercise e is graded when `device` is asked for: there if it can be, else its default."""
    return device if device in e.devices else e.devices[0]


def heading(e: Exercise, device: str) -> str:
    return f"exercise {e.number:2d}  {e.title} (on {device}) ... "


def outcome(verdict: Verdict) -> str:
    """A verdict as the student reads it, after its heading (check prints the same)."""
    text = f"{verdict.status.upper()} after {verdict.cases} cases ({verdict.seconds:.1f} s)"
    return text + ("\n    " + verdict.message.replace("\n", "\n    ") if verdict.message else "")


def report(row: Row, device: str | None) -> str:
    lines = [f"submission {row.label}: {row.passed} of {len(EXERCISES)} exercises pass"]
    if row.sheets:
        lines[0] += f"; lab sheets {row.sheet_points:g} of {sum(s.max_points for s in row.sheets):g} autograded points"
    if row.reason:
        lines.append(f"could not be graded in full: {row.why}")
    for e in EXERCISES:
        if e.number in row.verdicts:
            lines.append(heading(e, device_for(e, device)) + outcome(row.verdicts[e.number]))
    return "\n".join(lines + [sheet_report(s) for s in row.sheets]) + "\n"


def write_gradebook(rows: list[Row], out: Path, device: str | None, isolation: str,
                    columns: list[tuple[str, float]] = ()) -> None:  # fmt: skip
    """OUT/grades.csv, OUT/reports/<name>.txt and OUT/results/<name>.json (Gradescope's), each written
    whole or not at all; each row names the isolation its children ran in. `columns`: the sheets'
    test cells (sheet_columns), whose points earned follow the exercises' verdicts."""
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["submission", *(str(e.number) for e in EXERCISES), "passed", *(c for c, _ in columns),
                     "sheet points", "reason", "isolation"])  # fmt: skip
    (out / "results").mkdir(exist_ok=True)
    for row in rows:
        cells = [STATUS.get(row.verdicts[e.number].status, row.verdicts[e.number].status) if e.number in row.verdicts
                 else "" for e in EXERCISES]  # fmt: skip
        earned = {f"{s.sheet}/{t.grade_id}": t.points for s in row.sheets for t in s.tests}
        points = [f"{earned[c]:g}" if c in earned else "" for c, _ in columns]
        writer.writerow([row.label, *cells, row.passed, *points, f"{row.sheet_points:g}", row.why, isolation])
        text = report(row, device)
        atomic_write(out / "reports" / f"{row.label}.txt", lambda f, text=text: f.write(text.encode()))
        results = json.dumps(gradescope_results(row, device), indent=1, ensure_ascii=False)
        atomic_write(out / "results" / f"{row.label}.json", lambda f, results=results: f.write(results.encode()))
    atomic_write(out / "grades.csv", lambda f: f.write(table.getvalue().encode()))


def grade_class(root: Path, folder: Path, out: Path, jobs: int, device: str | None, timeout: float,
                isolation: str = "auto", part: str = "all") -> list[Row]:  # fmt: skip
    """Grade every submission in folder, `jobs` at a time, each child in the isolation asked for
    (isolation.choose: the gradebook and the submissions hidden from it), with a progress bar;
    write the gradebook."""
    entries = submissions(folder)
    out = gradebook_folder(folder, out)
    columns = sheet_columns(root) if part != "exercises" else []
    sandbox = choose(isolation, hidden=(out, folder.resolve()))
    print(f"isolation: {describe(sandbox)}", file=sys.stderr)
    rows: dict[str, Row] = {}
    with (
        ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool,
        tempfile.TemporaryDirectory(prefix="minidl-builds-", ignore_cleanup_errors=True) as builds,
    ):
        if part != "sheets":  # the kernels' builds only, which every submission then reads
            list(pool.map(grade, *zip(*teachers_kernels(root, Path(builds), device, timeout, sandbox))))
            sandbox = replace(sandbox, shared=Path(builds) / "builds")
        futures = {pool.submit(grade_submission, root, name, path, device, timeout, sandbox, part): name
                   for name, path in entries}  # fmt: skip
        with tqdm(total=len(futures), desc="grading", unit="submission") as bar:
            for future in as_completed(futures):
                name = futures[future]
                try:
                    rows[name] = future.result()
                except Exception as e:  # the grader itself failed on this one: a row, not the end of the run
                    rows[name] = Row(name, reason=f"the grader failed: {type(e).__name__}: {e}")
                bar.set_postfix_str(f"{rows[name].label}: {rows[name].passed} passed")
                bar.update()
    ordered = [rows[name] for name, _ in entries]
    write_gradebook(ordered, out, device, sandbox.kind, columns)
    return ordered
