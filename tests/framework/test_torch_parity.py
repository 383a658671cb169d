"""Every op against PyTorch, forward values and input gradients, where torch is installed."""

import numpy as np
import pytest

import minidl as md
from minidl.nn import functional as F

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[bench]' to compare)")
T = torch.nn.functional

rng = np.random.default_rng(0)
X4 = rng.standard_normal((2, 3, 9, 8))
M = rng.standard_normal((4, 5))
P = rng.uniform(0.05, 0.95, (4, 5))
Y = rng.random((4, 5))
LABELS = np.array([0, 4, 2, 1])
LOW, HIGH = M[0] * 0.3 - 0.3, np.array([[0.4], [-2.0], [0.6], [0.5]])  # bounds of clamp; HIGH[1] < LOW
AT_BOUNDS = M.copy()
AT_BOUNDS[0, 1], AT_BOUNDS[2, 0] = LOW[1], HIGH[2, 0]  # ties: x's gradient there, as PyTorch

# name: (minidl fn, torch fn, inputs)
CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [M, M[0]]),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [M, M[:, :1]]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [M, M]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [M, P]),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, [P, M]),
    "neg": (lambda a: -a, lambda a: -a, [M]),
    "exp": (md.exp, torch.exp, [M]),
    "log": (md.log, torch.log, [P]),
    "sqrt": (md.sqrt, torch.sqrt, [P]),
    "abs": (md.abs, torch.abs, [M]),
    "clamp": (lambda a: a.clamp(-0.5, 0.5), lambda a: a.clamp(-0.5, 0.5), [M]),
    "clamp_tensor_bounds": (md.clamp, torch.clamp, [AT_BOUNDS, LOW, HIGH]),
    "clamp_tensor_min": (lambda a, lo: md.clamp(a, min=lo), lambda a, lo: torch.clamp(a, min=lo), [AT_BOUNDS, LOW]),
    "clamp_tensor_max": (lambda a, hi: a.clamp(max=hi), lambda a, hi: a.clamp(max=hi), [AT_BOUNDS, HIGH]),
    "maximum": (md.maximum, torch.maximum, [M, M.T[:5, :4].T]),
    "minimum": (md.minimum, torch.minimum, [M, P]),
    "where": (lambda a, b: md.where(M > 0, a, b), lambda a, b: torch.where(torch.tensor(M > 0), a, b), [M, P]),
    "sum": (lambda a: a.sum(1, keepdim=True), lambda a: a.sum(1, keepdim=True), [M]),
    "mean": (lambda a: a.mean(0), lambda a: a.mean(0), [M]),
    "amax": (lambda a: a.amax(1), lambda a: a.amax(1), [M]),
    "amin": (lambda a: a.amin(), lambda a: a.amin(), [M]),
    "max": (lambda a: a.max(1).values, lambda a: a.max(1).values, [M]),
    "min": (lambda a: a.min(0, keepdim=True).values, lambda a: a.min(0, keepdim=True).values, [M]),
    "max of all": (lambda a: a.max(), lambda a: a.max(), [M]),
    "var": (lambda a: a.var(1), lambda a: a.var(1), [M]),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, [rng.standard_normal((2, 3, 4)), M]),
    "linear": (F.linear, T.linear, [M, rng.standard_normal((3, 5)), rng.standard_normal(3)]),
    "reshape": (lambda a: a.reshape(5, 4), lambda a: a.reshape(5, 4), [M]),
    "permute": (lambda a: a.permute(2, 0, 3, 1), lambda a: a.permute(2, 0, 3, 1), [X4]),
    "transpose": (lambda a: a.T, lambda a: a.T, [M]),
    "index": (lambda a: a[[0, 0, 2], 1:4], lambda a: a[[0, 0, 2], 1:4], [M]),
    "concat": (lambda a, b: md.concat([a, b], 1), lambda a, b: torch.cat([a, b], 1), [M, P]),
    "stack": (lambda a, b: md.stack([a, b], 2), lambda a, b: torch.stack([a, b], 2), [M, P]),
    "flatten": (lambda a: a.flatten(1), lambda a: a.flatten(1), [X4]),
    "pad": (lambda a: md.pad(a, (1, 2, 0, 3)), lambda a: T.pad(a, (1, 2, 0, 3)), [X4]),
    "relu": (F.relu, T.relu, [M]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.2), lambda a: T.leaky_relu(a, 0.2), [M]),
    "sigmoid": (F.sigmoid, torch.sigmoid, [M]),
    "tanh": (F.tanh, torch.tanh, [M]),
    "softplus": (F.softplus, T.softplus, [M * 30]),
    "softmax": (lambda a: F.softmax(a, 1), lambda a: T.softmax(a, 1), [M]),
    "log_softmax": (lambda a: F.log_softmax(a, 0), lambda a: T.log_softmax(a, 0), [M]),
    "conv2d": (
        lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 2)),
        lambda x, w, b: T.conv2d(x, w, b, (2, 1), (1, 2)),
        [X4, rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)],
    ),
    "conv_transpose2d": (
        lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1),
        lambda x, w, b: T.conv_transpose2d(x, w, b, 2, 1, 1),
        [X4, rng.standard_normal((3, 5, 3, 3)), rng.standard_normal(5)],
    ),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: T.max_pool2d(x, 3, 2, 1), [X4]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, (2, 3), 1, (1, 1)), lambda x: T.avg_pool2d(x, (2, 3), 1, (1, 1)), [X4]),
    "upsample_nearest": (lambda x: F.upsample(x, 1.5), lambda x: T.interpolate(x, scale_factor=1.5), [X4]),
    "upsample_nearest_blocks": (  # integer factors: each pixel copied to a block
        lambda x: F.upsample(x, (3, 2)),
        lambda x: T.interpolate(x, scale_factor=(3, 2)),
        [X4],
    ),
    "max_pool2d_tiles": (lambda x: F.max_pool2d(x, 2), lambda x: T.max_pool2d(x, 2), [X4]),
    "upsample_bilinear": (
        lambda x: F.upsample(x, 2, "bilinear"),
        lambda x: T.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
        [X4],
    ),
    "mse_loss": (F.mse_loss, T.mse_loss, [M, P]),
    "binary_cross_entropy": (
        lambda p, y: F.binary_cross_entropy(p, y, "sum"),
        lambda p, y: T.binary_cross_entropy(p, y, reduction="sum"),
        [P, Y],
    ),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, T.binary_cross_entropy_with_logits, [M * 500, Y]),
    "sigmoid_mse_loss": (F.sigmoid_mse_loss, lambda z, y: T.mse_loss(torch.sigmoid(z), y), [M * 3, Y]),
    "cross_entropy": (lambda z: F.cross_entropy(z, LABELS), lambda z: T.cross_entropy(z, torch.tensor(LABELS)), [M]),
}


