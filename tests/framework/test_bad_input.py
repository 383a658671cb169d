"""The catalogue of bad input: every probe is a call that must fail at once with a clear message
(the exception type and words that say what was expected), never a traceback from deep inside
and never a silently wrong result. A new op, layer or example option joins the tables here."""

import os
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import KERNEL_DEVICES, host_only
from hypothesis import example, given, settings
from hypothesis import strategies as st

import minidl as md
from minidl import nn, serialization
from minidl.data import batches
from minidl.experiments.clustering import cluster_accuracy, kmeans
from minidl.experiments.corruptions import corruption, masking
from minidl.nn import functional as F

ROOT = Path(__file__).resolve().parents[2]


def x4(*shape, dtype=md.float32):
    return md.zeros(*(shape or (2, 1, 4, 4)), dtype=dtype)


def _twice(p):
    return [p, p]


def _without_weight(layer):
    layer.weight = None  # PyTorch takes it too; the forward then names what is missing
    return layer


def _add_to_weight(layer):
    layer.weight += 1  # in place on a leaf that requires grad, outside no_grad: refused, as in PyTorch


# (what is probed, the call, the exception, words its message must hold)
PROBES = [
    ("conv2d stride 0", lambda: F.conv2d(x4(), x4(1, 1, 3, 3), stride=0), ValueError, "stride must be ≥ 1"),
    ("conv2d stride a float", lambda: F.conv2d(x4(), x4(1, 1, 3, 3), stride=1.5), TypeError, "stride must be an int"),
    (
        "conv2d on a NumPy array",
        lambda: F.conv2d(np.zeros((1, 1, 4, 4)), x4(1, 1, 3, 3)),
        TypeError,
        "must be a Tensor",
    ),
    ("conv2d weight of 2 dims", lambda: F.conv2d(x4(), md.zeros(3, 3)), ValueError, "weight must have 4 dims"),
    ("conv2d mixed dtypes", lambda: F.conv2d(x4(), x4(1, 1, 3, 3, dtype=md.float64)), TypeError, "share a dtype"),
    (
        "conv_transpose2d output_padding ≥ stride",
        lambda: F.conv_transpose2d(x4(), x4(1, 1, 3, 3), stride=2, output_padding=2),
        ValueError,
        "smaller than stride",
    ),  # fmt: skip
    ("max_pool2d kernel 0", lambda: F.max_pool2d(x4(), 0), ValueError, "kernel_size must be ≥ 1"),
    ("avg_pool2d padding over half", lambda: F.avg_pool2d(x4(), 2, 1, 2), ValueError, "half the kernel"),
    (
        "upsample bilinear of integers",
        lambda: F.upsample(md.tensor(np.ones((1, 1, 2, 2), np.int64)), 2, "bilinear"),
        TypeError,
        "needs a float tensor",
    ),  # fmt: skip
    ("upsample scale 0", lambda: F.upsample(x4(), 0), ValueError, "must be positive"),
    ("upsample scale a string", lambda: F.upsample(x4(), "2"), TypeError, "number or a pair of numbers"),
    (
        "linear float64 input to float32",
        lambda: nn.Linear(4, 2)(md.zeros(3, 4, dtype=md.float64)),
        TypeError,
        "dtypes float64, float32",
    ),  # fmt: skip
    ("matmul mixed dtypes", lambda: md.zeros(2, 2) @ md.zeros(2, 2, dtype=md.float64), TypeError, "dtypes"),
    (
        "mse_loss float64 target",
        lambda: F.mse_loss(md.zeros(3), md.zeros(3, dtype=md.float64)),
        TypeError,
        "float32 and target float64",
    ),  # fmt: skip
    ("mse_loss of integers", lambda: F.mse_loss(md.tensor([1, 2]), md.tensor([1, 2])), TypeError, "float tensor"),
    ("mse_loss of an empty batch", lambda: F.mse_loss(md.zeros(0, 3), md.zeros(0, 3)), ValueError, "is empty"),
    (
        "fused loss of an empty batch",
        lambda: F.binary_cross_entropy_with_logits(md.zeros(0), md.zeros(0)),
        ValueError,
        "is empty",
    ),  # fmt: skip
    (
        "cross_entropy of an empty batch",
        lambda: F.cross_entropy(md.zeros(0, 3), md.tensor(np.zeros(0, np.int64))),
        ValueError,
        "N ≥ 1",
    ),  # fmt: skip
    ("dropout p as a string", lambda: F.dropout(md.zeros(3), "0.5"), TypeError, "finite number"),
    ("Dropout p above 1", lambda: nn.Dropout(1.5), ValueError, r"lie in \[0, 1\]"),
    ("Linear with 0 inputs", lambda: nn.Linear(0, 5), ValueError, "in_features must be ≥ 1"),
    ("Conv2d with -1 channels", lambda: nn.Conv2d(1, -1, 3), ValueError, "out_channels must be ≥ 1"),
    ("SGD lr as a string", lambda: md.optim.SGD([nn.Parameter(np.zeros(2))], lr="0.1"), TypeError, "lr must be"),
    (
        "Adam beta of 1",
        lambda: md.optim.Adam([nn.Parameter(np.zeros(2))], betas=(0.9, 1.0)),
        ValueError,
        "smaller than 1",
    ),  # fmt: skip
    (
        "a parameter twice in one optimiser",
        lambda: md.optim.SGD(_twice(nn.Parameter(np.zeros(2))), lr=0.1),
        ValueError,
        "stepped twice",
    ),  # fmt: skip
    ("save None", lambda: md.save({"a": None}, "never-written.npz"), TypeError, "is None"),
    ("save a Python object", lambda: md.save({"a": [object()]}, "never-written.npz"), TypeError, "pickling"),
    ("an unknown device", lambda: md.zeros(2, device="gpu"), ValueError, "expected one of cpu, cuda, emu"),
    ("save a float key", lambda: md.save({1.5: np.zeros(1)}, "never-written.npz"), TypeError, "strings or ints"),
    ("save a key that reads as an int", lambda: md.save({"#1": 1}, "never-written.npz"), ValueError, "start with '#'"),
    ("kmeans, more clusters than points", lambda: kmeans(np.zeros((5, 2)), 10), ValueError, r"number of points \(5\)"),
    ("permute(0, 3) of 2 dims", lambda: md.zeros(2, 3).permute(0, 3), IndexError, r"range of \[-2, 1\], but got 3"),
    ("unsqueeze(5) of 2 dims", lambda: md.zeros(1, 3).unsqueeze(5), IndexError, r"range of \[-3, 2\], but got 5"),
    ("squeeze(2) of (1, 3)", lambda: md.zeros(1, 3).squeeze(2), IndexError, "but got 2"),  # it removed dim 0
    ("flatten(start_dim=4)", lambda: md.zeros(2, 3).flatten(start_dim=4), IndexError, "start_dim out of range"),
    ("flatten(2, 1)", lambda: md.zeros(2, 3, 4).flatten(2, 1), ValueError, "start_dim 2 comes after end_dim 1"),
    ("cat(dim=5)", lambda: md.cat([md.zeros(2), md.zeros(2)], dim=5), IndexError, "but got 5"),
    ("stack(dim=7)", lambda: md.stack([md.zeros(2), md.zeros(2)], dim=7), IndexError, "but got 7"),
    ("sum(dim=True)", lambda: md.zeros(2, 3).sum(dim=True), TypeError, "dim must be an integer, got True"),
    ("log_softmax(dim=None)", lambda: F.log_softmax(md.zeros(2, 3), dim=None), TypeError, "dim must be an integer"),
    ("max over two dims", lambda: md.zeros(2, 3).max(dim=(0, 1)), TypeError, "amax takes several"),
    ("the truth of two elements", lambda: bool(md.tensor([1.0, 2.0]) > 5), RuntimeError, "ambiguous"),
    ("len() of a 0-d tensor", lambda: len(md.tensor(1.0)), TypeError, r"len\(\) of a 0-d tensor"),
    ("a tensor of None", lambda: md.tensor(None), TypeError, "got None"),
    ("a tensor of strings", lambda: md.tensor(["a"]), TypeError, "holds numbers or booleans"),
    (
        "a weight replaced by a tensor",
        lambda: setattr(nn.Linear(3, 4), "weight", md.zeros(4, 3)),
        TypeError,
        "Linear.weight is a parameter: assign a Parameter",
    ),  # fmt: skip
    ("a weight += 1", lambda: _add_to_weight(nn.Linear(3, 4)), RuntimeError, "leaf tensor that requires grad"),
    (
        "requires_grad_(False) of a computed tensor",
        lambda: (nn.Parameter(np.ones(2)) * 2).requires_grad_(False),
        RuntimeError,
        "changes only leaf tensors",
    ),  # fmt: skip
    ("train('False')", lambda: nn.Linear(2, 2).train("False"), TypeError, "train's mode must be True or False"),
    ("relu of a NumPy array", lambda: F.relu(np.ones(3)), TypeError, "ReLU takes tensors, got ndarray"),
    ("dropout(training='no')", lambda: F.dropout(md.ones(3), 0.5, training="no"), TypeError, "True or False"),
    ("leaky_relu slope None", lambda: F.leaky_relu(md.ones(3), None), TypeError, "negative_slope must be a finite"),
    ("pad value None", lambda: md.pad(md.ones(3), (1, 1), value=None), TypeError, "pad's value must be a number"),
    ("randn of int64", lambda: md.randn(3, dtype=md.int64), TypeError, "would truncate them"),
    (
        "linear of int8",
        lambda: F.linear(md.tensor(np.ones((2, 3), np.int8)), md.tensor(np.ones((4, 3), np.int8))),
        TypeError,
        "integers would wrap around",
    ),  # fmt: skip
    (
        "conv2d of int8",
        lambda: F.conv2d(md.tensor(np.ones((1, 1, 4, 4), np.int8)), md.tensor(np.ones((1, 1, 3, 3), np.int8))),
        TypeError,
        "integers would wrap around",
    ),  # fmt: skip
    (
        "cross_entropy of integer logits",
        lambda: F.cross_entropy(md.tensor(np.ones((2, 3), np.int64)), md.tensor(np.array([0, 1]))),
        TypeError,
        "logits needs floating point",
    ),  # fmt: skip
    ("iterating a 0-d tensor", lambda: list(md.tensor(3.0)), TypeError, "iteration over a 0-d tensor"),  # was []
    ("a list @ operand", lambda: md.ones(3, 2) @ [[1.0], [1.0]], TypeError, "unsupported operand type"),
    ("@ a list operand", lambda: [[1.0, 1.0, 1.0]] @ md.ones(3, 2), TypeError, "unsupported operand type"),
    ("matmul of a list", lambda: md.matmul(md.ones(3, 2), [[1.0], [1.0]]), TypeError, "other must be a Tensor"),
    ("reshape(2.0, 3.0)", lambda: md.ones(6).reshape(2.0, 3.0), TypeError, "must be an integer, got 2.0"),
    ("reshape(-2, -3)", lambda: md.ones(6).reshape(-2, -3), ValueError, "must be ≥ -1, got -2"),
    ("batch_size=2.5", lambda: batches(md.ones(4, 2), batch_size=2.5), TypeError, "got 2.5"),
    ("batch_size=True", lambda: batches(md.ones(4, 2), batch_size=True), TypeError, "got True"),  # was 1
    ("max_pool2d of booleans", lambda: F.max_pool2d(x4(dtype=np.bool_), 2), TypeError, "input holds booleans"),
    ("avg_pool2d of booleans", lambda: F.avg_pool2d(x4(dtype=np.bool_), 2), TypeError, "input holds booleans"),
    ("arange step 0", lambda: md.arange(0, 10, 0), ValueError, "step must be nonzero"),
    ("arange against its step", lambda: md.arange(0, 10, -1), ValueError, "lies behind start"),  # was empty
    ("arange to 'a'", lambda: md.arange("a"), TypeError, "arange's end must be a finite number"),
    ("manual_seed(0.5)", lambda: md.manual_seed(0.5), TypeError, "seed must be an integer"),
    ("manual_seed(2**64)", lambda: md.manual_seed(2**64), ValueError, "seed must be < 2"),
    ("clamp min='a'", lambda: md.clamp(md.ones(2), min="a"), TypeError, "clamp's min must be a number, a Tensor"),
    ("clamp of a list", lambda: md.clamp([1.0], min=md.ones(1)), TypeError, "input must be a Tensor, got list"),
    (
        "gaussian of uint8",
        lambda: corruption("gaussian:0.5")(md.tensor(np.ones((2, 4), np.uint8)), None),
        TypeError,
        "x must be a float array or tensor in \\[0, 1\\], got uint8",
    ),  # fmt: skip
    ("masking of uint8", lambda: masking(np.ones((2, 4), np.uint8), None, 0.5), TypeError, "got uint8"),
    (
        "linear without weight",
        lambda: _without_weight(nn.Linear(2, 2))(md.ones(1, 2)),
        TypeError,
        "linear: weight must be a Tensor, got NoneType",
    ),  # fmt: skip
    (
        "cluster_accuracy of a label -1",
        lambda: cluster_accuracy(np.array([0, -1]), np.array([0, 1])),
        ValueError,
        "labels must be a non-empty array of whole numbers ≥ 0",
    ),  # fmt: skip
]


