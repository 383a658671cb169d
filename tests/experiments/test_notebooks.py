"""The lab from Python and from Jupyter: each example is a function of its options, run in process
with the command line's guarantees (the lab sheets of notebooks/ are tested in tests/lab/test_sheets.py).
It touches no device but cpu, so all of it runs once, in the cpu leg."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import host_only

from minidl.experiments.notebook import EXAMPLES, QUICK_SIZE, example_names, experiment, quick_size, run_example
from minidl.experiments.options import ExperimentError, command_words

ROOT = Path(__file__).resolve().parents[2]
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


def test_a_sheets_run_is_kept_and_loaded_when_run_again(tmp_path, capsys):
    """A lab sheet's sheet_run: QUICK says its numbers are a smoke test; run again with the same settings
    it loads the finished run's checkpoints (nothing trained again, the same metrics); with other
    settings it starts afresh in the same folder."""
    from minidl.experiments.notebook import sheet_run

    first = sheet_run("dae_mnist", out=tmp_path, quick=True, device="cpu", levels=[0.3])
    assert "a smoke test" in capsys.readouterr().out
    checkpoints = sorted((tmp_path / "quick" / "dae_mnist").glob("*.ckpt.npz"))
    assert checkpoints, "the run kept no checkpoint"
    written = {p: p.stat().st_mtime_ns for p in checkpoints}
    again = sheet_run("dae_mnist", out=tmp_path, quick=True, device="cpu", levels=[0.3])
    assert "resumed from" in capsys.readouterr().out
    assert again.metrics["test_mse"] == first.metrics["test_mse"]
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == written, "a finished run was trained again"
    other = sheet_run("dae_mnist", out=tmp_path, quick=True, device="cpu", levels=[0.5])
    assert "resumed from" not in capsys.readouterr().out and other.metrics["test_mse"] != first.metrics["test_mse"]


def test_a_run_that_resume_cannot_continue_says_so_by_its_kind(tmp_path):
    """sheet_run starts afresh on a CannotResume only (it had matched words of the message): resume=True on
    an empty folder is one, still an ExperimentError with the program's name; a --json that is a folder is
    another ExperimentError, which a sheet shows as it is."""
    from minidl.experiments.notebook import run_example
    from minidl.experiments.options import CannotResume, ExperimentError

    with pytest.raises(CannotResume, match=r"^dae_mnist.py: --resume: .* holds no checkpoint"):
        run_example("dae_mnist", out=tmp_path / "empty", device="cpu", resume=True, epochs=1, limit=128)
    with pytest.raises(ExperimentError, match="is a folder; give a file name") as refused:
        run_example("dae_mnist", out=tmp_path / "run", device="cpu", json=tmp_path, epochs=1, limit=128)
    assert not isinstance(refused.value, CannotResume)


def test_quick_trains_every_stage_one_epoch():
    """QUICK said "one epoch" while deep_ae still trained its one-layer models 5 and 10 epochs and each
    pretrained level 5: every option of an example that counts epochs is 1 at QUICK size."""
    assert quick_size("deep_ae") == QUICK_SIZE | {"one_layer_epochs": [1, 1], "pretrain_epochs": 1}
    assert quick_size("stacked_classifier") == QUICK_SIZE | {"pretrain_epochs": 1}
    assert quick_size("dae_mnist") == QUICK_SIZE == {"epochs": 1, "limit": 128, "test_limit": 128}
