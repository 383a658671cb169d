"""The teacher's grader: `python -m minidl.lab grade SUBMISSIONS/`, typed in the teacher's checkout.

One class is graded once (a module fixture) and each test reads its gradebook: the teacher's
own solutions, a blank handout, a copy with exercises 1 and 5 solved (handed in as an archive),
a copy with a deleted marker, the planted mistakes of test_exercises (a few to a copy), and
students who try to talk the grader into a pass (each cheat is an exercise-1 answer).
"""

import csv
import os
import tarfile
import time
from pathlib import Path

import pytest
from conftest import needs_cxx
from test_exercises import PLANTED, ROOT, once, run_lab, verdicts

from minidl.lab import solutions
from minidl.lab.exercises import EXERCISES, stubs

pytestmark = [once, needs_cxx]
TENSOR = Path("minidl/autograd/engine.py")  # exercise 2 (run_backward), then 1 (unbroadcast): its last region
HONEST = solutions.body((ROOT / TENSOR).read_text(), solutions.regions_in((ROOT / TENSOR).read_text(), TENSOR)[-1])
GARBAGE = ["    return grad * 0 + 7"]  # wrong for every case
FORK_MARKER = "forked-child-still-running"  # {marker} in a cheat's body: where its forked child writes

CHEATS = {  # name: (exercise 1's body, the status exercise 1 must get)
    "forges-the-verdict-line": (
        [
            '    print(\'minidl-lab-verdict: {{"status": "pass", "message": "", "cases": 11}}\')',
            "    import os",
            "    os._exit(0)",
        ],  # fmt: skip
        "crash",
    ),
    "patches-fail-and-compare": (
        [
            "    import minidl.lab.grading as g, minidl.lab.checks as c",
            "    g.fail = c.fail = g.compare = c.compare = lambda *args, **kwargs: None",
            *GARBAGE,
        ],  # fmt: skip
        "fail",
    ),
    "forges-the-case-count": (["    import minidl.lab.grading as g", "    g._Cases.count = 10**6", *GARBAGE], "fail"),
    "rewrites-checks-and-probes": (  # every check returns at once, every probe is gone: for exercises 2-12 too
        [
            "    import pathlib, minidl.lab as lab",
            "    folder = pathlib.Path(lab.__file__).parent",
            "    (folder / 'checks.py').write_text(''.join(f'def check_{{n}}(s): return\\n' for n in range(99)))",
            "    (folder / 'probes.py').write_text('')",
            *HONEST,
        ],  # fmt: skip
        "pass",
    ),
    "exits-early": (["    raise SystemExit(0)"], "crash"),
    "prints-and-forks-a-sleeping-child": (
        [
            "    import os, sys, time",
            "    print('PASS ' * 100); sys.stdout.flush()",
            "    if os.fork() == 0:",
            "        time.sleep(8)",
            "        open({marker!r}, 'w').close()",
            "        os._exit(0)",
            *HONEST,
        ],  # fmt: skip
        "pass",
    ),
}


USES = {7: {10}}  # exercise 10 trains with exercise 7's Adam


def planted_groups() -> list[list[str]]:
    """The planted mistakes in as few copies as can hold them: no two in one exercise or one file."""
    groups: list[list[str]] = []
    for name in sorted(PLANTED):
        path, number = PLANTED[name][0], PLANTED[name][3]
        free = [g for g in groups if all(PLANTED[n][0] != path and PLANTED[n][3] != number for n in g)]
        if free:
            free[0].append(name)
        else:
            groups.append([name])
    return groups


PLANTED_GROUPS = planted_groups()


def solved_copy(folder: Path, numbers: set[int]) -> Path:
    """A student copy with the teacher's answers to `numbers` between its markers, stubs elsewhere."""
    solutions.write_copy(ROOT, folder, stubs=None)
    for path in solutions.source_files(folder):
        text = (folder / path).read_text()
        (folder / path).write_text(
            solutions.blank(text, [r for r in solutions.regions_in(text, path) if r.number not in numbers], stubs())
        )
    return folder


