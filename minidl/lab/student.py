"""The student's code, run in a process of its own: the grader asks, the student's process computes.

Student(tree, device, timeout, sandbox) starts `python -m minidl.lab probe` on the copy at `tree`
(its working directory, first on its import path, in a session of its own, in the sandbox that
isolation.py makes: bubblewrap, or a session that is swept) and
`student.name(*args)` runs probes.name there and returns the result. Requests and replies cross
a pair of pipes as minidl.lab.wire messages (data, never pickles); what the child prints is
dropped, its stderr kept in a file that only a crash report reads. Whatever the student's code
does in its process (print, exit, fork, replace the grader's functions there) can change only
the outputs it returns: the
comparisons, the case count and the verdict are made in the grader's process (checks.py).
When the grading ends the child's session is killed, then every process it started (isolation.sweep).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from ..runtime.sources import PACKAGE, is_source_tree
from . import wire
from .isolation import SWEPT, Sandbox, become_subreaper, sweep


class StudentRaised(Exception):
    """The student's code raised: `kind` is the exception's class name, the message its text."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind = kind


class StudentCrashed(Exception):
    """The student's process died, or sent something that is not a reply; the message says how."""


class StudentTimedOut(Exception):
    """The grading's time ran out while the student's process computed."""


def source_tree(folder: Path) -> Path | None:
    """The minidl source tree (checkout or student copy) that holds `folder`, if any."""
    return next((tree for tree in (folder, *folder.parents) if is_source_tree(tree)), None)


def imported_tree() -> Path:
    """The folder that holds the minidl package this process imported."""
    return PACKAGE.parent


def child_environment(tree: Path) -> dict[str, str]:
    """The environment of a process that must import minidl from `tree`: it first on the import path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


class Student:
    """The probes of the copy at `tree`, run on `device` in a child process in `sandbox`, all within
    `timeout` seconds."""

    def __init__(self, tree: Path, device: str, timeout: float, sandbox: Sandbox = SWEPT):
        self.tree, self.device = Path(tree).resolve(), device
        self.deadline = time.monotonic() + timeout
        self.err = tempfile.TemporaryFile()  # read for a crash report; what the child prints is dropped
        requests_read, self.requests = os.pipe()
        self.replies, replies_write = os.pipe()
        command = [sys.executable, "-m", "minidl.lab", "probe", "--device", device, "--copy", str(self.tree),
                   "--pipes", f"{requests_read},{replies_write}"]  # fmt: skip
        become_subreaper()  # what the child starts stays below this process, for sweep() to find
        try:
            self.child = subprocess.Popen(
                sandbox.command(command, self.tree, device),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.err,
                cwd=self.tree,
                env=sandbox.environment(child_environment(self.tree)),
                start_new_session=True,  # its own session: close() kills its group first
                pass_fds=(requests_read, replies_write),
            )
        finally:
            os.close(requests_read)
            os.close(replies_write)
        os.set_blocking(self.requests, False)
        os.set_blocking(self.replies, False)
        try:
            imported = self._reply()
            if imported != str(self.tree):
                raise StudentCrashed(
                    f"asked to grade the copy at {self.tree}, the child imported minidl from {imported}"
                )
        except BaseException:  # a child that hangs or dies before it answers: killed too, as by __exit__
            self.close()
            raise

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return partial(self.call, name)

    def call(self, probe: str, *args):
        """probes.<probe>(device, *args) in the student's process."""
        try:
            wire.send(self.requests, {"probe": probe, "args": list(args)}, self.deadline)
        except BrokenPipeError:
            raise self._crashed() from None
        except TimeoutError:
            raise StudentTimedOut from None
        reply = self._reply()
        if isinstance(reply, dict) and set(reply) == {"value"}:
            return reply["value"]
        if isinstance(reply, dict) and set(reply) == {"raised", "kind"}:
            raise StudentRaised(str(reply["kind"]), str(reply["raised"]))
        raise StudentCrashed(f"the student's process sent something that is not a reply: {str(reply)[:100]}")

    def _reply(self):
        try:
            return wire.receive(self.replies, self.deadline)
        except TimeoutError:
            raise StudentTimedOut from None
        except EOFError:
            raise self._crashed() from None
        except wire.WireError as e:
            raise StudentCrashed(f"the student's process sent {e}") from None

    def _crashed(self) -> StudentCrashed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.child.wait(timeout=max(0.0, min(5.0, self.deadline - time.monotonic())))
        return StudentCrashed(describe_crash(self.stderr(), self.child.returncode))

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.child.pid, signal.SIGKILL)  # the child and its group (a bwrap sandbox dies with it)
        self.child.wait()
        sweep()  # whatever it started in other sessions
        for fd in (self.requests, self.replies):
            os.close(fd)
        self.err.close()

    def __enter__(self) -> Student:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def describe_crash(stderr: str, returncode: int | None) -> str:
    """What a crashed child's stderr says, in a line or two: AddressSanitizer's finding and
    the CUDA thread the emulator names, or else the end of stderr."""
    finding = re.search(r"ERROR: AddressSanitizer: ([\w-]+)", stderr)
    access = re.search(r"^(READ|WRITE) of size (\d+)", stderr, re.MULTILINE)
    thread = re.search(r"minidl emulator: in kernel (.*)", stderr)
    if finding:
        text = f"AddressSanitizer stopped the kernel: {finding[1]}"
        if access:
            text += f", a {access[1]} of {access[2]} bytes outside every array"
        if thread:
            text += f"\n  where: {thread[1]}"
        return text + "\n  hint: an index past the end (or before the start) of an array; check the bounds tests"
    tail = "\n".join(stderr.strip().splitlines()[-6:])
    status = "still running" if returncode is None else f"exit status {returncode}"
    return f"the student's process ended ({status}):\n{tail}"


def serve(device: str, copy: Path, requests: int, replies: int) -> int:
    """The child's side: say which tree minidl came from, then answer requests until the pipe closes."""
    from . import probes

    wire.send(replies, str(imported_tree()))
    if imported_tree() != copy.resolve():
        return 1
    while True:
        try:
            request = wire.receive(requests)
        except EOFError:
            return 0
        try:
            frame = wire.pack({"value": getattr(probes, request["probe"])(device, *request["args"])})
        except Exception as e:  # the student's code raised (a stub says "not implemented")
            frame = wire.pack({"raised": f"{type(e).__name__}: {e}", "kind": type(e).__name__})
        wire.write(replies, frame)
