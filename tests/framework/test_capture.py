"""Capturing a training step as a CUDA graph (minidl/capture.py), on a GPU or on the CuPy stand-in:
while a stream captures, CUDA (and the stand-in) records operations without running them, and
Graph.launch runs the recording again on the same memory. So a replay can equal an eager step
only if everything that changes between steps lives in device memory. Tests of the stand-in
itself call standin(), which skips on a GPU; the others run wherever cuda is."""

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_cuda, quick_experiment, standin

import minidl as md
from minidl import backend
from minidl.capture import CapturedStep, CaptureError
from minidl.experiments import corruptions
from minidl.experiments.models import ModelC, ModelD
from minidl.experiments.options import ExperimentError
from minidl.experiments.training import train_on_batch
from minidl.nn import functional as F

ROOT = Path(__file__).resolve().parents[2]


def _denoising_loss(model, noise, x, rng):
    loss = F.mse_loss if isinstance(model, ModelD) else F.binary_cross_entropy_with_logits  # D ends in a sigmoid
    return loss(model(noise(x, rng)), x)


def _squared_distance(p, x, *unused):
    return ((p - x) ** 2).sum()


def _graph_launches() -> int | None:
    """Graph launches so far: counted by the stand-in, None on a GPU."""
    counters = getattr(backend.cupy(), "counters", None)
    return None if counters is None else counters.graph_launches


def _model_step(model_class, seed: int):
    """The model with Adam, and train_step(x, rng) -> loss of a Gaussian-noise DAE step."""
    md.manual_seed(seed)
    model = model_class(device="cuda")
    optimizer = md.optim.Adam(model.parameters(), lr=1e-3)
    loss = functools.partial(_denoising_loss, model, corruptions.corruption("gaussian:0.5"))
    return model, optimizer, functools.partial(train_on_batch, loss, optimizer)


@needs_cuda
def test_the_standin_records_while_capturing_and_replays_on_the_same_memory():
    cupy = standin()
    a, acc = cupy.ones(3), cupy.zeros(3)
    rng = cupy.random.default_rng(0)
    stream = cupy.cuda.Stream()
    with stream:
        stream.begin_capture()
        b = a * 2  # fresh: computed for its shape only
        acc += b  # in place: not done while capturing
        r = rng.random(3)  # the generator does not advance
        with pytest.raises(RuntimeError, match="StreamCaptureUnsupported"):
            cupy.asarray(np.ones(3))  # refused by the stand-in, the capture goes on
        graph = stream.end_capture()
    assert np.isnan(b.get()).all() and (acc.get() == 0).all() and np.isnan(r.get()).all()
    with stream:  # a host read is refused and invalidates the capture: ending it ends it, and fails
        stream.begin_capture()
        with pytest.raises(RuntimeError, match="StreamCaptureUnsupported"):
            (a * 3).get()
        with pytest.raises(RuntimeError, match="StreamCaptureInvalidated: the capture was invalidated by ndarray.get"):
            stream.end_capture()
        assert not stream.is_capturing()
    first = cupy.random.default_rng(0).random(6).get()  # the draws of replays 1 and 2, made eagerly
    for k in (1, 2):
        graph.launch(stream)
        np.testing.assert_array_equal(acc.get(), np.full(3, 2.0 * k))
        np.testing.assert_array_equal(r.get(), first[3 * (k - 1) : 3 * k])  # a fresh draw per replay
    with pytest.raises(RuntimeError, match="default"):
        cupy.cuda.Stream.null.begin_capture()


@needs_cuda
def test_work_on_another_stream_during_a_capture_is_an_error():
    cupy = standin()
    stream = cupy.cuda.Stream()
    stream.begin_capture()  # capturing, but the null stream is current
    try:
        with pytest.raises(RuntimeError, match="StreamCaptureImplicit"):
            cupy.ones(3) + 1
    finally:
        with pytest.raises(RuntimeError, match="StreamCaptureInvalidated"):
            stream.end_capture()


