"""Where a graded child runs: in a bubblewrap sandbox, or else in a session of its own that is swept.

BUBBLEWRAP: the child runs under bwrap (bubblewrap, the unprivileged sandbox Flatpak uses) in
namespaces of its own (--unshare-all: its own PID namespace, no network), --die-with-parent
and --new-session. The file system is read-only but for the copy under grading and its
cache folder; /tmp is an empty tmpfs (but for the interpreter's own folders there, read-only),
and the `hidden` folders (the gradebook, the submissions) are empty tmpfs too. When the
child's bwrap dies, the kernel kills every process of its PID namespace, setsid or not.

In both, compiled kernels are cached in a folder of the submission's own; builds of the
teacher's code (the handout's stubs, the solutions) made before grading are read from a
shared folder that no student's process can write (in bubblewrap; a session runs as you).

SESSION (where bwrap is missing or cannot make namespaces, or when asked for): the child runs
in a new session, as the teacher, with the teacher's files and network. The process that
starts it is a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so whatever the child starts,
double-forked and setsid or not, stays its descendant, and sweep() kills every descendant,
found through /proc, when the child is done: before a verdict is returned, so before any
gradebook write.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BUBBLEWRAP, SESSION = "bubblewrap", "session"
CHOICES = ("auto", BUBBLEWRAP, SESSION)
_PR_SET_CHILD_SUBREAPER = 36


class IsolationError(RuntimeError):
    """The isolation asked for cannot be had here."""


@dataclass(frozen=True)
class Sandbox:
    """How a graded child is started: `kind` (BUBBLEWRAP or SESSION), the folders it must not see
    (bubblewrap only), and the folder its compiled kernels are cached in (None: the user's)."""

    kind: str = SESSION
    hidden: tuple[Path, ...] = ()
    cache: Path | None = None
    shared: Path | None = None  # a cache of kernel builds read, never written (the teacher's code's)

    def command(self, command: list[str], tree: Path, device: str) -> list[str]:
        """`command`, run in this sandbox with `tree` (the copy under grading) writable."""
        if self.kind == SESSION:
            return command
        writable = [tree, *([self.cache] if self.cache else [])]
        readable = [self.shared] if self.shared else []
        return [*bwrap_options(self.hidden, readable, writable, device), "--chdir", str(tree), "--", *command]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """The child's environment: its caches in self.cache (builds also read from self.shared), its
        temporary files where it may write."""
        if self.cache is not None:
            env = {**env, "MINIDL_CACHE": str(self.cache), "CUPY_CACHE_DIR": str(self.cache / "cupy")}
        if self.shared is not None:
            env = {**env, "MINIDL_SHARED_CACHE": str(self.shared)}
        if self.kind == BUBBLEWRAP:
            env = {**env, "TMPDIR": "/tmp"}
        return env


SWEPT = Sandbox(SESSION)  # what `check` runs a student's own copy in


def interpreter_paths() -> list[Path]:
    """The folders this Python runs from (its prefixes, its import path) that lie in /tmp, which the
    sandbox empties: a venv or checkout there (a CI clone in a temporary folder) must stay readable,
    or the child's interpreter cannot start."""
    tmp = Path("/tmp").resolve()
    found = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path) if p}
    return sorted(p for p in found if p.is_relative_to(tmp) and p != tmp and p.exists())


def bwrap_options(hidden, readable, writable, device: str) -> list[str]:
    """bwrap and its options: everything read-only, /tmp emptied but for the interpreter's own folders
    there, `hidden` emptied, then `readable` bound read-only (in case it was under them) and `writable`
    writable."""
    options = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/"]
    options += ["--dev-bind", "/dev", "/dev"] if device == "cuda" else ["--dev", "/dev"]  # a GPU's device files
    options += ["--proc", "/proc", "--tmpfs", "/tmp"]
    for folder in interpreter_paths():
        options += ["--ro-bind", str(folder), str(folder)]
    for folder in hidden:
        options += ["--tmpfs", str(folder)]
    for folder in readable:
        options += ["--ro-bind", str(folder), str(folder)]
    for folder in writable:
        options += ["--bind", str(folder), str(folder)]
    return options


def choose(asked: str, hidden: tuple[Path, ...] = ()) -> Sandbox:
    """The sandbox for `asked` ("auto": bubblewrap where it works here, else session)."""
    if asked == SESSION:
        return SWEPT
    problem = bwrap_problem()
    if problem is None:
        return Sandbox(BUBBLEWRAP, hidden)
    if asked == BUBBLEWRAP:
        raise IsolationError(f"--isolation bubblewrap: {problem}")
    return SWEPT


def bwrap_problem() -> str | None:
    """Why bwrap cannot sandbox a child here (None: it can)."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian and Ubuntu: apt-get install bubblewrap)"
    command = [*bwrap_options((), (), (), "cpu"), "--", "true"]
    probe = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return f"bwrap cannot make a sandbox here: {probe.stderr.strip() or f'exit status {probe.returncode}'}"
    return None


def describe(sandbox: Sandbox) -> str:
    """What the isolation gives, in a line (the log and the gradebook say it)."""
    if sandbox.kind == BUBBLEWRAP:
        return "bubblewrap: own PID namespace, no network, files read-only but the copy, gradebook hidden"
    return "session: a new session per child and a sweep of its processes; it runs as you, with your files"


def become_subreaper() -> None:
    """Make this process the one that whatever its children start is reparented to when orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def descendants(pid: int) -> set[int]:
    """The processes below `pid` in the process tree, read from /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:  # it ended
                continue
            parent = int(stat[stat.rindex(b")") + 2 :].split()[1])  # after "pid (name) state"
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def sweep(seconds: float = 10.0) -> None:
    """SIGKILL every descendant of this process and reap those reparented to it, until none is left
    (a process that forks while it is swept is found again on the next pass)."""
    me, deadline = os.getpid(), time.monotonic() + seconds
    while (left := descendants(me)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, os.WNOHANG)  # a zombie that is ours now
            except (ProcessLookupError, ChildProcessError, PermissionError):
                pass
        time.sleep(0.01)
    if left:
        raise RuntimeError(f"processes {sorted(left)} started by a graded child could not be killed")