@pytest.mark.parametrize("probe, call, error, words", PROBES, ids=[p[0] for p in PROBES])
def test_bad_input_is_a_clear_error_at_the_call(probe, call, error, words):
    with pytest.raises(error, match=words):
        call()
    assert not Path("never-written.npz").exists()


# ------------------------------------------------------- right answers, not errors
def test_numpy_integers_are_integers():
    x = md.ones(1, 1, 4, 4)
    assert F.conv2d(x, md.ones(1, 1, 3, 3), stride=np.int64(2), padding=np.int32(1)).shape == (1, 1, 2, 2)
    assert F.max_pool2d(x, np.int64(2)).shape == (1, 1, 2, 2)
    assert F.upsample(x, np.int64(2)).shape == (1, 1, 8, 8)


def test_negative_seeds_are_pytorchs_and_iteration_gives_rows():
    """manual_seed(-1) broke the next draw (NumPy's 'expected non-negative integer'); PyTorch takes seeds
    in [-2**63, 2**64), a negative one counted back from 2**64."""
    md.manual_seed(-1)
    drawn = md.randn(3).numpy()
    md.manual_seed(2**64 - 1)
    np.testing.assert_array_equal(md.randn(3).numpy(), drawn)
    rows = list(md.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert [r.tolist() for r in rows] == [[1.0, 2.0], [3.0, 4.0]]


def test_a_module_used_twice_is_trained_once():
    """PyTorch lists a shared parameter once; SGD used to apply twice the step."""
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2 and list(model.state_dict()) == ["0.weight", "0.bias"]
    before = lin.bias.numpy().copy()
    opt = md.optim.SGD(model.parameters(), lr=0.1)
    lin.bias.grad = md.ones(2)
    opt.step()
    np.testing.assert_allclose(lin.bias.numpy(), before - 0.1, rtol=1e-6)


def test_a_gradient_of_another_shape_or_dtype_is_refused_when_assigned():
    """It used to broadcast silently in the optimiser (and abort the process under the emulator)."""
    p = nn.Parameter(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"a .grad must match its tensor: float32 \(3,\) on \w+, got float32 \(1,\)"):
        p.grad = md.ones(1)
    with pytest.raises(ValueError, match="got float64"):
        p.grad = md.ones(3, dtype=md.float64)
    with pytest.raises(TypeError, match="a .grad is a Tensor or None, got ndarray"):
        p.grad = np.ones(3, np.float32)
    assert p.grad is None
    opt = md.optim.Adam([p])
    p.grad = md.ones(3)
    p.data = np.zeros(4, np.float32)  # the data replaced behind the optimiser's back: it still refuses
    with pytest.raises(ValueError, match=r"parameter 0 is float32 \(4,\) on \w+, its gradient float32 \(3,\)"):
        opt.step()


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_adam_resumes_from_non_contiguous_arrays(device):
    """Loaded state may be any view; it used to reach the in-place kernel as it came (an abort on emu)."""
    w = nn.Parameter(np.arange(6.0).reshape(3, 2).T.copy(), device=device)
    opt = md.optim.Adam([w])
    moments = np.arange(6.0).reshape(3, 2).T  # a transposed, non-contiguous view
    opt.load_state_dict({"state": {0: {"step": 1, "exp_avg": moments, "exp_avg_sq": moments}},
                         "param_groups": [opt.defaults]})  # fmt: skip
    w.grad = md.ones(2, 3, dtype=md.float64, device=device)
    opt.step()
    cpu = md.optim.Adam([reference := nn.Parameter(np.arange(6.0).reshape(3, 2).T.copy(), device="cpu")])
    cpu.load_state_dict({"state": {0: {"step": 1, "exp_avg": moments, "exp_avg_sq": moments}},
                         "param_groups": [cpu.defaults]})  # fmt: skip
    reference.grad = md.ones(2, 3, dtype=md.float64, device="cpu")
    cpu.step()
    np.testing.assert_allclose(w.numpy(), reference.numpy(), rtol=1e-12)


def test_max_pool_never_sends_the_gradient_into_the_padding():
    """A window of only -inf: the first real pixel gets the gradient, as in PyTorch."""
    x = md.tensor(np.full((1, 1, 2, 2), -np.inf), requires_grad=True)
    F.max_pool2d(x, 3, 1, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[4.0, 0.0], [0.0, 0.0]]]])
    ints = md.tensor(np.arange(16).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(F.max_pool2d(ints, 3, 2, 1).numpy(), [[[[5, 7], [13, 15]]]])


def test_gradients_of_a_promoting_op_come_back_in_the_input_dtype():
    a = md.tensor([1.0, 2.0], requires_grad=True)  # float32
    (a * md.tensor([2.0, 3.0], dtype=md.float64)).sum().backward()  # the product promotes, as in PyTorch
    assert a.grad.dtype == np.float32


# ------------------------------------------------------------- the engine's semantics
def test_grad_mode_belongs_to_each_thread():
    """A no_grad() block in one thread used to drop another thread's graph (3 instead of 7)."""

    inside, done = threading.Event(), threading.Event()

    def idle_without_grad():
        with md.no_grad():
            inside.set()
            done.wait(10)

    other = threading.Thread(target=idle_without_grad)
    other.start()
    inside.wait(10)
    try:
        x = md.tensor(2.0, requires_grad=True)
        (x * x + 3 * x).backward()  # d/dx = 2x + 3 = 7
    finally:
        done.set()
        other.join()
    assert x.grad.item() == 7.0


def _stepped(device, optimizer_class, **options):
    """A parameter on `device` with a gradient, and its optimiser."""
    w = nn.Parameter(np.array([1.0, 2.0], np.float32), device=device)
    optimizer = optimizer_class([w], **options)
    w.grad = md.tensor([0.5, -1.0], device=device)
    return w, optimizer


DEVICES = ["cpu", *KERNEL_DEVICES]
OPTIMISERS = [(md.optim.SGD, {"lr": 0.1, "momentum": 0.9}), (md.optim.Adam, {"lr": 0.1})]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer_class, options", OPTIMISERS, ids=["SGD", "Adam"])
def test_a_step_under_a_saved_graph_is_refused_on_every_device(device, optimizer_class, options):
    """On emu the Adam kernel updated w in place under the graph (x.grad [-7e-6, 1]); cpu rebound w
    and gave [1, 2]: now every device refuses, as PyTorch does, naming the op."""
    w, optimizer = _stepped(device, optimizer_class, **options)
    x = md.tensor([3.0, 4.0], requires_grad=True, device=device)
    loss = (w * x).sum()
    shifted = (w + 1).sum()  # Add needs no values for its gradient: it may still run
    optimizer.step()
    with pytest.raises(RuntimeError, match=r"Mul needs for its gradient was changed in place.*version 1.*version 0"):
        loss.backward()
    shifted.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.5, 0.0])  # the gradient set above plus 1 (no reset)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer_class, options", OPTIMISERS, ids=["SGD", "Adam"])
