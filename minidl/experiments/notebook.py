"""The lab's experiments from Python: a notebook cell, a script, a test.

    from minidl.experiments.notebook import experiment, run_example
    conv_dae = experiment("conv_dae_mnist")             # examples/conv_dae_mnist.py's function
    help(conv_dae)                                      # its options; Jupyter shows its signature
    run = conv_dae(epochs=1, limit=2000)                # = python examples/conv_dae_mnist.py --epochs 1 --limit 2000
    run.metrics["test_mse"]; run.show()                 # its metrics; its figures inline in Jupyter
    run = run_example("conv_dae_mnist", epochs=1)       # the same in one call
    run = sheet_run("conv_dae_mnist", out="runs", quick=True, device="cpu")   # a lab sheet's run (below)

A lab sheet (notebooks/) runs its long experiments with sheet_run: QUICK shrinks them to a smoke
test of seconds and says so, in print and in a banner, beside every number it shows; the run
folder is kept, so running the cell again loads the finished run's checkpoints instead of
training again.

Each example declares its work as a function (minidl.experiments.experiment.example) whose keyword arguments
are its command-line options, validated by the same argparse parser; the script's main() only
parses the command line and calls the same work. So everything the command line guarantees holds
here too: the run folder is locked and never overwritten by accident, checkpoints are atomic and
`resume=True` continues a run. A bad option raises ExperimentError (a ValueError) with argparse's
message, a misspelt one a TypeError; the run's own failures raise as they are. The examples live
in the repository's examples/ folder, beside the minidl package.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path

from .experiment import Run
from .options import CannotResume

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_names() -> list[str]:
    """The examples of examples/ (quickstart among them, though it takes no options)."""
    return sorted(p.stem for p in EXAMPLES.glob("*.py"))


def experiment(name: str) -> Callable[..., Run]:
    """examples/<name>.py's function: keyword arguments are its options (with their defaults, in
    the signature Jupyter shows), its docstring the example's own and its options' help; a call runs
    the example in this process and returns a Run."""
    function = getattr(_load(name), name, None)
    if not callable(getattr(function, "main", None)):
        raise ValueError(f"{name} does not take the lab's options (it declares no example): run it from the shell")
    return function


def run_example(name: str, **options) -> Run:
    """Run examples/<name>.py with these options in this process: experiment(name)(**options)."""
    return experiment(name)(**options)


QUICK_SIZE = dict(epochs=1, limit=128, test_limit=128)  # a smoke test: does every cell run?
SMOKE_TEST = ("QUICK = True: a smoke test on {limit} images for {epochs} epoch. Its numbers say the code runs, "
              "nothing about the method: set QUICK = False for results.")  # fmt: skip


def smoke_test_banner() -> None:
    """Say that QUICK's numbers are a smoke test: printed, and in Jupyter a red box above the output."""
    text = SMOKE_TEST.format(**QUICK_SIZE)
    print(f"*** {text} ***")
    try:
        from IPython.display import HTML, display
    except ImportError:  # a script or a plain Python shell: the printed line is the banner
        return
    display(HTML(f'<div style="border:2px solid #c00;padding:6px;color:#c00;font-weight:bold">{text}</div>'))


def quick_size(name: str) -> dict:
    """QUICK_SIZE for examples/<name>.py, with one epoch for each of its other epoch options too
    (deep_ae's one-layer and pretraining epochs): the smoke test trains every stage one epoch."""
    size = dict(QUICK_SIZE)
    for option, parameter in inspect.signature(experiment(name)).parameters.items():
        if option.endswith("_epochs"):
            size[option] = [1] * len(parameter.default) if isinstance(parameter.default, list | tuple) else 1
    return size


def sheet_run(name: str, *, out: str | Path, quick: bool, device: str | None, **options) -> Run:
    """examples/<name>.py run for a lab sheet, in out/<quick|full>/<name>: QUICK at QUICK_SIZE, with the
    smoke-test banner. A finished run there with the same settings is loaded from its checkpoints
    (resume=True: nothing is trained again); none, or one with other settings, starts afresh."""
    folder = Path(out) / ("quick" if quick else "full") / name
    options = options | (quick_size(name) if quick else {})
    if quick:
        smoke_test_banner()
    try:
        return run_example(name, out=folder, device=device, resume=True, **options)
    except CannotResume:
        return run_example(name, out=folder, device=device, overwrite=True, **options)


def _load(name: str):
    """examples/<name>.py as a module, loaded afresh (so an edited example runs as edited); its
    work runs only when called. `name` must be one of example_names(), checked before anything runs."""
    if name not in example_names():  # a name, never a path: nothing outside examples/ is run
        where = f"examples: {', '.join(example_names())}" if EXAMPLES.is_dir() else (
            f"no examples folder at {EXAMPLES} (run from a clone of the repository: pip install -e .)")  # fmt: skip
        raise ValueError(f"no example {name!r}; {where}")
    script = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"minidl_example_{name}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
