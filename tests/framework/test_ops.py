"""Every op of the op table (minidl.optable), one entry each, checked from it on every device:
first and second derivatives against central differences (gradcheck, gradgradcheck), the kernels
against the array path, values against the loop reference, values and first and second derivatives
against PyTorch, and each bad input's message. A new op joins by its table entry alone."""

import os

import numpy as np
import pytest
from conftest import KERNEL_DEVICES
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dtypes, samples

import minidl as md
from minidl.optable import OPS, OpInfo, Sample

LEG = os.environ.get("MINIDL_DEVICE", "cpu")  # the device of this leg of the suite: tensors' default
TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-5)}
TORCH_MISSING = "PyTorch is not installed (pip install -e '.[bench]' to compare)"
PEER_EXAMPLES = 5  # an independent reference needs few samples; finite differences take the suite's 20


def _ids(params):
    return [p.id for p in params]


def _kernel_devices(info: OpInfo, skip=()):
    """The kernel devices (emu, cuda) of a kernel op, as pytest params with their marks."""
    if not info.kernel:
        return []
    return [pytest.param(info, d.values[0], marks=d.marks, id=f"{info.name}-{d.values[0]}")
            for d in KERNEL_DEVICES if d.values[0] not in skip]  # fmt: skip


GRADIENT_CASES = [pytest.param(info, id=info.name) for info in OPS]
THROUGH_KERNEL_CASES = [p for info in OPS for p in _kernel_devices(info, skip=(LEG,))]  # the leg's own is above
KERNEL_CASES = [p for info in OPS for p in _kernel_devices(info)]
REFERENCE_CASES = [pytest.param(info, id=info.name) for info in OPS if info.reference is not None]
TORCH_CASES = [pytest.param(info, id=info.name) for info in OPS if info.torch is not None]
BAD_CASES = [pytest.param(info, bad, id=f"{info.name}: {bad.what}") for info in OPS for bad in info.bad]


def tensors(sample: Sample, device: str, dtype=np.float64, grads=None) -> list:
    """The sample's arrays as leaf tensors (as stored: transposed inputs swapped)."""
    grads = sample.grads if grads is None else grads
    return [md.tensor(sample.stored(k), requires_grad=g, device=device, dtype=dtype) for k, g in enumerate(grads)]


def on(device: str):
    """constant(array) of Sample.call: an array option (a condition, labels, a mask) as a tensor there."""
    return lambda a: md.tensor(a, device=device)


def differentiable(out):
    """The output that carries gradients: the values of (values, indices)."""
    return out[0] if isinstance(out, tuple) else out


def outputs(out) -> list[np.ndarray]:
    return [o.numpy() for o in out] if isinstance(out, tuple) else [out.numpy()]


# ------------------------------------------------------------------ finite differences
@pytest.mark.parametrize("info", GRADIENT_CASES)
@given(data=st.data())
def test_first_and_second_derivatives_match_finite_differences(info, data):
    """In float64, on the leg's device. Second derivatives on the cpu for every case; on a kernel
    device for a kernel op's cases of at most info.second_order_elements input elements (the other
    ops' backward is made of the same recorded ops on every device, each checked here)."""
    sample = data.draw(samples(info))
    inputs = tensors(sample, LEG)
    fn = _differentiated(info, sample, LEG)
    assert md.gradcheck(fn, inputs)
    elements = sum(a.size for a, g in zip(sample.arrays, sample.grads) if g)
    if LEG == "cpu" or elements <= info.second_order_elements:
        assert md.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("info, device", THROUGH_KERNEL_CASES)
@settings(max_examples=5)
@given(data=st.data())
def test_first_derivatives_through_the_kernels(info, device, data):
    """A kernel op's gradients on a kernel device other than the leg's (emu in the cpu leg)."""
    sample = data.draw(samples(info))
    assert md.gradcheck(_differentiated(info, sample, device), tensors(sample, device))


def _differentiated(info, sample, device):
    def fn(*t):
        return differentiable(sample.call(info.op, list(t), on(device)))

    return fn


# ------------------------------------------------------------------ kernels
@pytest.mark.parametrize("info, device", KERNEL_CASES)
@given(data=st.data(), dtype=dtypes)
def test_kernels_match_the_array_path(info, device, data, dtype):
    """Output and input gradients through the CUDA kernels (on the emulator, the stand-in or a GPU)
    against NumPy's on the cpu, in float64 and float32, partial tiles and long losses included."""
    sample = data.draw(samples(info, kernel=True))
    results, weights = [], None
    for dev in ("cpu", device):
        inputs = tensors(sample, dev, dtype)
        out = differentiable(sample.call(info.op, inputs, on(dev)))
        if weights is None:
            weights = np.random.default_rng(0).standard_normal(out.shape)
        (out * md.tensor(weights, device=dev, dtype=dtype)).sum().backward()
        results.append([out.numpy()] + [t.grad.numpy() for t in inputs if t.requires_grad])
    for expect, got in zip(*results):
        assert got.dtype == expect.dtype
        np.testing.assert_allclose(got, expect, **TOLERANCE[dtype])