def test_a_step_is_seen_through_detach_and_an_earlier_state_dict_on_every_device(device, optimizer_class, options):
    """cpu rebound p.data (w0 and a state_dict kept the old values), the kernels wrote in place: now every
    device writes in place, as PyTorch."""
    w, optimizer = _stepped(device, optimizer_class, **options)
    layer = nn.Linear(2, 1, device=device)
    layer.weight = nn.Parameter(w.numpy().reshape(1, 2), device=device)
    optimizer = optimizer_class([w, layer.weight], **options)
    w.grad, layer.weight.grad = md.tensor([0.5, -1.0], device=device), md.ones(1, 2, device=device)
    w0, best = w.detach(), layer.state_dict()
    before = w.numpy().copy()
    optimizer.step()
    assert not np.array_equal(w.numpy(), before)
    np.testing.assert_array_equal(w0.numpy(), w.numpy())
    np.testing.assert_array_equal(best["weight"].numpy(), layer.weight.numpy())


MOVES = [("emu", "cpu"), ("cpu", "emu"), ("cuda", "cpu"), ("cpu", "cuda"), ("emu", "cuda")]


@pytest.mark.parametrize("first, then", MOVES, ids=[f"{a} to {b}" for a, b in MOVES])
def test_adam_keeps_its_step_count_and_moments_when_the_model_moves(first, then):
    """Adam moved emu -> cpu restarted its step count: 3 steps + 3 steps differed from 6 by 2.7e-2."""
    if "cuda" in (first, then) and not md.cuda_available():
        pytest.skip("no cuda device: MINIDL_DEVICE=cuda pytest runs this on the CuPy stand-in")
    if "emu" in (first, then) and shutil.which("g++") is None:
        pytest.skip("no C++ compiler (g++): the emulator cannot build kernels")
    grads = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)

    def train(devices):
        layer = nn.Linear(5, 1, bias=False, device="cpu")
        layer.weight.data[...] = 0.5
        optimizer = md.optim.Adam(layer.parameters(), lr=0.1)
        for k, device in enumerate(devices):
            layer.to(device)
            layer.weight.grad = md.tensor(grads[k : k + 1], device=device)
            optimizer.step()
        return layer.weight.numpy(), optimizer.state_dict()["state"][0]["step"]

    moved, steps = train([first] * 3 + [then] * 3)
    straight, _ = train(["cpu"] * 6)
    assert steps == 6
    np.testing.assert_allclose(moved, straight, rtol=1e-4, atol=1e-6)  # kernel and array path: float32 rounding


