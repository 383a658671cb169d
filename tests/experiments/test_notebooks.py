"""The lab from Python and from Jupyter: each example is a function of its options, run in process
with the command line's guarantees, and every notebook in notebooks/ runs top to bottom (nbclient,
a real kernel) at small parameters, and is committed without outputs. The notebooks pick their
device themselves and the rest touches no device, so all of it runs once, in the cpu leg."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import host_only

from minidl.experiments.notebook import EXAMPLES, example_names, experiment, run_example
from minidl.experiments.options import ExperimentError, command_words

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
pytestmark = host_only
QUICK = dict(epochs=1, limit=256, test_limit=256, device="cpu")


def test_options_become_the_command_line_words():
    assert command_words(dict(epochs=1, test_limit=5, resume=True, overwrite=False, data=None, sizes=[784, 64])) == [
        "--epochs", "1", "--test-limit", "5", "--resume", "--sizes", "784", "64"]  # fmt: skip


def test_run_example_gives_metrics_and_figures_and_keeps_the_run_folder_safe(tmp_path):
    run = run_example("dae_mnist", levels=[0.3], out=tmp_path, **QUICK)
    assert run.metrics["epochs"] == 1 and "test_mse" in run.metrics
    lock = "import fcntl, sys; fcntl.flock(open(sys.argv[1], 'a+'), fcntl.LOCK_EX | fcntl.LOCK_NB)"
    free = subprocess.run([sys.executable, "-c", lock, str(tmp_path / ".minidl-run.lock")], capture_output=True)
    assert free.returncode == 0, "the finished run kept its folder locked until this process ends"
    assert set(run.figures) == set(run.files) == {"denoising_levels", "loss_curves"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in run.files.values())
    assert run.figures["loss_curves"].axes[0].get_xlabel() == "epoch"  # the matplotlib figure itself
    with pytest.raises(KeyError, match="drew no figure"):
        run.show("loss")
    with pytest.raises(ExperimentError, match="add --resume to continue it"):
        run_example("dae_mnist", levels=[0.3], out=tmp_path, **QUICK)  # an earlier run is never replaced silently
    again = run_example("dae_mnist", levels=[0.3], out=tmp_path, resume=True, json=tmp_path / "m.json", **QUICK)
    assert again.metrics["test_mse"] == run.metrics["test_mse"]
    assert json.loads((tmp_path / "m.json").read_text())["test_mse"] == pytest.approx(again.metrics["test_mse"])
    with pytest.raises(ExperimentError, match=r"^dae_mnist.py: argument --epochs: expected a number ≥ 0, got -1"):
        run_example("dae_mnist", epochs=-1, out=tmp_path / "other")  # named by its file, not by the Python running it
    with pytest.raises(ExperimentError, match="--overwrite: not allowed with argument --resume"):
        run_example("dae_mnist", resume=True, overwrite=True, out=tmp_path / "other")
    with pytest.raises(TypeError, match="epoch"):
        run_example("dae_mnist", epoch=1, out=tmp_path / "other")  # misspelt: refused before anything runs
    with pytest.raises(ValueError, match="no example 'dae'; examples: .*dae_mnist"):
        run_example("dae")
    assert "conv_dae_mnist" in example_names()


def test_an_example_as_a_function_shows_its_options():
    conv_dae = experiment("conv_dae_mnist")
    parameters = inspect.signature(conv_dae).parameters
    assert parameters["loss"].default == "mse" and parameters["epochs"].default == 20 and "help" not in parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert "loss='mse': both models' loss (default mse)" in conv_dae.__doc__
    assert conv_dae.__doc__.startswith("The lab's main job") and conv_dae.__name__ == "conv_dae_mnist"
    with pytest.raises(ValueError, match="quickstart does not take the lab's options"):
        experiment("quickstart")


def test_a_name_outside_examples_is_refused_before_anything_runs(tmp_path):
    """experiment('../…/payload') ran payload.py (outside examples/) and only then refused it."""
    payload = tmp_path / "payload.py"
    payload.write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    for name in (os.path.relpath(tmp_path / "payload", EXAMPLES), str(tmp_path / "payload"), "../setup"):
        with pytest.raises(ValueError, match="no example .*; examples: .*dae_mnist"):
            experiment(name)
    assert not (tmp_path / "ran").exists(), "a file outside examples/ was executed"


@pytest.mark.parametrize("name", [n for n in example_names() if n != "quickstart"])
def test_every_keyword_reaches_its_option(name):
    """A keyword x_y becomes --x-y (command_words), so each option's flag must be its name's."""
    function = experiment(name)
    for action in function.parser._actions:
        if action.option_strings and action.dest != "help":
            assert "--" + action.dest.replace("_", "-") in action.option_strings, (name, action.option_strings)
    assert function.parser.prog == f"{name}.py"


def test_the_command_line_still_exits_after_a_call_from_python(tmp_path, capsys):
    dae = experiment("dae_mnist")
    with pytest.raises(ExperimentError):
        dae(epochs=-1, out=tmp_path)
    with pytest.raises(SystemExit) as exit_:
        dae.main(["--epochs", "-1", "--out", str(tmp_path)])
    assert exit_.value.code == 2 and "dae_mnist.py: error: argument --epochs" in capsys.readouterr().err


def test_committed_notebooks_carry_no_outputs():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} keeps outputs"


def test_every_notebook_starts_with_the_same_setup_and_device_cells():
    """The cell that installs minidl on a fresh machine (Colab) runs before minidl can be imported,
    and the one that picks the device and runs the doctor follows the parameters: each notebook
    carries a copy of both, and they must not drift apart."""
    cells = [_code_cells(path) for path in NOTEBOOKS]
    assert len({c[0] for c in cells}) == 1 and cells[0][0].startswith("# Setup."), "the setup cells differ"
    assert len({c[2] for c in cells}) == 1 and "doctor.main" in cells[0][2], "the device cells differ"


@pytest.mark.parametrize(
    "smi, extra",
    [("| NVIDIA-SMI 550.54.15  Driver Version: 550.54.15  CUDA Version: 12.4 |", "dev,cuda12"),
     ("| NVIDIA-SMI 580.82.07  Driver Version: 580.82.07  CUDA Version: 13.0 |", "dev,cuda13"),
     ("| NVIDIA-SMI 470.57.02  Driver Version: 470.57.02  CUDA Version: 11.4 |", "dev"),
     (None, "dev")],
)  # fmt: skip
def test_the_setup_cell_installs_the_cupy_of_the_gpus_cuda(smi, extra, tmp_path, monkeypatch):
    """On a machine without minidl (find_spec finds nothing), from notebooks/: the setup cell installs the
    repository with the extra that nvidia-smi's CUDA version calls for (none without a GPU) and puts
    the repository on this kernel's path; the install itself is recorded, not run."""
    import importlib.util
    import subprocess
    import sys

    if smi is not None:
        (tmp_path / "nvidia-smi").write_text(f"#!/bin/sh\necho '{smi}'\n")
        (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}" if smi else str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    commands = []
    monkeypatch.setattr(subprocess, "check_call", commands.append)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(ROOT / "notebooks")
    exec(_code_cells(NOTEBOOKS[0])[0], {})
    assert commands == [[sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extra}]"]]
    assert sys.path[0] == str(ROOT)


def _code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    """Executed by nbclient in a fresh kernel, its `parameters` cell replaced by small values (as a
    teacher's quick check would): any error in any cell fails the test."""
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' brings nbformat")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[dev]' brings nbclient")
    notebook = nbformat.read(path, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs one cell tagged 'parameters'"
    tagged[0].source += f"\n# the test's small run\nQUICK = True\nOUT = {str(tmp_path)!r}\n"
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} showed no figure"
