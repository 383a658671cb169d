"""One check per exercise: check_N(device) raises CheckFailed (grading.py) at the first wrong case.

Each check calls the exercise's own code first, so a stub fails with its own message, and
compares it with an independent reference (reference.py's loops, a formula, central finite
differences in float64). Gradients are taken from the op's node (node.input_grads), not
through backward(), so that an exercise does not depend on the backward walk (exercise 2).
"""

from __future__ import annotations

import itertools
import tempfile
from functools import partial

import numpy as np

from .. import backend
from ..autograd.tensor import Function, Tensor
from ..gradcheck import numeric_vjp
from . import reference
from .grading import case, compare, fail

DTYPES = (np.float32, np.float64)
TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
FINITE_DIFFERENCES = dict(rtol=1e-6, atol=1e-8)  # central differences in float64 agree to about this
CONV_CASES = [  # N, C, H, W, O, kernel, stride, padding
    (2, 3, 7, 7, 4, (3, 3), (1, 1), (0, 0)),
    (2, 3, 8, 6, 5, (3, 2), (2, 1), (1, 0)),
    (1, 1, 5, 5, 1, (5, 5), (1, 1), (2, 2)),
    (3, 2, 9, 9, 4, (3, 3), (2, 2), (1, 1)),
    (2, 4, 4, 4, 2, (1, 1), (1, 1), (0, 0)),
]


def _tensor(array, device, requires_grad=False, dtype=None) -> Tensor:
    return Tensor(array, requires_grad=requires_grad, device=device, dtype=dtype or array.dtype)


def _input_grads(out: Tensor, grad_output: np.ndarray) -> tuple:
    """The gradients that out's op sends to its inputs for grad_output, as NumPy arrays."""
    node = out._node
    grads = node.input_grads(backend.move(grad_output.astype(out.dtype), out.device))
    return tuple(None if g is None else backend.to_numpy(g) for g in grads)


def _conv_arrays(rng, n, c, h, w, o, kernel, stride, padding):
    from ..ops.windows import output_size

    ho, wo = output_size(h, kernel[0], stride[0], padding[0]), output_size(w, kernel[1], stride[1], padding[1])
    return rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, *kernel)), rng.standard_normal((n, o, ho, wo))


# ------------------------------------------------------------ 1 unbroadcast
def check_unbroadcast(device: str) -> None:
    from ..autograd.tensor import unbroadcast
    from ..ops import mul

    rng = np.random.default_rng(1)
    pairs = [
        ((3, 4), (3, 4)),
        ((2, 3, 4), (4,)),
        ((2, 3, 4), (3, 1)),
        ((2, 3, 4), (1,)),
        ((2, 3, 4), ()),
        ((5, 1, 4), (5, 1, 1)),
        ((2, 3, 1, 4), (1, 3, 1, 1)),
        ((6,), (1,)),
    ]
    hint = "sum over the leading axes that broadcasting added, then (keeping them) over the axes where shape has 1"
    for full, shape in pairs:
        case(f"unbroadcast(grad of shape {full}, shape {shape})")
        g = rng.standard_normal(full)
        compare(
            "unbroadcast(grad, shape)",
            unbroadcast(backend.move(g, device), shape),
            reference.unbroadcast(g, shape),
            hint=hint,
        )
    for a_shape, b_shape in [((3, 1), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3))]:
        case(f"the gradients of a * b for a {a_shape} and b {b_shape} (float64, finite differences)")
        a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
        out = mul(_tensor(a, device, True), _tensor(b, device, True))
        gy = rng.standard_normal(out.shape)
        ga, gb = _input_grads(out, gy)
        want_a, want_b = numeric_vjp(np.multiply, gy, a, b)
        compare("the gradient of a", ga, want_a, **FINITE_DIFFERENCES)
        compare("the gradient of b", gb, want_b, **FINITE_DIFFERENCES)


# ---------------------------------------------------------- 2 backward walk
class _Scale(Function):
    def forward(self, x, *, k):
        self.k = k
        return x * k

    def backward(self, g):
        return g * self.k