@needs_cuda
@pytest.mark.parametrize("model_class", [ModelC, ModelD])
def test_a_replayed_step_equals_the_eager_one_step_for_step(model_class):
    """Two copies of a model from one seed, one trained eagerly and one through CapturedStep, on
    the same batches and noise: 8 steps, including short batches (a graph of their own). Model D's
    Linear layers run on kernels/matmul.cu: CuPy refuses cuBLAS (its @) while a stream captures."""
    cupy = backend.cupy()
    images = np.random.default_rng(3).random((8, 1, 28, 28)).astype(np.float32)
    sizes = [8, 8, 8, 5, 8, 5, 8, 5]

    def train(capture: bool):  # one after the other: dropout draws from the device's seeded generator
        model, optimizer, step = _model_step(model_class, seed=1)
        step, rng = (CapturedStep(step, optimizer) if capture else step), cupy.random.default_rng(9)
        return model, optimizer, [step(md.tensor(images[:size], device="cuda"), rng).item() for size in sizes]

    eager_model, _, expect = train(capture=False)
    before = _graph_launches()
    model, optimizer, got = train(capture=True)
    assert got == expect
    if before is not None:  # size 8: a warm-up, a recording (launched once), 3 replays; size 5: warm-up, recording,
        assert _graph_launches() - before == 6  # replay
    for expect, got in zip(eager_model.parameters(), model.parameters()):  # weights, the last step's gradients
        np.testing.assert_array_equal(got.numpy(), expect.numpy())
        np.testing.assert_array_equal(got.grad.numpy(), expect.grad.numpy())
    states = optimizer.state_dict()["state"]
    assert {s["step"] for s in states.values()} == {len(sizes)}


class HostCountAdam(md.optim.Adam):
    """Adam counting its steps on the host, as it once did: t reaches the device as a number in
    the launch, which a graph records once."""

    def begin_step(self, stepped):
        self.t = getattr(self, "t", 0) + 1
        _, schedule = self.counters_on("cuda")
        beta1, beta2 = self.defaults["betas"]
        schedule[:, 0] = self.defaults["lr"] / (1 - beta1**self.t)
        schedule[:, 1] = (1 - beta2**self.t) ** 0.5


@needs_cuda
@pytest.mark.parametrize(
    "optimizer_class, replay_equals_eager",
    [(md.optim.Adam, True), (functools.partial(md.optim.SGD, momentum=0.9), True), (HostCountAdam, False)],
    ids=["Adam", "SGD with momentum", "HostCountAdam"],
)
def test_replay_equals_eager_only_when_the_step_count_lives_on_the_device(optimizer_class, replay_equals_eager):
    """The comparison above can fail: with t counted on the host, replays repeat step 2's bias
    corrections and drift from the eager run."""
    target = md.tensor(np.arange(4.0), device="cuda")
    runs = []
    for captured in (False, True):
        p = md.nn.Parameter(np.zeros(4, np.float32), device="cuda")
        optimizer = optimizer_class([p], lr=0.5)
        step = functools.partial(train_on_batch, functools.partial(_squared_distance, p), optimizer)
        step = CapturedStep(step, optimizer) if captured else step
        for _ in range(5):
            step(target)
        runs.append(p.numpy())
    assert np.array_equal(runs[0], runs[1]) == replay_equals_eager


class Rebinding(md.optim.SGD):
    """An optimiser whose step makes new parameter arrays (minidl's own update in place)."""

    def step(self):
        for p in self.params:
            p.data = p.data - self.defaults["lr"] * p.grad.data


@needs_cuda
def test_capture_refuses_what_it_cannot_replay():
    p = md.nn.Parameter(np.zeros(4, np.float32), device="cuda")
    distance = functools.partial(_squared_distance, p)
    sgd = Rebinding([p], lr=0.1)
    step = CapturedStep(functools.partial(train_on_batch, distance, sgd), sgd)
    x = md.ones(4, device="cuda")
    step(x)  # the warm-up runs eagerly
    before = p.numpy()
    with pytest.raises(CaptureError, match=r"replaced parameters \[0\] by new arrays.*in place \(Adam\)"):
        step(x)
    np.testing.assert_array_equal(p.numpy(), before)  # not the NaN of a recording that ran nothing
    adam = md.optim.Adam([p])
    step = CapturedStep(functools.partial(train_on_batch, distance, adam), adam)
    step(x, "first")
    with pytest.raises(CaptureError, match="not tensors changed"):
        step(x, "second")
    with pytest.raises(CaptureError, match="input 0 is on cpu"):
        step(md.ones(4, device="cpu"), "first")
    step(x, "first")  # recorded
    adam.load_state_dict(adam.state_dict())  # new moment and counter arrays
    with pytest.raises(CaptureError, match="other arrays than when the step was recorded"):
        step(x, "first")

    def synced_loss(x):  # reads a value back to the host
        return distance(x) * x.sum().item()

    synced = CapturedStep(functools.partial(train_on_batch, synced_loss, adam), adam)
    synced(x)
    with pytest.raises(CaptureError, match=r"(?s)could not be recorded.*StreamCaptureUnsupported.*nothing read back"):
        synced(x)
    with pytest.raises(CaptureError, match="must be on cuda, they are on \\['cpu'\\]"):
        CapturedStep(lambda: None, md.optim.Adam([md.nn.Parameter(np.zeros(2, np.float32), device="cpu")]))


