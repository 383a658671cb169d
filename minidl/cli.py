"""The one top-level handler of minidl's commands (the examples and `python -m minidl.lab`).

run(main) calls main() and exits with its status. A failure the user can act on (a bad
environment variable, a device that is not there, a full disk, a folder without permission,
damaged data, Ctrl-C) becomes a line or two on stderr saying what happened and what to do,
with the exit status of the convention: 2 for a usage error, 130 for an interrupt, 1 for the
rest. Anything else is a bug and keeps its traceback; MINIDL_DEBUG=1 shows the traceback of
every failure.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from .backend import DeviceError, DeviceUnavailable
from .interrupt import exit_interrupted, started
from .runtime.emulator import EmulatorSettingError, EmulatorUnavailable


class CommandError(ValueError):
    """A failure the person at the command can act on (bad data, a run that cannot start as asked);
    its message says what to do. minidl.data's DataError and the lab's ExperimentError are ones."""


USAGE = (DeviceError, EmulatorSettingError)  # exit status 2
KNOWN = (CommandError, DeviceUnavailable, EmulatorUnavailable, OSError)
_FULL = "free some space, or write elsewhere (--out, MINIDL_CACHE)"
_DENIED = "permission denied: give a folder you can write in (--out, MINIDL_CACHE, MINIDL_DATA)"
_NOT_A_FOLDER = "a path that should be a folder is a file (check --out, MINIDL_CACHE, MINIDL_DATA)"
ADVICE = {
    errno.ENOSPC: f"the disk is full: {_FULL}",
    errno.EDQUOT: f"the disk quota is used up: {_FULL}",
    errno.EACCES: _DENIED,
    errno.EPERM: _DENIED,
    errno.EROFS: "the file system is read-only: write elsewhere (--out, MINIDL_CACHE)",
    errno.ENOTDIR: _NOT_A_FOLDER,
    errno.EEXIST: _NOT_A_FOLDER,
}


def debugging() -> bool:
    return os.environ.get("MINIDL_DEBUG", "") not in ("", "0")


def describe(error: BaseException) -> str:
    """What a known failure says to the user."""
    if isinstance(error, OSError) and error.errno is not None:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}\n  {ADVICE.get(error.errno, 'the operating system refused it')}"
    return str(error)


def run(main: Callable[[], int | None], interrupted: Callable[[], str] = lambda: "nothing was saved") -> NoReturn:
    """Run a command's main() and exit: with its status, or with a message for a known failure;
    on Ctrl-C, interrupted() says what the command kept."""
    started()
    try:
        status = main()
    except KeyboardInterrupt:
        if debugging():
            raise
        exit_interrupted(interrupted())
    except USAGE + KNOWN as e:
        if debugging():
            raise
        print(f"minidl: {describe(e)}\n(MINIDL_DEBUG=1 shows where)", file=sys.stderr)
        sys.exit(2 if isinstance(e, USAGE) else 1)
    sys.exit(status or 0)
