"""Runs and their folders met the way a student meets them: a run folder locked against a second
run, checkpoints kept and resumed, bad command-line options, Ctrl-C; each refusal a clear message."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import host_only

import minidl as md
from minidl import nn
from minidl.experiments.experiment import Experiment
from minidl.experiments.options import ExperimentError, command_line
from minidl.experiments.run_folder import kept_message
from minidl.nn import functional as F

ROOT = Path(__file__).resolve().parents[2]


# -------------------------------------------------------------------- experiments
def _args(tmp_path, *options):
    return command_line("test", epochs=1).parse_args(["--out", str(tmp_path / "run"), "--device", "cpu", *options])


def _fit(exp: Experiment, seed_model: int = 0, tag: str = "lin"):
    md.manual_seed(seed_model)
    model = nn.Linear(4, 4, device=exp.device)
    x = np.random.default_rng(0).random((8, 4)).astype(np.float32)
    return exp.fit(tag, model, md.optim.SGD(model.parameters(), lr=0.1), lambda b, rng: F.mse_loss(model(b), b), [x])


def test_an_earlier_run_is_never_overwritten_by_accident(tmp_path):
    _fit(Experiment(_args(tmp_path), "t"))
    with pytest.raises(ExperimentError, match="holds the checkpoints of an earlier run.*--resume.*--overwrite"):
        Experiment(_args(tmp_path), "t")
    Experiment(_args(tmp_path, "--overwrite"), "t")
    assert not list((tmp_path / "run").glob("*.ckpt.npz"))


def test_resume_refuses_a_checkpoint_made_with_other_settings(tmp_path):
    _fit(Experiment(_args(tmp_path, "--seed", "1"), "t"))
    exp = Experiment(_args(tmp_path, "--seed", "2", "--resume", "--epochs", "2"), "t")
    with pytest.raises(ExperimentError, match="other settings:\n  --seed: checkpoint 1, this run 2"):
        _fit(exp)


def test_outputs_are_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExperimentError, match="is a file"):
        Experiment(command_line("t", 1).parse_args(["--out", str(tmp_path / "file"), "--device", "cpu"]), "t")
    with pytest.raises(ExperimentError, match="--json .* is a folder"):
        Experiment(_args(tmp_path, "--json", str(tmp_path)), "t")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ExperimentError, match="cannot write"):
            Experiment(command_line("t", 1).parse_args(["--out", str(locked), "--device", "cpu"]), "t")


def test_what_follows_a_resumed_model_draws_the_same_numbers(tmp_path):
    """A resumed model skips its epochs; the generator must still be where the uninterrupted run left it."""
    _fit(Experiment(_args(tmp_path / "a", "--epochs", "2"), "t"))
    straight = md.randn(3).numpy()
    _fit(Experiment(_args(tmp_path / "b", "--epochs", "2"), "t"))
    _fit(Experiment(_args(tmp_path / "b", "--epochs", "2", "--resume"), "t"))  # nothing left to train
    np.testing.assert_array_equal(md.randn(3).numpy(), straight)


HOLD_THE_FOLDER = """
import sys, time
from pathlib import Path
from minidl.experiments.experiment import Experiment
from minidl.experiments.options import command_line
args = command_line("hold", 1).parse_args(["--out", sys.argv[1], "--device", "cpu", "--seed", sys.argv[2]])
exp = Experiment(args, "hold")
Path(sys.argv[3]).write_text("locked")
time.sleep(float(sys.argv[4]))
"""


def _holder(out: Path, ready: Path, seconds: float, seed: int = 5, code: str = HOLD_THE_FOLDER) -> subprocess.Popen:
    """A run (`code`, HOLD_THE_FOLDER's by default) on `out` that writes `ready` once it has its folder."""
    command = [sys.executable, "-c", code, str(out), str(seed), str(ready), str(seconds)]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_run_folder_has_one_writer_and_a_dead_runs_lock_never_blocks(tmp_path):
    out, ready = tmp_path / "run", tmp_path / "ready"
    holder = _holder(out, ready, 60)
    try:
        _wait_for(ready)
        with pytest.raises(ExperimentError, match=rf"--out .*run is in use by another run \(process {holder.pid}\)"):
            Experiment(_args(tmp_path), "t")
    finally:
        holder.kill()  # kill -9: the OS drops its lock
        holder.wait()
    _fit(Experiment(_args(tmp_path), "t"))


@host_only
def test_two_runs_started_together_on_one_folder_give_one_run_and_one_refusal(tmp_path):
    out = tmp_path / "run"
    code = HOLD_THE_FOLDER.replace(
        "time.sleep(float(sys.argv[4]))",
        """time.sleep(float(sys.argv[4]))
import numpy as np, minidl as md
from minidl import nn
from minidl.nn import functional as F
model = nn.Linear(4, 4, device=exp.device)
x = np.random.default_rng(0).random((8, 4)).astype(np.float32)
exp.fit("lin", model, md.optim.SGD(model.parameters(), lr=0.1), lambda b, rng: F.mse_loss(model(b), b), [x])""",
    )
    runs = [_holder(out, tmp_path / f"ready{seed}", 1, seed, code) for seed in (0, 1)]
    results = [(run.wait(120), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 1], results
    (winner,) = [seed for seed, (code, _) in enumerate(results) if code == 0]
    assert "in use by another run" in results[1 - winner][1]
    settings = json.loads(str(md.load(out / "lin.ckpt.npz")["settings"]))
    assert settings["seed"] == str(winner)


def test_two_runs_in_one_process_are_two_writers_and_an_ended_run_frees_its_folder(tmp_path):
    """Two threads (or notebooks) of one process both ran on one folder: the lock let its process lock
    the folder again."""
    first = Experiment(_args(tmp_path), "t")
    refused: list[Exception] = []
    thread = threading.Thread(target=lambda: refused.append(pytest.raises(ExperimentError, Experiment,
                                                                          _args(tmp_path), "t").value))  # fmt: skip
    thread.start()
    thread.join()
    assert refused and f"in use by another run (process {os.getpid()})" in str(refused[0])
    first.close()
    _fit(Experiment(_args(tmp_path), "t"))  # the ended run's folder is free


def test_overwrite_removes_exactly_the_earlier_runs_files(tmp_path):
    """--overwrite removed every checkpoint in the folder (another example's too) and no figure, so an
    interrupted overwrite left the old figures beside no checkpoint."""
    other = Experiment(_args(tmp_path), "other")
    _fit(other, tag="other")
    other.figure("curves.png").write_bytes(b"the other example's figure")
    other.close()
    first = Experiment(_args(tmp_path), "t")  # the folder holds another example's run: not this one's
    _fit(first)
    first.figure("lin.png").write_bytes(b"a figure of t")
    first.close()
    Experiment(_args(tmp_path, "--overwrite"), "t").close()
    left = sorted(p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith("."))
    assert left == ["curves.png", "other.ckpt.npz"], left
    assert (tmp_path / "run" / "curves.png").read_bytes() == b"the other example's figure"


def test_resume_with_nothing_to_resume_says_so(tmp_path):
    """--resume in a folder without a checkpoint started afresh without a word."""
    with pytest.raises(ExperimentError, match=r"--resume: .*run holds no checkpoint of t to continue"):
        Experiment(_args(tmp_path, "--resume"), "t")
    _fit(Experiment(_args(tmp_path), "t"))  # the refused run left the folder free


def test_ctrl_c_says_what_was_kept(tmp_path):
    """It said "a run continues from its last checkpoint with --resume" when there was none."""
    exp = Experiment(_args(tmp_path, "--epochs", "2"), "t")
    assert kept_message() == f"no checkpoint was written yet in {exp.out} (one comes every few minutes and after " \
        "each epoch): nothing to resume"  # fmt: skip
    _fit(exp)
    assert kept_message() == f"kept in {exp.out}: lin.ckpt.npz (after epoch 2); --resume continues from there"
    exp.close()
    run = _example(str(ROOT / "examples" / "dae_mnist.py"), "--epochs", "1000", "--limit", "64", "--levels", "0.3",
                   "--device", "cpu", "--out", str(tmp_path / "dae"), preexec_fn=_default_sigint)  # fmt: skip
    _wait_for(tmp_path / "dae" / "model_d_sigma0.3.ckpt.npz")
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and f"kept in {tmp_path / 'dae'}: model_d_sigma0.3.ckpt.npz (after epoch" in err, err


class Stop(Exception):
    """Raised by a step to stop a run, as a Ctrl-C or a kill would, at a batch of the test's choosing."""


def _noisy_fit(exp: Experiment, stop_at: int | None = None):
    """Four steps an epoch of Adam on a linear model that draws noise from the run's generator, with
    dropout; raises Stop at step `stop_at` (counted over the whole run, from 0). Returns the losses,
    the parameters, three numbers drawn after it and the number of steps it ran."""
    md.manual_seed(7)
    model = nn.Sequential(nn.Linear(4, 8, device=exp.device), nn.Dropout(0.5), nn.Linear(8, 4, device=exp.device))
    x = np.random.default_rng(0).random((32, 4)).astype(np.float32)
    calls = iter(range(10**6))

    def step(b, rng):
        if next(calls) == stop_at:
            raise Stop
        noisy = b + md.tensor(rng.standard_normal(b.shape).astype(np.float32), device=exp.device)
        return F.mse_loss(model(noisy), b)

    history, _ = exp.fit("noisy", model, md.optim.Adam(model.parameters(), lr=1e-2), step, [x])
    return history, [p.numpy().copy() for p in model.parameters()], md.randn(3).numpy(), next(calls)


def test_a_checkpoint_within_an_epoch_resumes_at_its_batch_bit_for_bit(tmp_path, monkeypatch):
    """Checkpoints came only at the end of an epoch: a Ctrl-C 14 minutes into a slow first epoch lost
    them all. With one written after every batch here, a run stopped at step 6 (the third batch of the
    second epoch) resumes there and ends as the uninterrupted run does, bit for bit."""
    monkeypatch.setenv("MINIDL_CHECKPOINT_SECONDS", "0")
    options = ("--epochs", "3", "--batch-size", "8")
    straight = _noisy_fit(Experiment(_args(tmp_path / "a", *options), "t"))
    stopped = Experiment(_args(tmp_path / "b", *options), "t")
    with pytest.raises(Stop):
        _noisy_fit(stopped, stop_at=6)
    stopped.close()
    assert kept_message().endswith("noisy.ckpt.npz (in epoch 2, after batch 2 of 4); --resume continues from there")
    resumed = _noisy_fit(Experiment(_args(tmp_path / "b", *options, "--resume"), "t"))
    assert straight[3] == 12 and resumed[3] == 12 - 6, "the resumed run did not start at the stopped batch"
    assert resumed[0] == straight[0]  # the losses of every epoch, the interrupted one included
    for got, want in zip(resumed[1], straight[1]):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(resumed[2], straight[2])  # what follows draws the same numbers


def test_json_may_not_replace_the_runs_own_files(tmp_path):
    for name in ("model.ckpt.npz", "curves.png", ".minidl-run.t.json"):
        with pytest.raises(ExperimentError, match="would replace one of the run's own files"):
            Experiment(_args(tmp_path, "--json", str(tmp_path / "run" / name)), "t")


def test_resume_and_overwrite_together_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        command_line("t", 1).parse_args(["--resume", "--overwrite"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_resume_with_fewer_epochs_than_the_checkpoint_holds_says_so(tmp_path):
    """It reported the two-epoch model as the model of epoch 1."""
    _fit(Experiment(_args(tmp_path, "--epochs", "2"), "t"))
    with pytest.raises(ExperimentError, match=r"holds 2 epochs of lin, more than the 1 asked for.*--epochs 2"):
        _fit(Experiment(_args(tmp_path, "--epochs", "1", "--resume"), "t"))


def test_the_metrics_file_is_strict_json(tmp_path):
    exp = Experiment(_args(tmp_path, "--json", str(tmp_path / "m.json")), "t")
    exp.finish({"loss": float("nan"), "curve": [1.0, float("inf")], "score": np.float32(0.5)})

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    metrics = json.loads((tmp_path / "m.json").read_text(), parse_constant=refuse)
    assert metrics["loss"] is None and metrics["curve"] == [1.0, None] and metrics["score"] == 0.5
    assert metrics["not_finite"] == ["loss (nan)", "curve[1] (inf)"]


def _example(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    environment = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment, **popen)  # fmt: skip


def test_failures_at_the_command_line_are_messages_not_tracebacks(tmp_path):
    device = _example(str(ROOT / "examples" / "quickstart.py"), "--steps", "1", env={"MINIDL_DEVICE": "gpu"})
    _, err = device.communicate(timeout=120)
    assert device.returncode == 2 and "MINIDL_DEVICE='gpu'" in err and "Traceback" not in err, err
    (tmp_path / "cache").write_text("a file where a folder belongs")
    cache = _example(str(ROOT / "examples" / "quickstart.py"), "--steps", "1", "--device", "emu",
                     env={"MINIDL_CACHE": str(tmp_path / "cache")})  # fmt: skip
    _, err = cache.communicate(timeout=300)
    assert cache.returncode == 2 and "Traceback" not in err, err  # a setting to change: a usage error
    assert "cannot write its kernel cache" in err and "Set MINIDL_CACHE to a folder you can write in" in err, err


def test_a_damaged_mnist_cache_says_to_delete_it_without_pickle_advice(tmp_path):
    (tmp_path / "mnist.npz").write_text("garbage")
    run = _example(str(ROOT / "examples" / "dae_mnist.py"), "--epochs", "1", "--out", str(tmp_path / "out"),
                   env={"MINIDL_CACHE": str(tmp_path), "MINIDL_DATA": ""})  # fmt: skip
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1 and "not a zip archive" in err and "delete it" in err, err
    assert "pickle" not in err and "Traceback" not in err, err


@host_only
def test_a_walk_of_one_walker_and_a_small_test_set_run(tmp_path):
    """manifold_walk drew two walkers' rows whatever --walkers said; --test-limit bounds the evaluation."""
    for script, options in (("manifold_walk.py", ["--walkers", "1"]), ("conv_dae_mnist.py", [])):
        run = _example(str(ROOT / "examples" / script), "--epochs", "1", "--limit", "64", "--test-limit", "16",
                       "--device", "cpu", "--json", str(tmp_path / "m.json"), "--out", str(tmp_path / script),
                       *options)  # fmt: skip
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal delivers it (default). A runner that starts the suite in the
    background (nohup, `&` without job control) passes SIGINT on ignored, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_is_one_line_and_exit_status_130(tmp_path):
    run = _example(str(ROOT / "examples" / "quickstart.py"), "--steps", "1000000", "--device", "cpu",
                   preexec_fn=_default_sigint)  # fmt: skip
    assert run.stdout.readline().startswith("step"), "quickstart did not start"
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "interrupted (Ctrl-C)" in err and "Traceback" not in err, err


def test_ctrl_c_while_an_example_imports_is_the_same_line(tmp_path):
    """conv_dae_mnist imports minidl first: SIGINT once NumPy is loaded, with minidl's imports under way,
    printed a KeyboardInterrupt traceback and the process died by the signal."""
    run = _example(str(ROOT / "examples" / "conv_dae_mnist.py"), "--out", str(tmp_path), preexec_fn=_default_sigint)
    maps, deadline = Path(f"/proc/{run.pid}/maps"), time.monotonic() + 60
    while "_multiarray_umath" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.001)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "interrupted (Ctrl-C)" in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("minidl: interrupted (Ctrl-C); "), err


# ------------------------------------------------------------------ command lines
BAD_OPTIONS = [
    ("conv_dae_mnist.py", ["--seed", "-1"], "expected a number ≥ 0"),
    ("conv_dae_mnist.py", ["--other", "gaussian:0.5:nocilp"], "unknown option 'nocilp'"),
    ("conv_dae_mnist.py", ["--device", "gpu"], "invalid choice: 'gpu'"),
    ("conv_dae_mnist.py", ["--batch-size", "0"], "expected a number ≥ 1"),
    ("manifold_walk.py", ["--steps", "-5"], "expected a number ≥ 1"),
    ("manifold_walk.py", ["--walkers", "0"], "expected a number ≥ 1"),
    ("colorization.py", ["--patches", "0"], "expected a number ≥ 1"),
    ("stacked_classifier.py", ["--labels", "0"], "expected a number ≥ 1"),
    ("stacked_classifier.py", ["--pretrain-epochs", "-1"], "expected a number ≥ 0"),
    ("cluster_codes.py", ["--code", "0"], "expected a number ≥ 1"),
    ("cluster_codes.py", ["--points", "0"], "expected a number ≥ 1"),
    ("deep_ae.py", ["--sizes", "784"], "needs an input and a code size"),
    ("regularized_ae.py", ["--rho", "1.5"], r"in \(0, 1\), strictly between"),
    ("regularized_ae.py", ["--rho", "0"], r"in \(0, 1\), strictly between"),  # it failed after training
    ("latent_2d.py", ["--limit", "4"], "needs at least 5 training images"),
    ("deep_ae.py", ["--sizes", "100", "10"], "784 pixels, not 100"),
    ("cluster_codes.py", ["--points", "5"], "needs at least 10 points"),
    ("interpolation.py", ["--test-limit", "20"], "two test digits of each class"),
    ("dae_mnist.py", ["--resume", "--overwrite"], "not allowed with argument"),
    ("conv_dae_mnist.py", ["--test-limit", "0"], "expected a number ≥ 1"),
    ("quickstart.py", ["--steps", "0"], "expected a number ≥ 1"),
    ("pooling_ae.py", ["--sigma", "-1"], "expected a number ≥ 0"),
    ("dae_vector_field.py", ["--curve", "helix"], "invalid choice: 'helix'"),
    ("dae_vector_field.py", ["--points", "0"], "expected a number ≥ 1"),
    ("segmentation.py", ["--limit", "0"], "expected a number ≥ 1"),
    ("manifold_walk.py", ["--digit", "12"], "invalid choice: 12"),
    ("manifold_walk.py", ["--pull", "-1"], "expected a number ≥ 0"),
]


@host_only
@pytest.mark.parametrize("script, options, words", BAD_OPTIONS, ids=[f"{s} {' '.join(o)}" for s, o, _ in BAD_OPTIONS])
def test_a_bad_example_option_is_a_usage_error(tmp_path, script, options, words):
    out = [] if script == "quickstart.py" else ["--out", str(tmp_path)]  # quickstart writes nothing
    command = [sys.executable, str(ROOT / "examples" / script), *options, *out]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "usage:" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert re.search(words, result.stderr), result.stderr[-1000:]
