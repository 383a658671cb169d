"""One check per exercise: check_N(student) raises CheckFailed (grading.py) at the first wrong case.

A check runs in the grader's process. It makes each case's inputs, asks the student's process
for the outputs of the student's code (student.<probe>(...), probes.py), first, so that a stub
fails with its own message, and compares them with an independent reference computed here
(reference.py's loops, a formula, central finite differences in float64).
"""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np

from .. import loops
from ..gradcheck import numeric_vjp
from . import reference
from .grading import case, compare, fail
from .student import Student, StudentRaised

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


def _conv_arrays(rng, n, c, h, w, o, kernel, stride, padding):
    from ..ops.windows import output_size

    ho, wo = output_size(h, kernel[0], stride[0], padding[0]), output_size(w, kernel[1], stride[1], padding[1])
    return rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, *kernel)), rng.standard_normal((n, o, ho, wo))


# ------------------------------------------------------------ 1 unbroadcast
def check_unbroadcast(student: Student) -> None:
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
        compare("unbroadcast(grad, shape)", student.unbroadcast(g, shape), reference.unbroadcast(g, shape), hint=hint)
    for a_shape, b_shape in [((3, 1), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3))]:
        case(f"the gradients of a * b for a {a_shape} and b {b_shape} (float64, finite differences)")
        a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
        gy = rng.standard_normal(np.broadcast_shapes(a_shape, b_shape))
        ga, gb = student.mul_grads(a, b, gy)
        want_a, want_b = numeric_vjp(np.multiply, gy, a, b)
        compare("the gradient of a", ga, want_a, **FINITE_DIFFERENCES)
        compare("the gradient of b", gb, want_b, **FINITE_DIFFERENCES)


# ---------------------------------------------------------- 2 backward walk
def check_backward_walk(student: Student) -> None:
    rng = np.random.default_rng(2)
    x0 = rng.uniform(0.5, 1.5, 5)
    hint = "process a tensor only after every node that uses it has sent its gradient (Kahn's order), and add them"
    graphs = [  # probes.GRAPHS builds them
        ("chain", "a chain: y = (3x)²", 18 * x0),
        ("twice", "x used twice by one node: y = x · x", 2 * x0),
        ("diamond", "a diamond: y = (2x) · x²", 6 * x0**2),
        ("paths", "paths of different lengths: s = 2x, y = s · (3s)", 24 * x0),
    ]
    for graph, name, want in graphs:
        case(name)
        compare("x.grad", student.backward_walk(graph, x0), want, rtol=1e-12, hint=hint)

    case("a chain of 5000 ops (no recursion limit)")
    compare(
        "x.grad",
        student.backward_walk("deep", x0),
        np.full(5, 1.0001**5000),
        rtol=1e-9,
        hint="walk with a list or a stack, not recursion",
    )

    case("two backward() calls add into x.grad; a constant input gets no gradient")
    grad, constant_has_grad = student.backward_twice(x0)
    compare("x.grad after two backward()", grad, 2 * x0, rtol=1e-12, hint="a leaf adds each gradient to its .grad")
    if constant_has_grad:
        fail("a tensor that does not require grad was given a .grad", "skip inputs whose requires_grad is False")


# -------------------------------------------------------- 3 conv2d by im2col
def check_conv_im2col(student: Student) -> None:
    rng = np.random.default_rng(3)
    for n, c, h, w, o, kernel, stride, padding in CONV_CASES:
        case(f"x ({n}, {c}, {h}, {w}), kernel {kernel}, stride {stride}, padding {padding}")
        x, weight, _ = _conv_arrays(rng, n, c, h, w, o, kernel, stride, padding)
        compare(
            "im2col(x)",
            student.im2col(x, kernel, stride, padding),
            reference.im2col(x, kernel, stride, padding),
            hint="row (c, i, j), column (p, q, n) holds xpad[n, c, p·sh + i, q·sw + j]: the batch last",
        )
        compare(
            f"conv2d_output(x, w) with w {weight.shape}",
            student.conv2d_output(x, weight, stride, padding),
            loops.conv2d(x, weight, None, stride, padding),
            rtol=1e-9,
            hint="w.reshape(O, -1) @ cols is (O, Ho·Wo·N): reshape to (O, Ho, Wo, N), view it as (N, O, Ho, Wo)",
        )


