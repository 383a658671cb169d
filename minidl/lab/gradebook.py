"""Grading a class: each handed-in copy's answers, spliced into the teacher's project, graded into a gradebook.

    python -m minidl.lab grade SUBMISSIONS/ [--out DIR] [--jobs N] [--device emu|cuda] [--timeout S]

A submission is an entry of SUBMISSIONS: a folder holding a student copy (at its top or one
folder down) or an archive of one (ARCHIVES). For each, in a temporary folder removed
afterwards: the teacher's project blanked as a handout (solutions.write_copy), the bodies of the
submission's solution regions spliced in (solutions.splice: nothing else of the submission is
read), then each exercise graded (grading.grade) in a fresh copy of that, so that what one
exercise's code writes cannot reach another's. The gradebook is OUT/grades.csv (a row per
submission, a column per exercise, the number passed and the reason a submission could not be
read in full) and OUT/reports/<submission>.txt (each verdict as `check` prints it).
"""

from __future__ import annotations

import csv
import io
import shutil
import tarfile
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from ..serialization import atomic_write
from .exercises import EXERCISES, Exercise, stubs
from .grading import Verdict, grade
from .solutions import splice, write_copy

ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
STATUS = {"not implemented": "not-implemented"}  # a gradebook cell is one word


class SubmissionError(ValueError):
    """A submission holds no student copy that can be read."""


@dataclass
class Row:
    """One submission's line of the gradebook."""

    name: str
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    reason: str = ""  # why (part of) it could not be graded

    @property
    def passed(self) -> int:
        return sum(v.passed for v in self.verdicts.values())


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(name, path) of each submission in folder (its entries but hidden ones, by name; the name is the
    entry's, so a folder and its archive are two rows)."""
    if not folder.is_dir():
        raise SubmissionError(f"{folder} is not a folder of submissions")
    return [(path.name, path) for path in sorted(folder.iterdir()) if not path.name.startswith(".")]


def handed_in_copy(path: Path, work: Path) -> Path:
    """The student copy that `path` (a folder or an archive, unpacked under `work`) holds."""
    if path.is_file() and path.name.endswith(ARCHIVES):
        folder = work / "unpacked"
        try:
            if path.name.endswith(".zip"):
                shutil.unpack_archive(path, folder)  # zipfile drops absolute names and ".." itself
            else:
                shutil.unpack_archive(path, folder, filter=tarfile.data_filter)  # nothing outside folder, no devices
        except (shutil.ReadError, tarfile.TarError, OSError, ValueError) as e:
            raise SubmissionError(f"{path.name} could not be unpacked: {e}") from None
    elif path.is_dir():
        folder = path
    else:
        raise SubmissionError(f"{path.name} is neither a folder nor an archive ({', '.join(ARCHIVES)})")
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "minidl").is_dir():
            return candidate
    raise SubmissionError(f"{path.name} holds no student copy (a folder with minidl/ in it, at the top or one down)")


def grade_submission(root: Path, name: str, path: Path, device: str, timeout: float) -> Row:
    """Grade every exercise of one submission against the teacher's project at root."""
    row = Row(name)
    with tempfile.TemporaryDirectory(prefix="minidl-grade-", ignore_cleanup_errors=True) as folder:
        work = Path(folder)
        try:
            copy = handed_in_copy(path, work)
        except SubmissionError as e:
            row.reason = str(e)
            return row
        handout = work / "handout"
        write_copy(root, handout, stubs())
        broken = splice(copy, handout)
        row.reason = "; ".join(dict.fromkeys(broken.values()))
        for e in EXERCISES:
            if e.number in broken:
                row.verdicts[e.number] = Verdict("broken", broken[e.number], 0, 0.0)
                continue
            fresh = work / f"exercise-{e.number}"
            shutil.copytree(handout, fresh, symlinks=True)
            try:
                row.verdicts[e.number] = grade(fresh, e.number, device_for(e, device), timeout)
            finally:
                shutil.rmtree(fresh, ignore_errors=True)
    return row


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
    lines = [f"submission {row.name}: {row.passed} of {len(EXERCISES)} exercises pass"]
    if row.reason:
        lines.append(f"could not be graded in full: {row.reason}")
    for e in EXERCISES:
        if e.number in row.verdicts:
            lines.append(heading(e, device_for(e, device)) + outcome(row.verdicts[e.number]))
    return "\n".join(lines) + "\n"


def write_gradebook(rows: list[Row], out: Path, device: str | None) -> None:
    """OUT/grades.csv and OUT/reports/<name>.txt, each written whole or not at all."""
    (out / "reports").mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["submission", *(str(e.number) for e in EXERCISES), "passed", "reason"])
    for row in rows:
        cells = [STATUS.get(row.verdicts[e.number].status, row.verdicts[e.number].status) if e.number in row.verdicts
                 else "" for e in EXERCISES]  # fmt: skip
        writer.writerow([row.name, *cells, row.passed, row.reason])
        text = report(row, device)
        atomic_write(out / "reports" / f"{row.name}.txt", lambda f, text=text: f.write(text.encode()))
    atomic_write(out / "grades.csv", lambda f: f.write(table.getvalue().encode()))


def grade_class(root: Path, folder: Path, out: Path, jobs: int, device: str | None, timeout: float) -> list[Row]:
    """Grade every submission in folder, `jobs` at a time, with a progress bar; write the gradebook."""
    entries = submissions(folder)
    rows: dict[str, Row] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(grade_submission, root, name, path, device, timeout): name for name, path in entries}
        with tqdm(total=len(futures), desc="grading", unit="submission") as bar:
            for future in as_completed(futures):
                name = futures[future]
                try:
                    rows[name] = future.result()
                except Exception as e:  # the grader itself failed on this one: a row, not the end of the run
                    rows[name] = Row(name, reason=f"the grader failed: {type(e).__name__}: {e}")
                bar.set_postfix_str(f"{name}: {rows[name].passed} passed")
                bar.update()
    ordered = [rows[name] for name, _ in entries]
    write_gradebook(ordered, out, device)
    return ordered