class _Square(Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return 2 * self.x * g


class _Multiply(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.b, g * self.a


def check_backward_walk(device: str) -> None:
    rng = np.random.default_rng(2)
    x0 = rng.uniform(0.5, 1.5, 5)
    hint = "process a tensor only after every node that uses it has sent its gradient (Kahn's order), and add them"

    def grad_of(build):
        x = _tensor(x0, device, requires_grad=True)
        build(x).backward(_tensor(np.ones(5), device))
        return x

    graphs = [
        ("a chain: y = (3x)²", lambda x: _Square.apply(_Scale.apply(x, k=3.0)), 18 * x0),
        ("x used twice by one node: y = x · x", lambda x: _Multiply.apply(x, x), 2 * x0),
        ("a diamond: y = (2x) · x²", lambda x: _Multiply.apply(_Scale.apply(x, k=2.0), _Square.apply(x)), 6 * x0**2),
        (
            "paths of different lengths: s = 2x, y = s · (3s)",
            lambda x: (lambda s: _Multiply.apply(s, _Scale.apply(s, k=3.0)))(_Scale.apply(x, k=2.0)),
            24 * x0,
        ),
    ]
    for name, build, want in graphs:
        case(name)
        compare("x.grad", grad_of(build).grad, want, rtol=1e-12, hint=hint)

    def deep(x):
        for _ in range(5000):
            x = _Scale.apply(x, k=1.0001)
        return x

    case("a chain of 5000 ops (no recursion limit)")
    compare(
        "x.grad",
        grad_of(deep).grad,
        np.full(5, 1.0001**5000),
        rtol=1e-9,
        hint="walk with a list or a stack, not recursion",
    )

    case("two backward() calls add into x.grad; a constant input gets no gradient")
    x, c = _tensor(x0, device, requires_grad=True), _tensor(x0, device)
    for _ in range(2):
        _Multiply.apply(x, c).backward(_tensor(np.ones(5), device))
    compare("x.grad after two backward()", x.grad, 2 * x0, rtol=1e-12, hint="a leaf adds each gradient to its .grad")
    if c.grad is not None:
        fail("a tensor that does not require grad was given a .grad", "skip inputs whose requires_grad is False")


# -------------------------------------------------------- 3 conv2d by im2col
def check_conv_im2col(device: str) -> None:
    from ..ops.conv import conv2d_output, im2col

    rng = np.random.default_rng(3)
    for n, c, h, w, o, kernel, stride, padding in CONV_CASES:
        case(f"x ({n}, {c}, {h}, {w}), kernel {kernel}, stride {stride}, padding {padding}")
        x, weight, _ = _conv_arrays(rng, n, c, h, w, o, kernel, stride, padding)
        compare(
            "im2col(x)",
            im2col(x, kernel, stride, padding),
            reference.im2col(x, kernel, stride, padding),
            hint="row (c, i, j), column (p, q, n) holds xpad[n, c, p·sh + i, q·sw + j]: the batch last",
        )
        compare(
            f"conv2d_output(x, w) with w {weight.shape}",
            conv2d_output(x, weight, stride, padding),
            reference.conv2d(x, weight, None, stride, padding),
            rtol=1e-9,
            hint="w.reshape(O, -1) @ cols is (O, Ho·Wo·N): reshape to (O, Ho, Wo, N), view it as (N, O, Ho, Wo)",
        )


# ------------------------------------------------------ 4 conv2d gradients
def check_conv_gradients(device: str) -> None:
    from ..nn import functional as F
    from ..ops.conv import conv2d_input_grad, conv2d_weight_grad

    rng = np.random.default_rng(4)
    for n, c, h, w, o, kernel, stride, padding in CONV_CASES:
        case(f"x ({n}, {c}, {h}, {w}), w ({o}, {c}, {kernel[0]}, {kernel[1]}), stride {stride}, padding {padding}")
        x, weight, gy = _conv_arrays(rng, n, c, h, w, o, kernel, stride, padding)
        extra = tuple(
            d - ((e - 1) * s - 2 * p + k) for d, e, s, p, k in zip((h, w), gy.shape[2:], stride, padding, kernel)
        )
        compare(
            "the input gradient conv2d_input_grad(gy, w)",
            conv2d_input_grad(gy, weight, (h, w), stride, padding),
            reference.conv_transpose2d(gy, weight, None, stride, padding, extra),
            rtol=1e-9,
            hint="gx = wᵀ-matmul of gy, then add each window's column back where it came from (col2im)",
        )
        compare(
            "the weight gradient conv2d_weight_grad(x, gy)",
            conv2d_weight_grad(x, gy, kernel, stride, padding),
            reference.conv2d_weight_grad(x, gy, kernel, stride, padding),
            rtol=1e-9,
            hint="gw = gy as (O, Ho·Wo·N), the batch moved last as in cols, @ cols(x)ᵀ",
        )

    case("finite differences (float64): x (2, 2, 5, 5), w (3, 2, 3, 3), stride 2, padding 1")
    x, weight, gy = _conv_arrays(rng, 2, 2, 5, 5, 3, (3, 3), (2, 2), (1, 1))
    want_gx, want_gw = numeric_vjp(partial(reference.conv2d, b=None, stride=(2, 2), padding=(1, 1)), gy, x, weight)
    compare("the input gradient", conv2d_input_grad(gy, weight, (5, 5), (2, 2), (1, 1)), want_gx, **FINITE_DIFFERENCES)
    compare("the weight gradient", conv2d_weight_grad(x, gy, (3, 3), (2, 2), (1, 1)), want_gw, **FINITE_DIFFERENCES)

    for stride, padding, extra in [((2, 2), (1, 1), (1, 1)), ((1, 1), (0, 0), (0, 0)), ((2, 1), (0, 1), (1, 0))]:
        case(
            f"conv_transpose2d, the adjoint: x (2, 3, 4, 5), w (3, 2, 3, 3), stride {stride}, padding {padding}, "
            f"output_padding {extra}"
        )
        x, weight = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 3, 3))
        y = F.conv_transpose2d(_tensor(x, device, True), _tensor(weight, device, True), None, stride, padding, extra)
        compare(
            "conv_transpose2d(x, w)",
            y,
            reference.conv_transpose2d(x, weight, None, stride, padding, extra),
            rtol=1e-9,
            hint="its forward is conv2d's input gradient",
        )
        gy = rng.standard_normal(y.shape)
        gx, gw = _input_grads(y, gy)
        forward = partial(reference.conv_transpose2d, b=None, stride=stride, padding=padding, output_padding=extra)
        want_gx, want_gw = numeric_vjp(forward, gy, x, weight)
        hint = "its input gradient is conv2d's forward (exercise 3)"
        compare("its input gradient", gx, want_gx, **FINITE_DIFFERENCES, hint=hint)
        hint = "conv2d_weight_grad with the roles of input and output swapped"
        compare("its weight gradient", gw, want_gw, **FINITE_DIFFERENCES, hint=hint)


