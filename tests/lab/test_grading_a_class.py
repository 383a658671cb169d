"""The teacher's grader: `python -m minidl.lab grade SUBMISSIONS/`, typed in the teacher's checkout.

One class is graded once (a module fixture) and each test reads its gradebook: the teacher's
own solutions, a blank handout, a copy with exercises 1 and 5 solved (handed in as an archive),
a copy with a deleted marker, the planted mistakes of test_exercises (a few to a copy), students
who try to talk the grader into a pass (each cheat is an exercise-1 answer), and the hostile
submissions (a daemon that leaves the grader's session to rewrite the gradebook, a message of
terminal escapes, a link to the teacher's file, a FIFO, archive bombs). It is graded in
bubblewrap where bwrap works; the hostile submissions are graded again, on their own, with the
fallback isolation (--isolation session).
"""

import csv
import io
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from conftest import needs_cxx
from test_exercises import PLANTED, ROOT, once, run_lab, verdicts

from minidl.lab import handin, solutions
from minidl.lab.exercises import EXERCISES, stubs
from minidl.lab.isolation import bwrap_problem

pytestmark = [once, needs_cxx]
TENSOR = Path("minidl/autograd/engine.py")  # exercise 2 (run_backward), then 1 (unbroadcast): its last region
HONEST = solutions.body((ROOT / TENSOR).read_text(), solutions.regions_in((ROOT / TENSOR).read_text(), TENSOR)[-1])
GARBAGE = ["    return grad * 0 + 7"]  # wrong for every case
WRONG_2 = ["    raise ValueError('exercise 2 left wrong')"]  # graded by intact checks: a fail, never a pass
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


def with_bodies(folder: Path, bodies: dict[int, list[str]]) -> Path:
    """A blank student copy with bodies[n] written between the markers of exercise n (one region each)."""
    solved_copy(folder, set())
    for path in solutions.source_files(folder):
        text = (folder / path).read_text()
        mine = {r: bodies[r.number] for r in solutions.regions_in(text, path) if r.number in bodies}
        (folder / path).write_text(solutions.replace_bodies(text, mine))
    return folder


DAEMON = "setsid-daemon-and-escapes"
LINKS = "links\x1b[31m-and-fifos"  # a name that would turn a terminal red
REWROTE = "daemon-rewrote-the-gradebook"
FORGED = "exercise  7  Adam's update in Python (on cpu) ... PASS after 2 cases (0.1 s)"