@needs_cuda
def test_fit_with_capture_trains_an_epoch_as_without(tmp_path):
    """One epoch of 11 images in batches of 2 (a warm-up, a recording, 3 replays, a short batch
    run eagerly) with and without --capture: equal losses and weights, as within an epoch both
    draw from one generator. A second epoch records the short batch and replays the rest."""
    images = np.random.default_rng(5).random((11, 1, 28, 28)).astype(np.float32)
    results = []
    for capture, epochs in ((False, 1), (True, 1), (True, 2)):
        exp = quick_experiment(tmp_path / f"{capture}{epochs}", "cuda", batch_size=2, capture=capture)
        model = ModelC(device="cuda")
        noise = corruptions.corruption("gaussian:0.5")
        before = _graph_launches()
        step = functools.partial(_denoising_loss, model, noise)
        history, _ = exp.fit("c", model, md.optim.Adam(model.parameters()), step, [images], epochs=epochs)
        launches = None if before is None else _graph_launches() - before
        results.append((history, [p.numpy() for p in model.parameters()], launches))
    (eager_history, eager, _), (history, captured, launches), (two_epochs, _, launches_in_two) = results
    assert history == eager_history and launches in (4, None)
    for expect, got in zip(eager, captured):
        np.testing.assert_array_equal(got, expect)
    assert two_epochs[0] == history[0] and np.isfinite(two_epochs[1]) and launches_in_two in (4 + 6, None)


def test_capture_needs_cuda(tmp_path):
    if md.cuda_available() and backend.resolve_device() == "cuda":
        pytest.skip("this leg runs on cuda; the refusal is checked on cpu and emu")
    with pytest.raises(ExperimentError, match="--capture records CUDA graphs: it needs --device cuda, not"):
        quick_experiment(tmp_path, backend.resolve_device(), capture=True)


@needs_cuda
def test_a_classifier_step_records_though_cross_entropy_checks_its_labels():
    """cross_entropy reads its labels' range back to the host, except while a step is recorded; its
    Linear layer runs on our gemm kernel, as cuBLAS cannot be called while a stream captures."""
    model = md.nn.Sequential(md.nn.Linear(6, 3, device="cuda"))
    adam = md.optim.Adam(model.parameters())
    step = CapturedStep(functools.partial(train_on_batch, lambda x, y: F.cross_entropy(model(x), y), adam), adam)
    x = md.tensor(np.random.default_rng(0).random((5, 6)), device="cuda", dtype=np.float32)
    y = md.tensor(np.array([0, 2, 1, 1, 0]), device="cuda")
    losses = [step(x, y).item() for _ in range(4)]
    assert losses[3] < losses[0]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.cross_entropy(model(x), md.tensor(np.array([0, 3, 1, 1, 0]), device="cuda"))


@needs_cuda
def test_the_main_job_trains_both_models_with_capture(tmp_path):
    """`python examples/conv_dae_mnist.py --device cuda --capture`, as typed: Model C and then Model D
    (Linear layers) are captured; before matmul had a kernel, real CuPy refused Model D's second step."""
    command = [sys.executable, str(ROOT / "examples" / "conv_dae_mnist.py"), "--device", "cuda", "--capture",
               "--epochs", "1", "--limit", "48", "--test-limit", "32", "--batch-size", "16", "--out", str(tmp_path),
               "--json", str(tmp_path / "metrics.json")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Model C (conv)" in result.stdout and "Model D (dense)" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert np.isfinite(metrics["test_mse"]) and np.isfinite(metrics["psnr"]), metrics