# ------------------------------------------------------ 4 conv2d gradients
def check_conv_gradients(student: Student) -> None:
    rng = np.random.default_rng(4)
    for n, c, h, w, o, kernel, stride, padding in CONV_CASES:
        case(f"x ({n}, {c}, {h}, {w}), w ({o}, {c}, {kernel[0]}, {kernel[1]}), stride {stride}, padding {padding}")
        x, weight, gy = _conv_arrays(rng, n, c, h, w, o, kernel, stride, padding)
        extra = tuple(
            d - ((e - 1) * s - 2 * p + k) for d, e, s, p, k in zip((h, w), gy.shape[2:], stride, padding, kernel)
        )
        compare(
            "the input gradient conv2d_input_grad(gy, w)",
            student.conv2d_input_grad(gy, weight, (h, w), stride, padding),
            loops.conv_transpose2d(gy, weight, None, stride, padding, extra),
            rtol=1e-9,
            hint="gx = wᵀ-matmul of gy, then add each window's column back where it came from (col2im)",
        )
        compare(
            "the weight gradient conv2d_weight_grad(x, gy)",
            student.conv2d_weight_grad(x, gy, kernel, stride, padding),
            reference.conv2d_weight_grad(x, gy, kernel, stride, padding),
            rtol=1e-9,
            hint="gw = gy as (O, Ho·Wo·N), the batch moved last as in cols, @ cols(x)ᵀ",
        )

    case("finite differences (float64): x (2, 2, 5, 5), w (3, 2, 3, 3), stride 2, padding 1")
    x, weight, gy = _conv_arrays(rng, 2, 2, 5, 5, 3, (3, 3), (2, 2), (1, 1))
    want_gx, want_gw = numeric_vjp(partial(loops.conv2d, b=None, stride=(2, 2), padding=(1, 1)), gy, x, weight)
    got_gx = student.conv2d_input_grad(gy, weight, (5, 5), (2, 2), (1, 1))
    compare("the input gradient", got_gx, want_gx, **FINITE_DIFFERENCES)
    got_gw = student.conv2d_weight_grad(x, gy, (3, 3), (2, 2), (1, 1))
    compare("the weight gradient", got_gw, want_gw, **FINITE_DIFFERENCES)

    for stride, padding, extra in [((2, 2), (1, 1), (1, 1)), ((1, 1), (0, 0), (0, 0)), ((2, 1), (0, 1), (1, 0))]:
        case(
            f"conv_transpose2d, the adjoint: x (2, 3, 4, 5), w (3, 2, 3, 3), stride {stride}, padding {padding}, "
            f"output_padding {extra}"
        )
        x, weight = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 3, 3))
        want_y = loops.conv_transpose2d(x, weight, None, stride, padding, extra)
        compare(
            "conv_transpose2d(x, w)",
            student.conv_transpose2d(x, weight, stride, padding, extra),
            want_y,
            rtol=1e-9,
            hint="its forward is conv2d's input gradient",
        )
        gy = rng.standard_normal(want_y.shape)
        gx, gw = student.conv_transpose2d_grads(x, weight, stride, padding, extra, gy)
        forward = partial(loops.conv_transpose2d, b=None, stride=stride, padding=padding, output_padding=extra)
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