# ---------------------------------------------------------- 5 max-pool kernel
POOL_CASES = [  # x shape, kernel, stride, padding
    ((2, 3, 7, 7), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 6, 5), (2, 2), (2, 2), (0, 0)),
    ((2, 1, 5, 5), (3, 3), (1, 1), (1, 1)),
    ((1, 1, 4, 6), (2, 3), (1, 2), (1, 1)),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0)),
    ((2, 4, 28, 28), (2, 2), (2, 2), (0, 0)),
]


def check_max_pool_kernel(device: str) -> None:
    from ..nn import functional as F

    rng = np.random.default_rng(5)
    for dtype, (shape, kernel, stride, padding) in itertools.product(DTYPES, POOL_CASES):
        case(f"max_pool2d {np.dtype(dtype).name}: x {shape}, kernel {kernel}, stride {stride}, padding {padding}")
        x = (rng.permutation(np.prod(shape)) / np.prod(shape)).reshape(shape).astype(dtype)  # distinct values
        y = F.max_pool2d(_tensor(x, device, True), kernel, stride, padding)
        compare(
            "max_pool2d_forward's y",
            y,
            reference.pool2d(x, kernel, stride, padding, np.max),
            **TOLERANCE[dtype],
            hint="the window of output (p, q) starts at row p·SH - PH, column q·SW - PW; skip rows and columns "
            "outside the image",
        )
        gy = rng.standard_normal(y.shape).astype(dtype)
        (gx,) = _input_grads(y, gy)
        compare(
            "max_pool2d_backward's gx",
            gx,
            reference.max_pool2d_backward(x, gy, kernel, stride, padding),
            **TOLERANCE[dtype],
            hint="input pixel (h, w) adds gy of every window whose argmax it is",
        )

    case("max_pool2d float64 with ties (a constant image): the first maximum in the window wins")
    x = np.ones((1, 1, 4, 4))
    y = F.max_pool2d(_tensor(x, device, True), 2, 1, 0)
    gy = rng.standard_normal(y.shape)
    compare(
        "gx",
        _input_grads(y, gy)[0],
        reference.max_pool2d_backward(x, gy, (2, 2), (1, 1), (0, 0)),
        hint="replace the best only when a value is strictly greater (v > best)",
    )

    case("finite differences (float64): x (1, 2, 5, 5), kernel 3, stride 2, padding 1")
    x = rng.permutation(50).reshape(1, 2, 5, 5) / 50.0
    y = F.max_pool2d(_tensor(x, device, True), 3, 2, 1)
    gy = rng.standard_normal(y.shape)

    (want,) = numeric_vjp(partial(_max_pool2d, device=device), gy, x, eps=1e-4)
    compare("gx", _input_grads(y, gy)[0], want, **FINITE_DIFFERENCES)


