"""Ctrl-C in an example: one line on stderr and exit status 130, whenever it comes.

cli.run() turns a KeyboardInterrupt raised while the command works into that line. Before run()
is entered, while the example still imports minidl (NumPy, matplotlib), Python would print a
traceback and die by the signal; so importing minidl from an example script (examples/*.py run
as a program) first installs a SIGINT handler that says the line and exits, and run() puts
Python's own handler back. This module imports nothing but the standard library's basics, so
that the handler is in place before the long imports begin.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

MESSAGE = "minidl: interrupted (Ctrl-C)"
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def exit_interrupted(what_was_kept: str) -> NoReturn:
    """Say the one line (MESSAGE; what_was_kept) and exit with status 130."""
    print(f"\n{MESSAGE}; {what_was_kept}", file=sys.stderr)
    sys.exit(130)


def _while_starting(signum, frame) -> NoReturn:
    """Say the line and end the process at once: an exception raised here can land inside an import's C
    code (NumPy's import of datetime), which turns it into an ImportError and a traceback."""
    print(f"\n{MESSAGE}; it was still starting: nothing was written", file=sys.stderr, flush=True)
    os._exit(130)


def guard_start() -> None:
    """When the program is an example script, answer Ctrl-C with the line until run() takes over."""
    program = getattr(sys.modules.get("__main__"), "__file__", None)
    if (
        program
        and os.path.dirname(os.path.abspath(program)) == EXAMPLES
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not ignored, not someone's own
    ):
        signal.signal(signal.SIGINT, _while_starting)


def started() -> None:
    """The command's work begins (cli.run): Ctrl-C raises KeyboardInterrupt again."""
    if signal.getsignal(signal.SIGINT) is _while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


guard_start()  # on import: minidl/__init__.py imports this module first