@pytest.mark.parametrize("device", DEVICES)
def test_a_read_only_parameter_array_is_still_stepped(device):
    """emu's Adam dropped the update of a parameter whose array was read-only."""
    w, optimizer = _stepped(device, md.optim.Adam, lr=0.1)
    if device != "cuda":
        w.data.flags.writeable = False
    optimizer.step()
    np.testing.assert_allclose(w.numpy(), [0.9, 2.1], rtol=1e-6)


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])
def test_to_another_device_is_a_copy(device):
    """x.to('emu') shared x's NumPy array: a write to one showed in the other."""
    x = md.tensor([1.0, 2.0], device="cpu")
    moved = x.to(device)
    x.data[0] = 5.0
    assert moved.numpy()[0] == 1.0


def test_load_state_dict_writes_into_the_parameters(tmp_path):
    layer = nn.Linear(2, 2)
    weights = layer.weight.data
    saved = {k: v.numpy() + 1 for k, v in layer.state_dict().items()}
    layer.load_state_dict(saved)
    assert layer.weight.data is weights and np.array_equal(layer.weight.numpy(), saved["weight"])
    layer.weight.data += 1  # the source is untouched by what the model does later
    assert not np.array_equal(layer.weight.numpy(), saved["weight"])


@pytest.mark.parametrize("device", DEVICES)
def test_relu_of_infinities_and_nan_is_pytorchs(device):
    """x * (x > 0) made relu(-inf) NaN."""
    x = md.tensor([-np.inf, np.inf, np.nan, -1.0, 2.0], device=device)
    np.testing.assert_array_equal(F.relu(x).numpy(), [0.0, np.inf, np.nan, 0.0, 2.0])