# these losses treat their target as a constant (no gradient flows to it)
CONSTANT_TARGET = {"binary_cross_entropy", "bce_with_logits", "sigmoid_mse_loss"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_pytorch(name):
    ours_fn, theirs_fn, arrays = CASES[name]
    grads = [not (name in CONSTANT_TARGET and i == 1) for i in range(len(arrays))]
    ours = [md.tensor(a, requires_grad=g, dtype=md.float64) for a, g in zip(arrays, grads)]
    theirs = [torch.tensor(a, requires_grad=g, dtype=torch.float64) for a, g in zip(arrays, grads)]
    out, ref = ours_fn(*ours), theirs_fn(*theirs)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = np.random.default_rng(1).standard_normal(ref.shape)
    (out * md.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if not grads[i]:
            continue
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"input {i}")


def test_optimisers_match_pytorch():
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    for ours_cls, theirs_cls, kw in [
        (md.optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (md.optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ]:
        ours, theirs = md.nn.Parameter(w0.copy()), torch.tensor(w0.copy(), requires_grad=True)
        o, t = ours_cls([ours], **kw), theirs_cls([theirs], **kw)
        for g in grads:
            ours.grad, theirs.grad = md.tensor(g), torch.tensor(g)
            o.step()
            t.step()
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivatives_match_pytorch(name):
    """The gradient of ⟨u, ∂⟨w, f(x)⟩/∂x⟩ (the Hessian of ⟨w, f⟩ applied to u), by
    minidl.autograd.grad(create_graph=True) and by torch.autograd.grad(create_graph=True)."""
    ours_fn, theirs_fn, arrays = CASES[name]
    grads = [not (name in CONSTANT_TARGET and i == 1) for i in range(len(arrays))]
    ours = [md.tensor(a, requires_grad=g, dtype=md.float64) for a, g in zip(arrays, grads)]
    theirs = [torch.tensor(a, requires_grad=g, dtype=torch.float64) for a, g in zip(arrays, grads)]
    wrt = [i for i, g in enumerate(grads) if g]
    out, ref = ours_fn(*ours), theirs_fn(*theirs)
    rng2 = np.random.default_rng(2)
    w = rng2.standard_normal(ref.shape)
    u = [rng2.standard_normal(arrays[i].shape) for i in wrt]
    first = md.autograd.grad((out * md.tensor(w)).sum(), [ours[i] for i in wrt], create_graph=True)
    first_ref = torch.autograd.grad((ref * torch.tensor(w)).sum(), [theirs[i] for i in wrt], create_graph=True)
    for a, b in zip(first, first_ref):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-12)
    h = sum((g * md.tensor(v)).sum() for g, v in zip(first, u)) + sum((ours[i] * 0).sum() for i in wrt)
    h_ref = sum((g * torch.tensor(v)).sum() for g, v in zip(first_ref, u))
    second = md.autograd.grad(h, [ours[i] for i in wrt], allow_unused=True)
    second_ref = torch.autograd.grad(h_ref, [theirs[i] for i in wrt], allow_unused=True) if h_ref.requires_grad else []
    for k, (a, b) in enumerate(zip(second, second_ref or [None] * len(wrt))):
        expect = np.zeros(arrays[wrt[k]].shape) if b is None else torch.zeros_like(b).add(b).numpy()  # ZeroTensors too
        # atol 1e-9: PyTorch's softplus is x itself above 20, ours has σ'(x) ≈ 1e-10 there
        np.testing.assert_allclose(a.numpy(), expect, rtol=1e-9, atol=1e-9, err_msg=f"input {wrt[k]}")