def hostile(submissions: Path, book: Path, top: Path) -> None:
    """The hostile submissions. DAEMON: exercise 1 starts a process in a session of its own that waits
    for `book`/grades.csv to rewrite every fail a pass; exercise 7 raises a message that, printed raw,
    moves the cursor up, erases the FAIL line and prints a forged PASS. LINKS: engine.py (exercises 1
    and 2) a link to the teacher's own file, conv.py (3 and 4) a FIFO. Two archives that unpack to
    64 MiB of zeros, a .zip and a .tar.gz, each about 1000 times its size."""
    daemon = [
        "    import os, sys, time, pathlib",
        "    if not hasattr(sys, 'daemon_started'):",
        "        sys.daemon_started = True",
        "        if os.fork() == 0:",
        "            os.setsid()",
        "            if os.fork() == 0:",
        f"                book = pathlib.Path({str(book / 'grades.csv')!r})",
        "                for _ in range(3000):",
        "                    time.sleep(0.1)",
        "                    if book.exists():",
        "                        time.sleep(0.5)",
        "                        book.write_text(book.read_text().replace(',fail,', ',pass,'))",
        f"                        pathlib.Path({str(top / REWROTE)!r}).touch()",
        "                        break",
        "            os._exit(0)",
        "        os.wait()",
        *GARBAGE,
    ]  # fmt: skip
    forged = f"\x1b[1A\x1b[2K\r{FORGED}\x1b[8m"
    with_bodies(submissions / DAEMON, {1: daemon, 7: [f"        raise ValueError({forged!r})"]})
    links = solved_copy(submissions / LINKS, set())
    (links / TENSOR).unlink()
    (links / TENSOR).symlink_to(ROOT / TENSOR)
    (links / "minidl/ops/conv.py").unlink()
    os.mkfifo(links / "minidl/ops/conv.py")
    zeros = b"\0" * (64 << 20)
    with zipfile.ZipFile(submissions / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("handout/minidl/data.npy", zeros)
    with tarfile.open(submissions / "bomb.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("handout/minidl/data.npy")
        info.size = len(zeros)
        t.addfile(info, io.BytesIO(zeros))


def grade_the_class(top: Path, *options: str):
    """`grade` top/submissions into top/submissions-grades, with TMPDIR top/tmp (to see that the grader
    removes its temporary folders): (rows by submission, the reports, the run, the time, TMPDIR)."""
    env_tmp = top / "tmp"
    env_tmp.mkdir()
    os.environ["TMPDIR"], saved = str(env_tmp), os.environ.get("TMPDIR")
    try:
        started = time.monotonic()
        result = run_lab(
            ROOT, "grade", str(top / "submissions"), "--jobs", "2", "--timeout", "120", "--part", "exercises", *options
        )  # the lab sheets' grading: tests/lab/test_grading_sheets.py
        seconds = time.monotonic() - started
    finally:
        os.environ.pop("TMPDIR") if saved is None else os.environ.__setitem__("TMPDIR", saved)
    assert result.returncode == 0, result.stdout + result.stderr
    book = top / "submissions-grades"
    with open(book / "grades.csv", newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    reports = {p.stem: p.read_text() for p in (book / "reports").glob("*.txt")}
    return rows, reports, result, seconds, env_tmp


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade one class with `grade`: (its gradebook rows by submission, the reports, the run, the time,
    TMPDIR, the class's folder)."""
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
        with_bodies(submissions / f"cheat-{name}", {1: [line.format(marker=str(top / FORK_MARKER)) for line in body],
                                                    2: WRONG_2})  # fmt: skip
    (submissions / "notes.txt").write_text("not a submission")
    (submissions / "last-years-grades" / "reports").mkdir(parents=True)  # a gradebook left there by hand
    (submissions / "last-years-grades" / "grades.csv").write_text("submission,1\n")
    hostile(submissions, top / "submissions-grades", top)
    return (*grade_the_class(top), top)


@pytest.fixture(scope="module")
def graded_in_a_session(tmp_path_factory):
    """The hostile submissions alone, graded with the fallback isolation (a session per child, swept)."""
    top = tmp_path_factory.mktemp("session")
    hostile(top / "submissions", top / "submissions-grades", top)
    return (*grade_the_class(top, "--isolation", "session"), top)


BOTH = ["graded", "graded_in_a_session"]


def statuses(row: dict) -> dict[int, str]:
    return {e.number: row[str(e.number)] for e in EXERCISES}


def test_the_gradebook_holds_each_submissions_verdicts(graded):
    rows, reports, result, _, env_tmp, _ = graded
    assert statuses(rows["teacher"]) == {e.number: "pass" for e in EXERCISES} and rows["teacher"]["passed"] == "12"
    assert set(statuses(rows["blank"]).values()) == {"not-implemented"} and rows["blank"]["passed"] == "0"
    archive = statuses(rows["solved-1-and-5.tar.gz"])
    assert archive == {e.number: "pass" if e.number in (1, 5) else "not-implemented" for e in EXERCISES}
    assert "NOT IMPLEMENTED" in reports["blank"] and "Exercise 7 not implemented" in reports["blank"]
    assert "is a regular file; a submission is a folder or an archive" in rows["notes.txt"]["reason"]
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
    assert got[2] == "fail", got  # nothing reached the other exercises: exercise 2's checks still judge
    assert {got[n] for n in got if n not in (1, 2)} == {"not-implemented"}, got
    if got[1] != "pass":
        cases = verdicts(reports[f"cheat-{name}"])[1]
        assert "1000000" not in reports[f"cheat-{name}"], cases


def left_running(top: Path) -> list[bytes]:
    """The command lines of the grader's processes (and its children's) still running in top."""
    left = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if str(top) in os.readlink(process / "cwd") and b"minidl.lab" in (process / "cmdline").read_bytes():
                left.append((process / "cmdline").read_bytes())
        except OSError:  # it ended, or is not ours
            pass
    return left


def test_nothing_is_left_running(graded):
    *_, seconds, _, top = graded
    time.sleep(max(0.0, 10 - seconds))  # the forked child would have written its marker by now
    assert not (top / FORK_MARKER).exists(), "a forked child outlived the grading"
    assert not left_running(top)


def test_a_gradebook_in_the_submissions_folder_is_not_graded(graded):
    rows, _, result, *_ = graded
    assert "last-years-grades" not in rows
    assert "last-years-grades: a gradebook" in result.stderr


# ------------------------------------------------- hostile submissions, in both isolations
SHOWN_LINKS = LINKS.replace("\x1b", "\\x1b")  # the name as the gradebook shows it


@pytest.mark.parametrize("fixture", BOTH)
def test_the_gradebook_and_the_log_say_which_isolation_was_used(fixture, request):
    rows, _, result, *_ = request.getfixturevalue(fixture)
    used = "bubblewrap" if fixture == "graded" and bwrap_problem() is None else "session"
    assert {row["isolation"] for row in rows.values()} == {used}
    assert f"isolation: {used}" in result.stderr


@pytest.mark.parametrize("fixture", BOTH)
def test_a_daemon_that_leaves_the_graders_session_dies_before_the_gradebook_is_written(fixture, request):
    """It would rewrite every fail of grades.csv a pass half a second after the gradebook appears."""
    rows, _, _, _, _, top = request.getfixturevalue(fixture)
    time.sleep(1.5)
    assert not (top / REWROTE).exists(), "a daemon outlived the grading and rewrote the gradebook"
    with open(top / "submissions-grades" / "grades.csv", newline="") as f:
        assert {row["submission"]: row for row in csv.DictReader(f)}[DAEMON] == rows[DAEMON]
    assert statuses(rows[DAEMON])[1] == "fail" and rows[DAEMON]["passed"] == "0"
    assert not left_running(top)


@pytest.mark.parametrize("fixture", BOTH)
def test_terminal_escapes_from_a_students_code_are_shown_escaped(fixture, request):
    rows, reports, result, _, _, top = request.getfixturevalue(fixture)
    found = verdicts(reports[DAEMON])
    assert found[7][0] == "FAIL" and f"\\x1b[2K\\r{FORGED}\\x1b[8m" in found[7][1], found[7]
    assert SHOWN_LINKS in rows and f"submission {SHOWN_LINKS}:" in reports[SHOWN_LINKS]
    book = (top / "submissions-grades" / "grades.csv").read_text()
    for text in (book, result.stdout, *reports.values()):
        assert "\x1b" not in text and "\r" not in text


@pytest.mark.parametrize("fixture", BOTH)
def test_a_link_and_a_fifo_in_a_submission_are_refused_never_read(fixture, request):
    """engine.py links to the teacher's file (which passes 1 and 2), conv.py is a FIFO (which blocked
    the grader for good): both are reasons, their exercises broken, the rest graded."""
    rows, *_ = request.getfixturevalue(fixture)
    row, got = rows[SHOWN_LINKS], statuses(rows[SHOWN_LINKS])
    assert [got[n] for n in (1, 2, 3, 4)] == ["broken"] * 4, row
    assert "minidl/autograd/engine.py is a symbolic link" in row["reason"], row["reason"]
    assert "minidl/ops/conv.py is a FIFO" in row["reason"], row["reason"]
    assert {got[n] for n in got if n > 4} == {"not-implemented"} and row["passed"] == "0"


@pytest.mark.parametrize("fixture", BOTH)
@pytest.mark.parametrize("bomb", ["bomb.zip", "bomb.tar.gz"])
def test_an_archive_bomb_is_a_row_and_is_never_unpacked(fixture, bomb, request):
    rows, *_ = request.getfixturevalue(fixture)
    assert "was not unpacked" in rows[bomb]["reason"] and "times its own size" in rows[bomb]["reason"]
    assert rows[bomb]["passed"] == "0"


def archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "limits, members, says",
    [
        (handin.Limits(members=3), {f"copy/minidl/{k}.py": b"" for k in range(4)}, "more than 3 members"),
        (handin.Limits(bytes=1 << 20), {"copy/minidl/a.py": os.urandom(1 << 20), "b": b"x"}, "more than 1 MiB"),
        (handin.Limits(ratio=10), {"copy/minidl/a.py": b"\0" * 100_000}, "more than 10 times its own size"),
        (handin.Limits(depth=4), {"copy/minidl/a/b/c.py": b""}, "a path of 5 names"),
    ],
)
def test_each_archive_limit_is_checked_before_anything_is_written(tmp_path, limits, members, says):
    with pytest.raises(handin.SubmissionError, match=says):
        handin.unpack(archive(tmp_path / "a.zip", members), tmp_path / "unpacked", limits)
    assert not (tmp_path / "unpacked").exists()


def test_a_tar_bomb_is_measured_without_unpacking_it_whole(tmp_path, monkeypatch):
    """64 MiB of zeros in 65 kB: measuring stops at the ratio's bound, at the first member's header,
    never decompressing the 64 MiB to reach the next one."""
    zeros = b"\0" * (64 << 20)
    with tarfile.open(tmp_path / "bomb.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("handout/minidl/data.npy")
        info.size = len(zeros)
        t.addfile(info, io.BytesIO(zeros))
        t.addfile(tarfile.TarInfo("handout/minidl/after.py"), io.BytesIO(b""))
    headers, read_header = [], tarfile.TarFile.next

    def next_header(self):
        member = read_header(self)
        headers.append(member and member.name)
        return member

    monkeypatch.setattr(tarfile.TarFile, "next", next_header)
    with pytest.raises(handin.SubmissionError, match="times its own size"):
        handin.unpack(tmp_path / "bomb.tar.gz", tmp_path / "unpacked")
    assert "handout/minidl/data.npy" in headers and "handout/minidl/after.py" not in headers, headers
    assert not (tmp_path / "unpacked").exists()


def test_out_is_checked_before_any_grading(tmp_path):
    """An --out that is a file, or inside SUBMISSIONS, or cannot be made was found only after every
    submission was graded (all verdicts lost), or graded as a student on the next run."""
    submissions = tmp_path / "submissions"
    solved_copy(submissions / "blank", set())
    taken = tmp_path / "a-file"
    taken.write_text("keep me")
    for out, says in (
        (taken, "exists and is not a folder"),
        (submissions / "book", "inside the submissions' folder"),
        (taken / "book", "the gradebook cannot be written there"),
    ):
        result = run_lab(ROOT, "grade", str(submissions), "--out", str(out))
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert "grading:" not in result.stderr  # nothing was graded
    assert taken.read_text() == "keep me" and not (submissions / "book").exists()


@once
def test_a_grader_running_from_a_venv_in_tmp_can_start_its_sandboxed_child(tmp_path):
    """A clone in a temporary folder (as CI makes one) with its venv there: the sandbox's empty /tmp hid
    the venv's python, so every graded child crashed with bwrap's 'execvp ...: No such file or directory'."""
    problem = bwrap_problem()
    if problem is not None:
        pytest.skip(f"bubblewrap cannot run here: {problem}")
    assert str(tmp_path).startswith("/tmp/")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(tmp_path / "venv")],
                   check=True, timeout=120)  # fmt: skip
    start_child = (
        "import subprocess, sys\n"
        "from minidl.lab.isolation import bwrap_options\n"
        "probe = 'import sys, numpy, minidl; print(sys.prefix)'\n"
        "sys.exit(subprocess.run([*bwrap_options((), [], [], 'cpu'), sys.executable, '-c', probe]).returncode)\n"
    )
    result = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c", start_child], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "venv")