def test_a_kept_loss_keeps_no_activations():
    """A released node kept its inputs, so each kept loss held its step's activations (770 kB a step)."""
    import gc
    import tracemalloc

    layer = nn.Linear(1000, 1000, device="cpu")
    optimizer = md.optim.SGD(layer.parameters(), lr=1e-3)
    x, target = md.randn(64, 1000, device="cpu"), md.randn(64, 1000, device="cpu")
    kept = []

    def steps(count):
        for _ in range(count):
            loss = ((layer(x) - target) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            kept.append(loss)

    tracemalloc.start()
    try:
        steps(5)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        steps(100)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000, f"100 kept losses hold {grown / 1e6:.1f} MB"


def test_an_array_operand_gets_no_gradient_meant_for_another():
    """ndarray @ w sent the array's gradient (4, 3) to w (3, 2): the engine paired gradients and inputs
    by position among the tensors only."""
    w = md.tensor(np.ones((3, 2)), requires_grad=True, dtype=md.float64)
    (np.ones((4, 3)) @ w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 2), 4.0))


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool_propagates_nan_on_every_device(device):
    """A window holding NaN gave 1 on cpu and 3 on emu; PyTorch gives NaN (and its index)."""
    x = md.tensor(np.array([[[[1.0, np.nan], [3.0, 2.0]]]]), requires_grad=True, device=device)
    y = F.max_pool2d(x, 2)
    y.backward(md.ones(1, 1, 1, 1, dtype=md.float64, device=device))
    assert np.isnan(y.numpy()).all()
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [0.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool_ties_keep_the_first_zero_with_its_sign(device):
    """-0.0 == 0.0: the first of the tie is the maximum, its value (sign included) and its gradient."""
    for first, second in ((-0.0, 0.0), (0.0, -0.0)):
        x = md.tensor(np.array([[[[first, second], [0.0, 0.0]]]]), requires_grad=True, device=device)
        y = F.max_pool2d(x, 2)
        y.backward(md.ones(1, 1, 1, 1, dtype=md.float64, device=device))
        assert np.signbit(y.numpy()).item() == np.signbit(first)
        np.testing.assert_array_equal(x.grad.numpy().ravel(), [1.0, 0.0, 0.0, 0.0])


def test_numerics_follow_pytorch():
    x = md.tensor([0.0, 2.0], requires_grad=True)
    (x**0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]  # d(x⁰)/dx at 0 was NaN
    assert md.arange(0, 1, 0.25).dtype == np.float32 and md.arange(3).dtype == np.int64
    assert md.tensor([1.0, 2.0, 3.0]).var(correction=5).item() == np.inf  # was -1


def test_the_tensor_protocol_is_pytorchs():
    assert bool(md.tensor([0.0])) is False and bool(md.tensor(0.5) < md.tensor(1.0)) is True
    assert float(md.tensor([2.5])) == 2.5 and int(md.tensor(3.0)) == 3
    assert np.asarray(md.tensor([1.0, 2.0])).dtype == np.float32  # was an object array
    stacked = md.tensor([md.tensor(1.0), md.tensor(2.0)])
    assert stacked.dtype == np.float32 and stacked.tolist() == [1.0, 2.0]
    values, indices = md.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    integers = md.tensor(np.array([1, 2], np.int64))
    assert (md.tensor([1.0, 2.0]) + integers).dtype == np.float32  # NumPy would make float64
    assert (integers + 0.5).dtype == np.float32 and (integers * 2).dtype == np.int64
    assert bool((md.tensor([1.0, 2.0]) > 1.5).any()) and not bool((md.tensor([1.0, 2.0]) > 1.5).all())


# ------------------------------------------------------------------- damaged files
def _saved(tmp_path) -> Path:
    path = tmp_path / "state.npz"
    md.save({"model": {"w": md.ones(3, 4)}, "optimizer": {"state": {}, "step": 3}}, path)
    return path


def test_save_and_load_round_trip_what_save_accepts(tmp_path):
    """Empty dicts (an SGD without momentum) used to vanish, so that resuming raised KeyError."""
    sgd = md.optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1)
    md.save({"opt": sgd.state_dict(), "name": "run", "sizes": [1, 2]}, tmp_path / "s.npz")
    loaded = md.load(tmp_path / "s.npz")
    assert loaded["opt"]["state"] == {} and str(loaded["name"]) == "run" and loaded["sizes"].tolist() == [1, 2]
    md.optim.SGD([nn.Parameter(np.zeros(2))], lr=0.5).load_state_dict(loaded["opt"])