def _max_pool2d(x: np.ndarray, device: str) -> np.ndarray:
    """The forward of exercise 5's kernel (window 3, stride 2, padding 1) as a NumPy function."""
    from ..nn import functional as F

    return backend.to_numpy(F.max_pool2d(_tensor(x, device), 3, 2, 1).data)


# ----------------------------------------------- 6 fused sigmoid + loss kernel
def check_sigmoid_loss_kernel(device: str) -> None:
    from ..nn import functional as F

    rng = np.random.default_rng(6)
    losses = {"bce": F.binary_cross_entropy_with_logits, "mse": F.sigmoid_mse_loss}
    for dtype, count, kind, reduction in itertools.product(
        DTYPES, (1, 255, 257, 5000, 300_001), losses, ("mean", "sum")
    ):
        case(f"{kind} {np.dtype(dtype).name}: {count} values, reduction {reduction!r}")
        z = rng.standard_normal(count) * 4
        z[: min(count, 4)] = [100.0, -100.0, 30.0, -30.0][: min(count, 4)]
        y = rng.random(count)
        s = 1 / (1 + np.exp(-z))
        if kind == "bce":
            elementwise, dz = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), s - y
        else:
            elementwise, dz = (s - y) ** 2, 2 * (s - y) * s * (1 - s)
        scale = 1 / count if reduction == "mean" else 1
        loss = losses[kind](_tensor(z.astype(dtype), device, True), _tensor(y.astype(dtype), device), reduction)
        tolerance = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
        compare(
            "the loss",
            loss,
            scale * elementwise.sum(),
            **tolerance,
            hint="sum each block's values with block_sum, one partial per block, then sum the partials",
        )
        grad = _input_grads(loss, np.ones(()))[0]
        compare(
            "the gradient with respect to the logits",
            grad,
            scale * dz,
            **tolerance,
            hint="grad[i] = scale · dl/dz; compute sigmoid as e/(1 + e) with e = exp(-|z|), stable for any z",
        )
        again = losses[kind](_tensor(z.astype(dtype), device), _tensor(y.astype(dtype), device), reduction)
        if backend.to_numpy(again.data) != backend.to_numpy(loss.data):
            fail("the same inputs gave two different losses", "add the partial sums in a fixed order (no atomics)")


# -------------------------------------------------------------------- 7 Adam
ADAM_CASES = [
    dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
]