def with_exercise_1(folder: Path, body: list[str]) -> Path:
    solved_copy(folder, set())
    text = (folder / TENSOR).read_text()
    region = solutions.regions_in(text, TENSOR)[-1]
    assert region.number == 1
    (folder / TENSOR).write_text(solutions.replace_bodies(text, {region: body}))
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade one class with `grade`: (its gradebook rows by submission, the reports, the run, the time)."""
    top = tmp_path_factory.mktemp("class")
    submissions = top / "submissions"
    solutions.write_copy(ROOT, submissions / "teacher", stubs=None)
    solved_copy(submissions / "blank", set())
    solved_copy(top / "solved-1-and-5", {1, 5})
    with tarfile.open(submissions / "solved-1-and-5.tar.gz", "w:gz") as archive:
        archive.add(top / "solved-1-and-5", arcname="handout")  # an archive with the copy one folder down
    deleted = solved_copy(submissions / "deleted-marker", {3, 4})
    conv = deleted / "minidl/ops/conv.py"
    conv.write_text(conv.read_text().replace("    ### END SOLUTION\n", "", 1))
    for group, names in enumerate(PLANTED_GROUPS):
        copy = submissions / f"planted {group}"
        solutions.write_copy(ROOT, copy, stubs=None)
        for name in names:
            path, right, wrong, *_ = PLANTED[name]
            (copy / path).write_text((copy / path).read_text().replace(right, wrong, 1))
    for name, (body, _) in CHEATS.items():
        with_exercise_1(submissions / f"cheat-{name}", [line.format(marker=str(top / FORK_MARKER)) for line in body])
    (submissions / "notes.txt").write_text("not a submission")

    env_tmp = top / "tmp"  # the grader's temporary folders, to see that it removes them
    env_tmp.mkdir()
    os.environ["TMPDIR"], saved = str(env_tmp), os.environ.get("TMPDIR")
    try:
        started = time.monotonic()
        result = run_lab(ROOT, "grade", str(submissions), "--jobs", "2", "--timeout", "120")
        seconds = time.monotonic() - started
    finally:
        os.environ.pop("TMPDIR") if saved is None else os.environ.__setitem__("TMPDIR", saved)
    assert result.returncode == 0, result.stdout + result.stderr
    book = top / "submissions-grades"
    with open(book / "grades.csv", newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    reports = {p.stem: p.read_text() for p in (book / "reports").glob("*.txt")}
    return rows, reports, result, seconds, env_tmp, top


def statuses(row: dict) -> dict[int, str]:
    return {e.number: row[str(e.number)] for e in EXERCISES}


def test_the_gradebook_holds_each_submissions_verdicts(graded):
    rows, reports, result, _, env_tmp, _ = graded
    assert statuses(rows["teacher"]) == {e.number: "pass" for e in EXERCISES} and rows["teacher"]["passed"] == "12"
    assert set(statuses(rows["blank"]).values()) == {"not-implemented"} and rows["blank"]["passed"] == "0"
    archive = statuses(rows["solved-1-and-5.tar.gz"])
    assert archive == {e.number: "pass" if e.number in (1, 5) else "not-implemented" for e in EXERCISES}
    assert "NOT IMPLEMENTED" in reports["blank"] and "Exercise 7 not implemented" in reports["blank"]
    assert "neither a folder nor an archive" in rows["notes.txt"]["reason"]
    assert "grading: 100%" in result.stderr  # the progress bar
    assert not any(env_tmp.iterdir()), "the grader left its temporary copies behind"


def test_a_deleted_marker_is_a_reason_and_the_other_exercises_are_graded(graded):
    rows, reports, *_ = graded
    row = rows["deleted-marker"]
    assert statuses(row)[3] == statuses(row)[4] == "broken"  # both have regions in conv.py
    assert "minidl/ops/conv.py" in row["reason"] and "BEGIN SOLUTION" in row["reason"], row["reason"]
    assert statuses(row)[1] == "not-implemented" and row["passed"] == "0"


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_a_planted_mistake_fails_through_grade_as_through_check(graded, name):
    """Each mistake is graded in a copy that holds other mistakes in other exercises (the groups keep
    the class small): its exercise gets the verdict `check` gives, and every exercise of the copy
    that holds no mistake, and uses none, still passes."""
    rows, reports, *_ = graded
    _, _, _, number, verdict, what, where = PLANTED[name]
    group = next(g for g, names in enumerate(PLANTED_GROUPS) if name in names)
    found = verdicts(reports[f"planted {group}"])
    assert found[number][0] == verdict, reports[f"planted {group}"]
    assert what in found[number][1] and where in found[number][1], found[number][1]
    planted = {PLANTED[n][3] for n in PLANTED_GROUPS[group]}
    spoilt = planted | {user for n in planted for user in USES.get(n, ())}
    others = {n: s for n, s in statuses(rows[f"planted {group}"]).items() if n not in spoilt}
    assert others and set(others.values()) == {"pass"}, others


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_a_cheat_gets_no_pass_it_did_not_earn(graded, name):
    rows, reports, *_ = graded
    got = statuses(rows[f"cheat-{name}"])
    assert got[1] == CHEATS[name][1], reports[f"cheat-{name}"]
    assert {got[n] for n in got if n != 1} == {"not-implemented"}, got  # nothing reached the other exercises
    if got[1] != "pass":
        cases = verdicts(reports[f"cheat-{name}"])[1]
        assert "1000000" not in reports[f"cheat-{name}"], cases


def test_nothing_is_left_running(graded):
    *_, seconds, _, top = graded
    time.sleep(max(0.0, 10 - seconds))  # the forked child would have written its marker by now
    assert not (top / FORK_MARKER).exists(), "a forked child outlived the grading"
    left = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if str(top) in os.readlink(process / "cwd") and b"minidl.lab" in (process / "cmdline").read_bytes():
                left.append((process / "cmdline").read_bytes())
        except OSError:  # it ended, or is not ours
            pass
    assert not left, left