def test_save_gives_back_every_key_as_it_was(tmp_path):
    """np.savez took 'allow_pickle' as its own flag (the entry vanished), 1 and '1' merged, and a list of
    dicts came back as a dict."""
    state = {
        "allow_pickle": np.arange(3),
        "file": np.ones(2),
        1: np.zeros(1),
        "1": np.full(1, 2.0),
        -3: "negative",
        "a": [{}],
        "b": [{"c": [{"d": np.ones(1)}, {}]}, {}],
    }
    md.save(state, tmp_path / "s.npz")
    loaded = md.load(tmp_path / "s.npz")
    assert sorted(loaded, key=repr) == sorted(state, key=repr)
    assert loaded["allow_pickle"].tolist() == [0, 1, 2] and loaded["file"].tolist() == [1, 1]
    assert loaded[1].tolist() == [0] and loaded["1"].tolist() == [2] and str(loaded[-3]) == "negative"
    assert loaded["a"] == [{}] and isinstance(loaded["b"], list) and loaded["b"][1] == {}
    assert loaded["b"][0]["c"][1] == {} and loaded["b"][0]["c"][0]["d"].tolist() == [1]
    adam = md.optim.Adam([nn.Parameter(np.zeros(2))])
    adam.params[0].grad = md.ones(2, dtype=md.float64)
    adam.step()
    md.save(adam.state_dict(), tmp_path / "adam.npz")
    assert list(md.load(tmp_path / "adam.npz")["state"]) == [0]  # an int key, as state_dict() gave it