def _check_adam(device: str, dtypes, shape, seed: int) -> None:
    from ..optim import Adam

    rng = np.random.default_rng(seed)
    for dtype, hyper in itertools.product(dtypes, ADAM_CASES):
        p0 = rng.standard_normal(shape)
        grads = [rng.standard_normal(shape) for _ in range(5)]
        p = _tensor(p0.astype(dtype), device, requires_grad=True)
        optimizer = Adam([p], **hyper)
        for t in range(1, 6):
            case(f"Adam {np.dtype(dtype).name}, parameter {shape}, step {t} of 5, {hyper}")
            p.grad = _tensor(grads[t - 1].astype(dtype), device)
            optimizer.step()
            compare(
                "the parameter",
                p,
                reference.adam(p0, grads[:t], **hyper),
                **TOLERANCE[dtype],
                hint="m and v are updated in place each step; step_size = lr / (1 - β1^t) and "
                "bias2_sqrt = sqrt(1 - β2^t) carry the bias corrections",
            )


def check_adam(device: str) -> None:
    _check_adam(device, (np.float64,), (7, 5), seed=7)


def check_adam_kernel(device: str) -> None:
    _check_adam(device, DTYPES, (1000,), seed=8)
    _check_adam(device, (np.float32,), (3,), seed=9)


# ------------------------------------------------------------- 9 corruptions
def check_corruptions(device: str) -> None:
    from ..corruptions import gaussian, salt_and_pepper

    x = np.full((200, 784), 0.5, dtype=np.float32)
    n = x.size
    for name, corrupt in (
        ("gaussian(x, rng, sigma=0.1, clip=False)", lambda x_, r: gaussian(x_, r, 0.1, clip=False)),
        ("salt_and_pepper(x, rng, 0.3)", lambda x_, r: salt_and_pepper(x_, r, 0.3)),
    ):
        case(f"{name} on a (200, 784) float32 batch of 0.5: shape, dtype, input kept, repeatable")
        before = x.copy()
        out = corrupt(x, np.random.default_rng(0))
        if getattr(out, "shape", None) != x.shape or getattr(out, "dtype", None) != x.dtype:
            fail(
                f"{name} returned {type(out).__name__} {getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}, "
                f"expected an array {x.shape} float32",
                "draw with dtype=x.dtype",
            )
        if not np.array_equal(x, before):
            fail(f"{name} changed its input", "return a new array; do not write into x")
        if not np.array_equal(out, corrupt(x, np.random.default_rng(0))):
            fail(f"{name} gave two results for one seed", "draw every random number from rng")

    case("gaussian noise: mean 0 and standard deviation sigma")
    noise = gaussian(x, np.random.default_rng(1), 0.1, clip=False) - x
    if abs(noise.mean()) > 5 * 0.1 / np.sqrt(n) or abs(noise.std() / 0.1 - 1) > 0.02:
        fail(
            f"the noise has mean {noise.mean():.5f} and standard deviation {noise.std():.5f}; expected 0 and 0.1",
            "x + sigma · rng.standard_normal(x.shape)",
        )
    case("gaussian with clip=True (sigma 1) stays in [0, 1] and reaches both ends")
    clipped = gaussian(x, np.random.default_rng(2), 1.0)
    if clipped.min() != 0 or clipped.max() != 1:
        fail(f"values from {clipped.min()} to {clipped.max()}; expected exactly [0, 1]", "clip(0, 1) when clip is True")
    case("gaussian with sigma 0 changes nothing")
    compare("gaussian(x, rng, 0)", gaussian(x, np.random.default_rng(3), 0.0), x)

    case("salt_and_pepper(x, rng, 0.3): 30 % of the pixels become 0 or 1, half of them 1")
    out = salt_and_pepper(x, np.random.default_rng(4), 0.3)
    hit = out != 0.5
    share, salt = hit.mean(), (out[hit] == 1).mean() if hit.any() else 0.0
    if not set(np.unique(out[hit])) <= {0.0, 1.0}:
        fail(f"hit pixels hold {np.unique(out[hit])[:5]}, expected only 0 and 1", "salt is 1, pepper is 0")
    if abs(share - 0.3) > 5 * np.sqrt(0.3 * 0.7 / n) or abs(salt - 0.5) > 5 * np.sqrt(0.25 / hit.sum()):
        fail(
            f"{share:.4f} of the pixels were hit, {salt:.4f} of those became 1; expected 0.3 and 0.5",
            "hit where rng.random < fraction; salt where a second draw < 0.5",
        )
    for fraction, want in ((0.0, x), (1.0, None)):
        case(f"salt_and_pepper with fraction {fraction}")
        out = salt_and_pepper(x, np.random.default_rng(5), fraction)
        if want is not None:
            compare("the output", out, want)
        elif not set(np.unique(out)) <= {0.0, 1.0}:
            fail("with fraction 1 every pixel must be 0 or 1")


