"""The options every example takes: one argparse parser (read from the shell, or given as keyword
arguments from Python), the argparse types that check each value, and ExperimentError, what a run
that cannot start as asked raises (CannotResume where --resume cannot continue it)."""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import math
from pathlib import Path
from typing import NoReturn

from .. import backend
from ..cli import CommandError
from . import corruptions


def positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1."""
    return _bounded(int, text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer ≥ 0."""
    return _bounded(int, text, 0)


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number ≥ 0."""
    return _bounded(float, text, 0)


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    value = _bounded(float, text, 0)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def open_fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1 (a KL target rho, say)."""
    value = _bounded(float, text, 0)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), strictly between, got {text}")
    return value


def corruption_spec(text: str) -> str:
    """An argparse type: a corruption such as 'gaussian:0.5' (checked by corruptions.corruption)."""
    try:
        corruptions.corruption(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _bounded(kind, text: str, minimum):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if not math.isfinite(value) or value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number ≥ {minimum}, got {text}")
    return value


# options that do not change what a run computes: everything else must match on --resume
NOT_SETTINGS = ("epochs", "device", "out", "json", "resume", "overwrite", "data", "capture", "test_limit")


class ExperimentError(CommandError):
    """A run that cannot start or continue as asked; the message says what to do instead."""


class CannotResume(ExperimentError):
    """A run that --resume cannot continue (its folder holds no checkpoint, one of more epochs than asked
    for, or one made with other settings): --overwrite starts it afresh."""


_RAISE_USAGE = contextvars.ContextVar("minidl_raise_usage", default=False)  # set while called from Python


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that while an example is called from Python, a usage error raises
    an ExperimentError with argparse's message instead of exiting the process."""

    def error(self, message: str):
        if _RAISE_USAGE.get():
            raise ExperimentError(f"{self.prog}: {message}")
        super().error(message)

    def refuse(self, error: Exception) -> NoReturn:
        """A run that cannot start (the error its setting up raised) as a usage error: while called from
        Python, raised again as its own kind of ExperimentError with the program's name (so that a
        lab sheet tells a CannotResume from the rest); from the command line, argparse's exit."""
        if _RAISE_USAGE.get():
            kind = type(error) if isinstance(error, ExperimentError) else ExperimentError
            raise kind(f"{self.prog}: {error}") from None
        self.error(str(error))


def command_line(
    description: str, epochs: int, batch_size: int = 128, prog: str | None = None
) -> argparse.ArgumentParser:
    """The options every example takes (the usage names `prog`); an example adds its own to the returned parser."""
    p = _Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=non_negative_int, default=epochs, help=f"training epochs (default {epochs})")
    p.add_argument("--device", choices=backend.DEVICES, default=None,
                   help="cpu, cuda or emu (default: $MINIDL_DEVICE, else cuda if present)")  # fmt: skip
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of initialisation, shuffling, dropout and noise"
    )
    p.add_argument("--out", type=Path, default=None, help="folder for figures and checkpoints (default runs/<name>)")
    p.add_argument("--json", type=Path, default=None, help="also write the metrics to this JSON file")
    p.add_argument("--limit", type=positive_int, default=None, help="train on the first N training images only")
    p.add_argument(
        "--test-limit", type=positive_int, default=None, help="evaluate on the first N test images only (default all)"
    )
    p.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"default {batch_size}")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    again.add_argument("--overwrite", action="store_true", help="start afresh, deleting the checkpoints in --out")
    p.add_argument("--data", default=None, help="MNIST file or folder (default: the lookup chain of minidl.data); "
                   "colorization.py takes CIFAR-10's cifar-10-python.tar.gz")  # fmt: skip
    p.add_argument(
        "--capture", action="store_true", help="record a training step as a CUDA graph and replay it (cuda only)"
    )
    return p


@contextlib.contextmanager
def _raising_usage_errors():
    token = _RAISE_USAGE.set(True)
    try:
        yield
    finally:
        _RAISE_USAGE.reset(token)


def command_words(options: dict) -> list[str]:
    """Keyword arguments as command-line words: x_y=3 -> --x-y 3; True -> the flag alone; False and
    None -> left out; a list or tuple -> the option followed by each item."""
    words: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, list | tuple):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return words