def check_max_pool_kernel(student: Student) -> None:
    rng = np.random.default_rng(5)
    for dtype, (shape, kernel, stride, padding) in itertools.product(DTYPES, POOL_CASES):
        case(f"max_pool2d {np.dtype(dtype).name}: x {shape}, kernel {kernel}, stride {stride}, padding {padding}")
        x = (rng.permutation(np.prod(shape)) / np.prod(shape)).reshape(shape).astype(dtype)  # distinct values
        want_y = loops.pool2d(x, kernel, stride, padding, np.max)
        compare(
            "max_pool2d_forward's y",
            student.max_pool2d(x, kernel, stride, padding),
            want_y,
            **TOLERANCE[dtype],
            hint="the window of output (p, q) starts at row p·SH - PH, column q·SW - PW; skip rows and columns "
            "outside the image",
        )
        gy = rng.standard_normal(want_y.shape).astype(dtype)
        compare(
            "max_pool2d_backward's gx",
            student.max_pool2d_grad(x, kernel, stride, padding, gy),
            reference.max_pool2d_backward(x, gy, kernel, stride, padding),
            **TOLERANCE[dtype],
            hint="input pixel (h, w) adds gy of every window whose argmax it is",
        )

    case("max_pool2d float64 with ties (a constant image): the first maximum in the window wins")
    x = np.ones((1, 1, 4, 4))
    gy = rng.standard_normal((1, 1, 3, 3))
    compare(
        "gx",
        student.max_pool2d_grad(x, 2, 1, 0, gy),
        reference.max_pool2d_backward(x, gy, (2, 2), (1, 1), (0, 0)),
        hint="replace the best only when a value is strictly greater (v > best)",
    )

    case("finite differences (float64): x (1, 2, 5, 5), kernel 3, stride 2, padding 1")
    x = rng.permutation(50).reshape(1, 2, 5, 5) / 50.0
    gy = rng.standard_normal((1, 2, 3, 3))
    got = student.max_pool2d_grad(x, 3, 2, 1, gy)
    (want,) = numeric_vjp(lambda x: np.asarray(student.max_pool2d(x, 3, 2, 1)), gy, x, eps=1e-4)
    compare("gx", got, want, **FINITE_DIFFERENCES)