def test_lists_and_tuples_of_tensors_come_back_as_they_were(tmp_path):
    """A list of tensors came back as one stacked array (and a tuple of dicts as a list)."""
    state = {
        "list": [md.ones(2), md.zeros(3)],  # of two shapes: no longer stacked, or refused
        "same": [np.ones(2), np.zeros(2)],
        "tuple": (np.arange(2), {"a": 1}),
        "nested": [[md.ones(1)], (md.ones(2),)],
        "numbers": [1, 2],  # numbers only: one array, as before
        "betas": (0.9, 0.99),
    }
    md.save(state, tmp_path / "s.npz")
    loaded = md.load(tmp_path / "s.npz")
    assert type(loaded["list"]) is list and [a.tolist() for a in loaded["list"]] == [[1, 1], [0, 0, 0]]
    assert type(loaded["same"]) is list and len(loaded["same"]) == 2 and loaded["same"][1].tolist() == [0, 0]
    assert type(loaded["tuple"]) is tuple and loaded["tuple"][0].tolist() == [0, 1] and loaded["tuple"][1] == {"a": 1}
    assert type(loaded["nested"][0]) is list and type(loaded["nested"][1]) is tuple
    assert loaded["nested"][1][0].tolist() == [1, 1]
    assert loaded["numbers"].tolist() == [1, 2] and loaded["betas"].tolist() == [0.9, 0.99]


@pytest.mark.parametrize(
    "state, error, words",
    [
        ({"a\x00b": 1}, ValueError, "may not contain '/' or NUL"),  # the zip layer cut the name at NUL
        ({"ok": {"x\x00": 1}}, ValueError, r"key ok/'x\\x00'"),
        ({"a\udcffb": 1}, ValueError, "not valid text"),
        ({"ragged": [[1.0, 2.0], [3.0]]}, ValueError, "'ragged' is a ragged list"),
        ({"__tuple__": 1}, ValueError, "be one of"),
    ],
    ids=["NUL", "nested NUL", "a lone surrogate", "ragged", "a marker"],
)
@host_only
def test_save_refuses_what_would_not_come_back_naming_the_key(tmp_path, state, error, words):
    with pytest.raises(error, match=words):
        md.save(state, tmp_path / "s.npz")
    assert not list(tmp_path.iterdir())