# ------------------------------------------------------------------ the loop reference
@pytest.mark.parametrize("info", REFERENCE_CASES)
@given(data=st.data())
def test_values_match_the_loop_reference(info, data):
    sample = data.draw(samples(info, smooth=False))
    got = outputs(sample.call(info.op, tensors(sample, LEG, grads=[False] * len(sample.arrays)), on(LEG)))
    expect = sample.call(info.reference, sample.arrays)
    expect = list(expect) if isinstance(expect, tuple) else [expect]
    for g, e in zip(got, expect, strict=True):
        assert g.shape == np.shape(e)
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ PyTorch
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason=TORCH_MISSING)


def _both(info, sample, torch):
    """minidl's and PyTorch's inputs and outputs (float64), with the gradients PyTorch also takes."""
    grads = [g and k not in info.torch_constant for k, g in enumerate(sample.grads)]
    ours = tensors(sample, LEG, grads=grads)
    theirs = [torch.tensor(sample.stored(k), requires_grad=g, dtype=torch.float64) for k, g in enumerate(grads)]
    out = sample.call(info.op, ours, on(LEG))
    ref = sample.call(info.torch_op(), theirs, torch.as_tensor)
    for a, b in zip(outputs(out), [r.detach().numpy() for r in (ref if isinstance(ref, tuple) else [ref])]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    return grads, ours, theirs, differentiable(out), differentiable(ref)


@pytest.mark.parametrize("info", TORCH_CASES)
@pytest.mark.filterwarnings("ignore:The use of `x.T`")  # PyTorch keeps NumPy's x.T of other than 2 dims, warning
@settings(max_examples=PEER_EXAMPLES)
@given(data=st.data())
def test_values_and_gradients_match_pytorch(info, data, torch):
    sample = data.draw(samples(info, smooth=False))
    grads, ours, theirs, out, ref = _both(info, sample, torch)
    weights = np.random.default_rng(1).standard_normal(ref.shape)
    (out * md.tensor(weights, device=LEG)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if grads[k]:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"input {k}")


@pytest.mark.parametrize("info", TORCH_CASES)
@pytest.mark.filterwarnings("ignore:The use of `x.T`")  # PyTorch keeps NumPy's x.T of other than 2 dims, warning
@settings(max_examples=PEER_EXAMPLES)
@given(data=st.data())
def test_second_derivatives_match_pytorch(info, data, torch):
    """The gradient of ⟨u, ∂⟨w, f(x)⟩/∂x⟩ (the Hessian of ⟨w, f⟩ applied to u), by
    minidl.autograd.grad(create_graph=True) and by torch.autograd.grad(create_graph=True)."""
    sample = data.draw(samples(info, smooth=False))
    grads, ours, theirs, out, ref = _both(info, sample, torch)
    wrt = [k for k, g in enumerate(grads) if g]
    rng = np.random.default_rng(2)
    w = rng.standard_normal(ref.shape)
    u = [rng.standard_normal(ours[k].shape) for k in wrt]
    first = md.autograd.grad((out * md.tensor(w, device=LEG)).sum(), [ours[k] for k in wrt], create_graph=True)
    first_ref = torch.autograd.grad((ref * torch.tensor(w)).sum(), [theirs[k] for k in wrt], create_graph=True)
    for a, b in zip(first, first_ref):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-12)
    h = sum((g * md.tensor(v, device=LEG)).sum() for g, v in zip(first, u)) + sum((ours[k] * 0).sum() for k in wrt)
    h_ref = sum((g * torch.tensor(v)).sum() for g, v in zip(first_ref, u))
    second = md.autograd.grad(h, [ours[k] for k in wrt], allow_unused=True)
    second_ref = torch.autograd.grad(h_ref, [theirs[k] for k in wrt], allow_unused=True) if h_ref.requires_grad else []
    for k, (a, b) in enumerate(zip(second, second_ref or [None] * len(wrt))):
        expect = np.zeros(ours[wrt[k]].shape) if b is None else torch.zeros_like(b).add(b).numpy()  # ZeroTensors too
        # atol 1e-9: PyTorch's softplus is x itself above 20, ours has σ'(x) ≈ 1e-10 there
        np.testing.assert_allclose(a.numpy(), expect, rtol=1e-9, atol=1e-9, err_msg=f"input {wrt[k]}")


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("info, bad", BAD_CASES)
def test_bad_input_is_a_clear_error_at_the_call(info, bad):
    with pytest.raises(bad.error, match=bad.words):
        bad.call(info.op)


NOT_IN_THE_TABLE = {
    "in_place": "not an op: how +=, -= and their kin write into a tensor (tests/framework/test_pytorch_semantics.py)",
    "setitem": "t[i] = v writes in place (tests/framework/test_pytorch_semantics.py); the table's ops return new ones",
}


def test_every_op_of_minidl_ops_has_its_entry():
    """A new op that minidl.ops exports without an entry in the op table fails here."""
    table = {info.name for info in OPS} | {info.op for info in OPS}
    missing = [n for n in md.ops.__all__ if n not in table and getattr(md.ops, n) not in table]
    assert sorted(missing) == sorted(NOT_IN_THE_TABLE), missing


def test_the_table_names_each_op_once_and_every_kernel_op_has_its_example():
    names = [info.name for info in OPS]
    assert len(names) == len(set(names))
    for info in OPS:
        assert (info.example is not None) == info.kernel and bool(info.benchmark) == info.kernel, info.name
        assert info.second_order_elements == 0 or info.kernel, info.name