# ----------------------------------------------- 6 fused sigmoid + loss kernel
def check_sigmoid_loss_kernel(student: Student) -> None:
    rng = np.random.default_rng(6)
    for dtype, count, kind, reduction in itertools.product(
        DTYPES, (1, 255, 257, 5000, 300_001), ("bce", "mse"), ("mean", "sum")
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
        loss, grad, again = student.sigmoid_loss(kind, z.astype(dtype), y.astype(dtype), reduction)
        tolerance = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
        compare(
            "the loss",
            loss,
            scale * elementwise.sum(),
            **tolerance,
            hint="sum each block's values with block_sum, one partial per block, then sum the partials",
        )
        compare(
            "the gradient with respect to the logits",
            grad,
            scale * dz,
            **tolerance,
            hint="grad[i] = scale · dl/dz; compute sigmoid as e/(1 + e) with e = exp(-|z|), stable for any z",
        )
        if not np.array_equal(again, loss):
            fail("the same inputs gave two different losses", "add the partial sums in a fixed order (no atomics)")


# -------------------------------------------------------------------- 7 Adam
ADAM_CASES = [
    dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
]


def _check_adam(student: Student, dtypes, shape, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for dtype, hyper in itertools.product(dtypes, ADAM_CASES):
        p0 = rng.standard_normal(shape)
        grads = [rng.standard_normal(shape) for _ in range(5)]
        case(f"Adam {np.dtype(dtype).name}, parameter {shape}, 5 steps, {hyper}")
        after = student.adam(p0.astype(dtype), [g.astype(dtype) for g in grads], hyper)
        if not isinstance(after, list) or len(after) != 5:
            fail("the probe did not return the parameter after each of 5 steps")
        for t in range(1, 6):
            compare(
                f"the parameter after step {t}",
                after[t - 1],
                reference.adam(p0, grads[:t], **hyper),
                **TOLERANCE[dtype],
                hint="m and v are updated in place each step; step_size = lr / (1 - β1^t) and "
                "bias2_sqrt = sqrt(1 - β2^t) carry the bias corrections",
            )


def check_adam(student: Student) -> None:
    _check_adam(student, (np.float64,), (7, 5), seed=7)


def check_adam_kernel(student: Student) -> None:
    _check_adam(student, DTYPES, (1000,), seed=8)
    _check_adam(student, (np.float32,), (3,), seed=9)


# ------------------------------------------------------------- 9 corruptions
def _described(value) -> str:
    return f"an array {value.shape} {value.dtype}" if isinstance(value, np.ndarray) else str(value)


def check_corruptions(student: Student) -> None:
    x = np.full((200, 784), 0.5, dtype=np.float32)
    n = x.size
    for name, corrupt in (
        ("gaussian(x, rng, sigma=0.1, clip=False)", lambda seed: student.gaussian(x, seed, 0.1, False)),
        ("salt_and_pepper(x, rng, 0.3)", lambda seed: student.salt_and_pepper(x, seed, 0.3)),
    ):
        case(f"{name} on a (200, 784) float32 batch of 0.5: shape, dtype, input kept, repeatable")
        out, after = corrupt(0)
        if not isinstance(out, np.ndarray) or out.shape != x.shape or out.dtype != x.dtype:
            fail(f"{name} returned {_described(out)}, expected an array {x.shape} float32", "draw with dtype=x.dtype")
        if not np.array_equal(after, x):
            fail(f"{name} changed its input", "return a new array; do not write into x")
        if not np.array_equal(out, corrupt(0)[0]):
            fail(f"{name} gave two results for one seed", "draw every random number from rng")

    case("gaussian noise: mean 0 and standard deviation sigma")
    noise = student.gaussian(x, 1, 0.1, False)[0] - x
    if abs(noise.mean()) > 5 * 0.1 / np.sqrt(n) or abs(noise.std() / 0.1 - 1) > 0.02:
        fail(
            f"the noise has mean {noise.mean():.5f} and standard deviation {noise.std():.5f}; expected 0 and 0.1",
            "x + sigma · rng.standard_normal(x.shape)",
        )
    case("gaussian with clip=True (sigma 1) stays in [0, 1] and reaches both ends")
    clipped = student.gaussian(x, 2, 1.0, True)[0]
    if clipped.min() != 0 or clipped.max() != 1:
        fail(f"values from {clipped.min()} to {clipped.max()}; expected exactly [0, 1]", "clip(0, 1) when clip is True")
    case("gaussian with sigma 0 changes nothing")
    compare("gaussian(x, rng, 0)", student.gaussian(x, 3, 0.0, True)[0], x)

    case("salt_and_pepper(x, rng, 0.3): 30 % of the pixels become 0 or 1, half of them 1")
    out = student.salt_and_pepper(x, 4, 0.3)[0]
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
        out = student.salt_and_pepper(x, 5, fraction)[0]
        if want is not None:
            compare("the output", out, want)
        elif not set(np.unique(out)) <= {0.0, 1.0}:
            fail("with fraction 1 every pixel must be 0 or 1")


# ----------------------------------------------------- 10 the training loop
IMAGES = 10_000  # training images of the check
TEST_IMAGES = 2000


def check_training_loop(student: Student) -> None:
    from ..data import load_mnist

    case(f"a 784-64-784 denoising AE, Gaussian noise 0.3, 3 epochs on {IMAGES} MNIST images, Adam lr 1e-2")
    result = student.train_denoiser(IMAGES, 3, TEST_IMAGES)
    if not all(result["changed"]):
        fail("a parameter never changed", "train_on_batch: loss = step(*args); zero_grad(); backward(); step()")
    batches = -(-IMAGES // 128) * 3
    if set(result["steps"]) != {batches}:
        fail(
            f"Adam took {sorted(set(result['steps']))} steps, expected {batches} (a step per batch of 128 images, "
            "3 epochs)",
            "train_on_batch runs once per batch: call optimizer.step() once in it",
        )
    history = result["history"]
    if len(history) != 3 or not history[2] < history[0]:
        fail(
            f"the mean training loss per epoch is {history}; expected 3 values, falling",
            "return the loss of the batch: fit records it for the epoch's mean",
        )
    test = load_mnist(verbose=False).x_test[:TEST_IMAGES]
    denoised = result["denoised"]
    if not isinstance(denoised, np.ndarray) or denoised.shape != test.shape:
        fail(f"the denoised test images are {_described(denoised)}, expected an array {test.shape}")
    mse = float(((denoised - test) ** 2).mean())
    if not mse <= 0.03:  # a correct loop reaches 0.024; predicting the mean image gives 0.063
        fail(f"denoised test MSE {mse:.4f}, expected at most 0.03", "zero the gradients before each backward()")


# ------------------------------------------------- 11 the contractive penalty
def check_contractive_penalty(student: Student) -> None:
    rng = np.random.default_rng(11)
    for n, shape, code in ((6, (1, 4, 4), 5), (1, (3,), 2), (4, (2, 3), 7)):
        case(f"x ({n}, {', '.join(map(str, shape))}), a code of {code} units (float64)")
        x = rng.random((n, *shape))
        inputs = int(np.prod(shape))
        weight, bias = rng.standard_normal((code, inputs)), rng.standard_normal(code)
        penalty, *grads = student.contractive_penalty(x, weight, bias)

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
        wants = numeric_vjp(lambda *a: np.asarray(student.contractive_penalty_value(*a)), 1.0, x, weight, bias)
        for name, got, want in zip(("x", "weight", "bias"), grads, wants):
            compare(
                f"the gradient with respect to {name}",
                got,
                want,
                rtol=1e-5,
                atol=1e-8,
                hint="build the penalty from minidl ops so that it has a gradient",
            )


def _encoder(v: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(weight @ v + bias)))


# ------------------------------------------------------------ 12 clustering
def check_clustering(student: Student) -> None:
    from scipy.cluster.vq import kmeans2

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
            student.cluster_accuracy(np.array(labels), np.array(clusters)),
            want,
            hint="count (cluster, label) pairs, then the assignment with the most hits: "
            "scipy.optimize.linear_sum_assignment on -counts",
        )
    case("cluster_accuracy of 200 random labels in 5 classes against the best of all 120 maps")
    labels, clusters = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    want = _best_permutation_accuracy(labels, clusters)
    compare("cluster_accuracy", student.cluster_accuracy(labels, clusters), want)
    case("cluster_accuracy of arrays of different shapes")
    try:
        student.cluster_accuracy(np.zeros(3, int), np.zeros(4, int))
    except StudentRaised as e:
        if e.kind != "ValueError":
            raise
    else:
        fail("no error for labels (3,) and clusters (4,)", "raise ValueError naming both shapes")

    case("kmeans: 4 well separated blobs of 60 points in 5-D")
    centres = rng.standard_normal((4, 5)) * 10
    truth = np.repeat(np.arange(4), 60)
    points = centres[truth] + rng.standard_normal((240, 5))
    found = student.kmeans(points, 4, 0)
    if np.shape(found) != (240,):
        fail(f"kmeans returned {_described(found)}, expected shape (240,) (one label per point)")
    compare(
        "the accuracy of the clustering",
        _best_permutation_accuracy(truth, np.asarray(found)),
        1.0,
        hint="scipy.cluster.vq.kmeans2(points, k, minit='++', seed=...)",
    )
    if not np.array_equal(found, student.kmeans(points, 4, 0)):
        fail("two calls with seed 0 gave different clusters", "seed every run from `seed`")

    case("kmeans restarts: 10 overlapping blobs in 2-D, the best of 5 runs")
    points = rng.standard_normal((10, 2))[rng.integers(0, 10, 500)] * 3 + rng.standard_normal((500, 2))
    found = np.asarray(student.kmeans(points, 10, 0, 5))
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