@host_only
@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=8), st.integers(-5, 5), max_size=4))
@example({"a\x00b": 1, "a": 2})  # the zip layer cut the name at NUL: one entry 'a' of two
def test_every_key_save_takes_comes_back(keys):
    """Any text key is either refused at save or comes back as it was."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        try:
            md.save(keys, Path(folder) / "s.npz")
        except ValueError:
            return
        assert {k: int(v) for k, v in md.load(Path(folder) / "s.npz").items()} == keys


@host_only
def test_nesting_too_deep_is_one_error_at_save_and_at_load(tmp_path):
    """A dict nested 2,000 deep raised RecursionError from save."""
    deep = leaf = {}
    for _ in range(2000):
        leaf["a"] = leaf = {}
    with pytest.raises(ValueError, match=f"more than {serialization.MAX_DEPTH} deep"):
        md.save(deep, tmp_path / "s.npz")
    deep_list = [1.0]
    for _ in range(2000):
        deep_list = [deep_list]
    with pytest.raises(ValueError, match=f"'a' nests lists and tuples more than {serialization.MAX_DEPTH} deep"):
        md.save({"a": deep_list}, tmp_path / "s.npz")
    crafted = _crafted(tmp_path / "deep.npz", [("a/" * 2000 + "b.npy", np.zeros(1))])
    with pytest.raises(ValueError, match=f"deep.npz is not a readable.*more than {serialization.MAX_DEPTH} deep"):
        md.load(crafted)
    deep = leaf = {}
    for _ in range(serialization.MAX_DEPTH - 1):
        leaf["a"] = leaf = {}
    leaf["a"] = 1
    md.save(deep, tmp_path / "ok.npz")  # as deep as allowed: it comes back
    assert md.load(tmp_path / "ok.npz") == deep


@host_only
def test_a_path_that_cannot_be_a_file_is_an_error_naming_it(tmp_path, monkeypatch):
    """'' raised OSError [Errno 16] about a temporary file; a parent that is a file said 'File exists'."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="the path to write is empty"):
        md.save({"a": 1}, "")
    with pytest.raises(IsADirectoryError, match=f"'{tmp_path}' is a folder: give the name of a file"):
        md.save({"a": 1}, tmp_path)
    (tmp_path / "a").write_text("a file")
    for path in ("a/b.npz", "a/c/b.npz"):
        with pytest.raises(NotADirectoryError, match=f"cannot write '{path}': 'a' is a file, not a folder"):
            md.save({"a": 1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@host_only
def test_a_save_never_touches_the_umask(tmp_path, monkeypatch):
    """save set the process-wide umask to 0 for a moment: a file another thread created meanwhile came out
    world-writable. The temporary file is created with 0o666 and the kernel applies the umask."""
    mask = _umask()

    def refuse(_):
        raise AssertionError("os.umask called: it changes the umask of every thread")

    monkeypatch.setattr(os, "umask", refuse)
    md.save({"a": 1}, tmp_path / "s.npz")
    assert (tmp_path / "s.npz").stat().st_mode & 0o777 == 0o666 & ~mask


def _crafted(path: Path, entries: list[tuple[str, np.ndarray]], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, array in entries:
            with archive.open(name, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array)
    return path


def test_load_refuses_crafted_archives_before_it_allocates(tmp_path):
    import warnings

    sparse = np.zeros(8 << 20)  # 64 MiB, one value in a hundred set: it deflates about 240:1
    sparse[np.random.default_rng(0).integers(0, sparse.size, sparse.size // 100)] = 1.0
    bomb = _crafted(tmp_path / "bomb.npz", [("a.npy", sparse)], zipfile.ZIP_DEFLATED)
    assert 100 < sparse.nbytes / bomb.stat().st_size < 1000  # under the old limit: 1000 times per entry
    with pytest.raises(ValueError, match=r"bomb.npz is not a readable.*would expand to 671089\d\d bytes from a file"):
        md.load(bomb)
    nested = _crafted(tmp_path / "nested.npz", [("a/b.npy", np.zeros(1)), ("a.npy", np.zeros(1))])
    with pytest.raises(ValueError, match="nested.npz .*'a' is also"):
        md.load(nested)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name as it writes it
        twice = _crafted(tmp_path / "twice.npz", [("a.npy", np.zeros(1)), ("a.npy", np.ones(1))])
    with pytest.raises(ValueError, match=r"entries of one name twice: \['a.npy'\]"):
        md.load(twice)
    squeezed = tmp_path / "squeezed.npz"  # an honest compressed file still loads
    np.savez_compressed(squeezed, w=np.random.default_rng(0).random(1000))
    assert md.load(squeezed)["w"].shape == (1000,)


def test_load_opens_regular_files_only(tmp_path):

    fifo = tmp_path / "model.ckpt.npz"
    os.mkfifo(fifo)
    errors = []
    reader = threading.Thread(target=lambda: errors.append(pytest.raises(ValueError, md.load, fifo)), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "md.load blocked on a FIFO"
    assert "is not a regular file" in str(errors[0].value)


def test_a_save_keeps_the_temporaries_of_other_targets_and_of_live_writers(tmp_path):
    """Saving `run` deleted the temporary file of a concurrent save of `run.777777.npz`."""
    other = tmp_path / f".run.777777.npz.{os.getpid() + 10**7}.abc123.tmp"  # another target's, its pid dead
    live = tmp_path / f".run.{os.getppid()}.x9.tmp"  # this target's, of a live writer
    dead = tmp_path / ".run.999999999.x1y2.tmp"  # this target's, of a dead writer
    for path in (other, live, dead):
        path.write_bytes(b"half")
    serialization.atomic_write(tmp_path / "run", lambda f: f.write(b"new"))
    assert other.exists() and live.exists() and not dead.exists()


def _save_often(folder: str, worker: int) -> None:
    for k in range(15):
        for target in ("run", "run.1", "run.777777.npz", "run.npz"):
            md.save({"worker": worker, "k": k, "w": np.full(100, worker)}, Path(folder) / target)


@host_only
def test_twenty_processes_saving_into_one_folder_lose_nothing(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_save_often, args=(str(tmp_path), w)) for w in range(20)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0] * 20
    for target in ("run", "run.1", "run.777777.npz", "run.npz"):
        loaded = md.load(tmp_path / target)
        assert int(loaded["k"]) == 14 and (loaded["w"] == loaded["worker"]).all()
    assert not list(tmp_path.glob(".*.tmp")), "temporary files were left behind"


@pytest.mark.parametrize("damage", ["truncate", "flip", "huge header", "object array", "not a zip", "empty"])
def test_a_damaged_file_is_one_clear_error_that_names_it(tmp_path, damage):
    path = _saved(tmp_path)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        path.write_bytes(raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:])
    elif damage == "huge header":  # asks for 8 TiB
        header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
        header["shape"] = (1 << 40,)
        with zipfile.ZipFile(path, "w") as archive, archive.open("a.npy", "w") as entry:
            np.lib.format.write_array_header_1_0(entry, header)
            entry.write(b"\0" * 8)
    elif damage == "object array":
        np.savez(path, a=np.array([{"x": 1}], dtype=object))
    elif damage == "not a zip":
        path.write_text("hello")
    else:
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{path.name} is not a readable minidl .npz file") as error:
        md.load(path)
    assert "pickle" not in str(error.value).lower()


def test_a_ctrl_c_just_after_a_save_renamed_its_file_is_still_a_ctrl_c(tmp_path, monkeypatch):
    """A SIGINT between the rename and the end of the write left atomic_write removing a temporary file
    that was gone: FileNotFoundError instead of KeyboardInterrupt, so an example exited 1 with
    "No such file or directory", not 130 (seen once in the Ctrl-C test of a clean clone)."""
    rename = os.replace

    def rename_then_interrupt(source, target):
        rename(source, target)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        serialization.atomic_write(tmp_path / "run", lambda f: f.write(b"whole"))
    assert (tmp_path / "run").read_bytes() == b"whole" and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_writes_are_atomic_readable_by_others_and_clean_up_after_killed_writes(tmp_path):
    path = _saved(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    stale = tmp_path / f".{path.name}.999999999.x1y2.tmp"  # the temporary file of a killed process
    stale.write_bytes(b"half")
    serialization.atomic_write(path, lambda f: f.write(b"new"))
    assert not stale.exists() and path.read_bytes() == b"new"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