# ----------------------------------------------------- 10 the training loop
IMAGES = 10_000  # training images of the check


def check_training_loop(device: str) -> None:
    from .. import corruptions
    from ..autoencoders import DenseAutoencoder
    from ..experiment import Experiment, command_line
    from ..nn import functional as F
    from ..optim import Adam

    with tempfile.TemporaryDirectory() as out:
        argv = ["--epochs", "3", "--limit", str(IMAGES), "--device", device, "--out", out, "--seed", "0"]
        exp = Experiment(command_line("exercise 10", epochs=3).parse_args(argv), "exercise10")
        noise = corruptions.corruption("gaussian:0.3")
        model = DenseAutoencoder((784, 64), activation="relu", device=device)
        optimizer = Adam(model.parameters(), lr=1e-2)
        before = [p.numpy().copy() for p in model.parameters()]
        case(f"a 784-64-784 denoising AE, Gaussian noise 0.3, 3 epochs on {IMAGES} MNIST images, Adam lr 1e-2")
        history, _ = exp.fit(
            "dae", model, optimizer, lambda x, rng: F.mse_loss(model(noise(x, rng)), x), [exp.data.x_train]
        )
        if any(np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters())):
            fail("a parameter never changed", "train_on_batch: loss = step(*args); zero_grad(); backward(); step()")
        batches = -(-IMAGES // 128) * 3
        steps = {state["step"] for state in optimizer.state_dict()["state"].values()}
        if steps != {batches}:
            fail(
                f"Adam took {sorted(steps)} steps, expected {batches} (a step per batch of 128 images, 3 epochs)",
                "train_on_batch runs once per batch: call optimizer.step() once in it",
            )
        if len(history) != 3 or not history[2] < history[0]:
            fail(
                f"the mean training loss per epoch is {history}; expected 3 values, falling",
                "return the loss of the batch: fit records it for the epoch's mean",
            )
        test = exp.data.x_test[:2000]
        out = exp.evaluate(model, noise(test, np.random.default_rng(1)))
        mse = float(((out - test) ** 2).mean())
        if mse > 0.03:  # a correct loop reaches 0.024; predicting the mean image gives 0.063
            fail(f"denoised test MSE {mse:.4f}, expected at most 0.03", "zero the gradients before each backward()")


# ------------------------------------------------- 11 the contractive penalty
def check_contractive_penalty(device: str) -> None:
    from ..autoencoders import contractive_penalty

    rng = np.random.default_rng(11)
    for n, shape, code in ((6, (1, 4, 4), 5), (1, (3,), 2), (4, (2, 3), 7)):
        case(f"x ({n}, {', '.join(map(str, shape))}), a code of {code} units (float64)")
        x = rng.random((n, *shape))
        inputs = int(np.prod(shape))
        weight, bias = rng.standard_normal((code, inputs)), rng.standard_normal(code)
        tensors = [_tensor(a, device, True) for a in (x, weight, bias)]
        penalty = contractive_penalty(*tensors)

        encoder = partial(_encoder, weight=weight, bias=bias)
        # row j of the Jacobian at x is the gradient of h_j: central differences with the one-hot weight e_j
        jacobians = [[numeric_vjp(encoder, e, row)[0] for e in np.eye(code)] for row in x.reshape(n, -1)]
        compare(
            "the penalty",
            penalty,
            np.mean([np.square(j).sum() for j in jacobians]),
            rtol=1e-6,
            hint="J = ∂h/∂x of h = σ(W x + b) is diag(h(1 - h)) W; the penalty is the batch mean of Σ J²",
        )
        penalty.backward()
        wants = numeric_vjp(partial(_penalty, device=device), 1.0, x, weight, bias)
        for name, tensor, want in zip(("x", "weight", "bias"), tensors, wants):
            compare(
                f"the gradient with respect to {name}",
                tensor.grad,
                want,
                rtol=1e-5,
                atol=1e-8,
                hint="build the penalty from minidl ops so that it has a gradient",
            )


def _penalty(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, device: str) -> np.ndarray:
    from ..autoencoders import contractive_penalty

    return backend.to_numpy(contractive_penalty(*(_tensor(a, device) for a in (x, weight, bias))).data)


def _encoder(v: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(weight @ v + bias)))


