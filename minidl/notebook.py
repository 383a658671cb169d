"""The lab's experiments from Python: a notebook cell, a script, a test.

    from minidl.notebook import run_example
    run = run_example("conv_dae_mnist", epochs=1, limit=2000)     # python examples/conv_dae_mnist.py --epochs 1 ...
    run.metrics["test_mse"]; run.show()                           # its metrics; its figures inline in Jupyter
    conv_dae = experiment("conv_dae_mnist")                        # the same as a function: help(conv_dae)
    conv_dae(epochs=1, limit=2000)                                 # lists its options, Jupyter shows its signature

run_example runs an example's own main() in this process, with keyword arguments that mirror
its command-line options (limit=2000 is --limit 2000, resume=True is --resume, sizes=[784, 64]
is --sizes 784 64), so everything the command line guarantees holds here too: options are
validated as argparse validates them, the run folder is locked and never overwritten by
accident, checkpoints are atomic and `resume=True` continues a run. A bad option raises
ExperimentError (a ValueError) with argparse's message; the run's own failures raise as they are.
The examples live in the repository's examples/ folder, beside the minidl package.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import importlib.util
import inspect
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from .experiment import IN_PROCESS, PARSER_ONLY, ParserBuilt
from .viz import DRAWN

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@dataclass
class Run:
    """What an example left: its metrics (the --json record), its folder, the matplotlib figures it
    drew and the PNG files it wrote of them, both by name (the file's stem: "loss_curves")."""

    name: str
    metrics: dict
    out: Path
    figures: dict[str, Figure] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def show(self, *names: str) -> None:
        """Display the figures (all, or those named) inline in Jupyter; elsewhere print where they are."""
        unknown = [n for n in names if n not in self.files]
        if unknown:
            raise KeyError(f"{self.name} drew no figure {unknown}; it drew {sorted(self.files)}")
        chosen = [self.files[n] for n in names] if names else list(self.files.values())
        try:
            from IPython.display import Image, display
        except ImportError:
            print("\n".join(str(p) for p in chosen))
            return
        for path in chosen:
            display(Image(filename=str(path)))


def example_names() -> list[str]:
    """The examples run_example can run."""
    return sorted(p.stem for p in EXAMPLES.glob("*.py"))


def parser_of(name: str) -> argparse.ArgumentParser:
    """An example's argparse parser, built by its own main() and taken before anything runs."""
    module, script = _load(name)
    try:
        with _command_line(script, [], PARSER_ONLY):
            module.main()
    except ParserBuilt as built:
        return built.parser
    raise ValueError(f"{name} does not take the lab's options (it builds no Experiment): run it from the shell")


def experiment(name: str) -> Callable[..., Run]:
    """examples/<name>.py as a function: its keyword arguments are the example's options (with their
    defaults, in the signature Jupyter shows), its docstring the example's own and its options' help,
    and a call is run_example(name, ...)."""
    parser = parser_of(name)
    actions = [a for a in parser._actions if a.dest not in ("help", "json") and a.option_strings]
    signature = inspect.Signature(
        [inspect.Parameter(a.dest, inspect.Parameter.KEYWORD_ONLY, default=a.default) for a in actions]
    )

    def run(**options) -> Run:
        signature.bind(**options)  # a misspelt option is a TypeError naming it
        return run_example(name, **options)

    lines = [f"  {a.dest}={a.default!r}: {(a.help or '').replace('%(default)s', str(a.default))}" for a in actions]
    run.__name__ = run.__qualname__ = name
    run.__signature__ = signature
    run.__doc__ = f"{parser.description.strip()}\n\nOptions (keyword=default: what it does):\n" + "\n".join(lines)
    return run


def _load(name: str):
    """examples/<name>.py as a module (not run), and its path."""
    script = EXAMPLES / f"{name}.py"
    if not script.is_file():
        where = f"examples: {', '.join(example_names())}" if EXAMPLES.is_dir() else (
            f"no examples folder at {EXAMPLES} (run from a clone of the repository: pip install -e .)")  # fmt: skip
        raise ValueError(f"run_example: no example {name!r}; {where}")
    spec = importlib.util.spec_from_file_location(f"minidl_example_{name}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, script


@contextlib.contextmanager
def _command_line(script: Path, words: list[str], mode: contextvars.ContextVar):
    """While inside: sys.argv is `script words...` (what the example's main() parses) and `mode` is set."""
    saved, token = sys.argv, mode.set(True)
    sys.argv = [str(script), *words]
    try:
        yield
    finally:
        sys.argv = saved
        mode.reset(token)


def argv(options: dict) -> list[str]:
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


def run_example(name: str, **options) -> Run:
    """Run examples/<name>.py with these options in this process; its metrics and figures.
    experiment(name) is the same as a function whose signature and docstring list the options."""
    if "json" in options:
        raise ValueError("run_example: the metrics come back as Run.metrics; leave out json=")
    module, script = _load(name)
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "metrics.json"
        drawn: list = []
        recording = DRAWN.set(drawn)
        try:
            with _command_line(script, [*argv(options), "--json", str(record)], IN_PROCESS):  # usage errors raise
                module.main()
        finally:
            DRAWN.reset(recording)
        metrics = json.loads(record.read_text())
    out = Path(options.get("out") or Path("runs") / name)
    return Run(name, metrics, out, {p.stem: fig for p, fig in drawn}, {p.stem: p for p, _ in drawn})