# ------------------------------------------------------------ 12 clustering
def check_clustering(device: str) -> None:
    from scipy.cluster.vq import kmeans2

    from ..autoencoders import cluster_accuracy, kmeans

    rng = np.random.default_rng(12)
    for name, labels, clusters in (
        ("identical labels and clusters", [0, 1, 2, 2], [0, 1, 2, 2]),
        ("clusters named by a permutation", [0, 0, 1, 1, 2], [2, 2, 0, 0, 1]),
        ("one cluster holding two labels", [0, 0, 1, 1], [0, 0, 0, 0]),
    ):
        case(f"cluster_accuracy: {name}: labels {labels}, clusters {clusters}")
        want = _best_permutation_accuracy(np.array(labels), np.array(clusters))
        compare(
            "cluster_accuracy",
            cluster_accuracy(np.array(labels), np.array(clusters)),
            want,
            hint="count (cluster, label) pairs, then the assignment with the most hits: "
            "scipy.optimize.linear_sum_assignment on -counts",
        )
    case("cluster_accuracy of 200 random labels in 5 classes against the best of all 120 maps")
    labels, clusters = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    compare("cluster_accuracy", cluster_accuracy(labels, clusters), _best_permutation_accuracy(labels, clusters))
    case("cluster_accuracy of arrays of different shapes")
    try:
        cluster_accuracy(np.zeros(3, int), np.zeros(4, int))
        fail("no error for labels (3,) and clusters (4,)", "raise ValueError naming both shapes")
    except ValueError:
        pass

    case("kmeans: 4 well separated blobs of 60 points in 5-D")
    centres = rng.standard_normal((4, 5)) * 10
    truth = np.repeat(np.arange(4), 60)
    points = centres[truth] + rng.standard_normal((240, 5))
    found = kmeans(points, 4, seed=0)
    if np.shape(found) != (240,):
        fail(f"kmeans returned shape {np.shape(found)}, expected (240,) (one label per point)")
    compare(
        "the accuracy of the clustering",
        _best_permutation_accuracy(truth, np.asarray(found)),
        1.0,
        hint="scipy.cluster.vq.kmeans2(points, k, minit='++', seed=...)",
    )
    if not np.array_equal(found, kmeans(points, 4, seed=0)):
        fail("two calls with seed 0 gave different clusters", "seed every run from `seed`")

    case("kmeans restarts: 10 overlapping blobs in 2-D, the best of 5 runs")
    points = rng.standard_normal((10, 2))[rng.integers(0, 10, 500)] * 3 + rng.standard_normal((500, 2))
    found = np.asarray(kmeans(points, 10, seed=0, restarts=5))
    cost = _distortion(points, found)
    single = [
        _distortion(points, kmeans2(points, 10, minit="++", seed=np.random.default_rng([0, r]))[1]) for r in range(5)
    ]
    if cost > min(single) * 1.02:
        fail(
            f"distortion {cost:.2f}; the best of 5 k-means++ runs reaches {min(single):.2f}",
            "run k-means `restarts` times and keep the labels of the run with the least distortion",
        )


def _best_permutation_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    k = int(max(labels.max(), clusters.max())) + 1
    return max(np.mean(np.array(p)[clusters] == labels) for p in itertools.permutations(range(k)))


def _distortion(points: np.ndarray, labels: np.ndarray) -> float:
    return float(sum(((points[labels == c] - points[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels)))
