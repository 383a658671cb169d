"""Every differentiable op, its first and second derivatives checked in float64 against central
differences (gradcheck, gradgradcheck) over hypothesis-generated shapes, strides, paddings,
kernel sizes and broadcasts: one table of tests that every op joins, on every device."""

import os

import numpy as np
import pytest
from conftest import leaf
from hypothesis import given
from hypothesis import strategies as st

import minidl as md
from minidl.nn import functional as F

seeds = st.integers(0, 2**16)
small_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


# Second derivatives of every op and case on the cpu. On emu and cuda, of the ops with kernels
# (kernel=True) in the cases of at most KERNEL_SECOND_ORDER_ELEMENTS input elements: each element
# costs two backward(create_graph=True) passes of emulated launches; the other ops' backward_graph is
# made of the same recorded ops on every device, each with its first derivative checked here.
SECOND_ORDER_OF_EVERY_CASE = os.environ.get("MINIDL_DEVICE", "cpu") == "cpu"
KERNEL_SECOND_ORDER_ELEMENTS = 60


def check(fn, inputs, kernel: bool = False) -> bool:
    """fn's gradients (gradcheck) and second derivatives (gradgradcheck: backward(create_graph=True))."""
    assert md.gradcheck(fn, inputs)
    small = sum(t.numel() for t in inputs if t.requires_grad) <= KERNEL_SECOND_ORDER_ELEMENTS
    return md.gradgradcheck(fn, inputs) if SECOND_ORDER_OF_EVERY_CASE or (kernel and small) else True


def randn(seed, shape, low=None):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape)
    return leaf(values if low is None else low + np.abs(values))


def away_from_zero(seed, shape, gap=0.1):
    """Values with |x| ≥ gap, so kinks (relu, abs, clamp) are not straddled by ε."""
    v = np.random.default_rng(seed).standard_normal(shape)
    return leaf(np.where(v >= 0, v + gap, v - gap))


@st.composite
def broadcast_pair(draw):
    shape = draw(small_shapes)
    other = tuple(draw(st.sampled_from([1, n])) for n in shape)
    other = other[draw(st.integers(0, len(other))) :]  # drop some leading dims too
    return (shape, other) if draw(st.booleans()) else (other, shape)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "pow"])
@given(shapes=broadcast_pair(), seed=seeds)
def test_binary_ops_with_broadcasting(op, shapes, seed):
    a = randn(seed, shapes[0], low=0.5 if op in ("pow", "div") else None)
    b = randn(seed + 1, shapes[1], low=0.5 if op in ("div", "pow") else None)
    fns = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "maximum": md.maximum,
        "minimum": md.minimum,
        "pow": lambda a, b: a**b,
    }
    assert check(fns[op], [a, b])


@pytest.mark.parametrize(
    "name,fn,positive",
    [
        ("neg", lambda x: -x, False),
        ("exp", lambda x: x.exp(), False),
        ("log", lambda x: x.log(), True),
        ("sqrt", lambda x: x.sqrt(), True),
        ("abs", lambda x: x.abs(), False),
        ("clamp", lambda x: x.clamp(-0.55, 0.45), False),
        ("pow_scalar", lambda x: x**3, False),
        ("rpow", lambda x: 2.0**x, False),
        ("scalar_arith", lambda x: (1 - x) / 3 + 2 * x, False),
        ("relu", F.relu, False),
        ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), False),
        ("sigmoid", F.sigmoid, False),
        ("tanh", F.tanh, False),
        ("softplus", F.softplus, False),
    ],
)
@given(shape=small_shapes, seed=seeds)
def test_unary_ops(name, fn, positive, shape, seed):
    x = randn(seed, shape, low=0.2) if positive else away_from_zero(seed, shape)
    if name == "clamp":  # keep ε away from the bounds
        v = x.numpy()
        x = leaf(np.where(np.abs(v + 0.55) < 0.05, v + 0.1, np.where(np.abs(v - 0.45) < 0.05, v + 0.1, v)))
    assert check(fn, [x])


@given(shape=small_shapes, seed=seeds)
def test_where(shape, seed):
    a, b = randn(seed, shape), randn(seed + 1, shape)
    cond = np.random.default_rng(seed).random(shape) > 0.5
    assert check(lambda a, b: md.where(cond, a, b), [a, b])


@st.composite
def reduction_case(draw):
    shape = draw(small_shapes)
    dims = draw(st.one_of(st.none(), st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True)))
    if dims is not None and draw(st.booleans()):
        dims = [d - len(shape) for d in dims]  # negative dims
    return shape, dims, draw(st.booleans())


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "var"])
@given(case=reduction_case(), seed=seeds)
def test_reductions(op, case, seed):
    shape, dims, keepdim = case
    x = randn(seed, shape)  # continuous values: amax/amin have no ties
    count = int(np.prod([shape[d] for d in dims])) if dims is not None else int(np.prod(shape))
    if op == "var" and count < 2:
        return
    assert check(lambda x: getattr(x, op)(dims, keepdim), [x])


@pytest.mark.parametrize("op", ["max", "min"])
@given(shape=small_shapes, data=st.data(), keepdim=st.booleans(), seed=seeds)
def test_max_and_min_along_a_dim(op, shape, data, keepdim, seed):
    """max(x, dim) and min(x, dim) give (values, indices); the gradient of the values goes to the index."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = randn(seed, shape)
    values, indices = getattr(x, op)(dim, keepdim)
    pick = np.argmax if op == "max" else np.argmin
    want = np.take_along_axis(x.numpy(), np.expand_dims(pick(x.numpy(), axis=dim), dim), axis=dim)
    np.testing.assert_array_equal(values.numpy(), want if keepdim else want.squeeze(dim))
    np.testing.assert_array_equal(indices.numpy(), np.expand_dims(pick(x.numpy(), dim), dim) if keepdim
                                  else pick(x.numpy(), dim))  # fmt: skip
    assert check(lambda x: getattr(x, op)(dim, keepdim).values, [x])


@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    m=st.integers(1, 4),
    vector=st.sampled_from(["none", "left", "right"]),
    seed=seeds,
)
def test_matmul(batch, n, k, m, vector, seed):
    a_shape = (k,) if vector == "left" else (*batch, n, k)
    b_shape = (k,) if vector == "right" else (*batch[1:], k, m)
    assert check(lambda a, b: a @ b, [randn(seed, a_shape), randn(seed + 1, b_shape)], kernel=True)


@given(
    lead=st.lists(st.integers(1, 3), min_size=1, max_size=2),
    fin=st.integers(1, 4),
    fout=st.integers(1, 4),
    bias=st.booleans(),
    seed=seeds,
)
def test_linear(lead, fin, fout, bias, seed):
    args = [randn(seed, (*lead, fin)), randn(seed + 1, (fout, fin))] + ([randn(seed + 2, (fout,))] if bias else [])
    assert check(F.linear, args, kernel=True)


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_shape_ops(shape, seed, data):
    x = randn(seed, shape)
    perm = data.draw(st.permutations(range(len(shape))))
    assert check(lambda x: x.reshape(-1) * md.arange(x.numel(), dtype=md.float64), [x])
    assert check(lambda x: x.permute(*perm), [x])
    assert check(lambda x: x.T, [x])
    assert check(lambda x: x.unsqueeze(0).flatten(), [x])
    pads = tuple(data.draw(st.integers(0, 2)) for _ in range(2 * len(shape)))
    assert check(lambda x: md.pad(x, pads, value=0.5), [x])


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_indexing(shape, seed, data):
    x = randn(seed, shape)
    start = data.draw(st.integers(0, shape[0] - 1))
    step = data.draw(st.integers(1, 2))
    assert check(lambda x: x[start::step], [x])
    assert check(lambda x: x[..., -1], [x])
    picks = data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5))  # repeats allowed
    assert check(lambda x: x[picks], [x])
    mask = np.random.default_rng(seed).random(shape) > 0.3
    assert check(lambda x: x[mask], [x])


@given(shape=small_shapes, count=st.integers(1, 3), seed=seeds, data=st.data())
def test_concat_and_stack(shape, count, seed, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    parts = []
    for i in range(count):
        s = list(shape)
        s[dim] = data.draw(st.integers(1, 3))
        parts.append(randn(seed + i, tuple(s)))
    assert check(lambda *p: md.concat(p, dim), parts)
    same = [randn(seed + i, shape) for i in range(count)]
    assert check(lambda *p: md.stack(p, dim), same)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@given(shape=small_shapes, seed=seeds, data=st.data())
def test_softmax_family(fn, shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert check(lambda x: fn(x, dim), [randn(seed, shape)])


@st.composite
def conv_case(draw, transpose=False):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = (
        draw(st.integers(0, kh - 1 if not transpose else kh)),
        draw(st.integers(0, kw - 1 if not transpose else kw)),
    )
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if transpose:
        h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
        if (h - 1) * sh - 2 * ph + kh + oph < 1 or (w - 1) * sw - 2 * pw + kw + opw < 1:
            ph = pw = 0
        return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw))
    h = draw(st.integers(max(1, kh - 2 * ph), 7))
    w = draw(st.integers(max(1, kw - 2 * pw), 7))
    return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), stride=(sh, sw), padding=(ph, pw))


@given(case=conv_case(), bias=st.booleans(), x_grad=st.booleans(), seed=seeds)
def test_conv2d(case, bias, x_grad, seed):
    x = randn(seed, (case["n"], case["c"], case["h"], case["w"])).requires_grad_(x_grad)  # first layers need no gx
    w = randn(seed + 1, (case["o"], case["c"], *case["k"]))
    args = [x, w] + ([randn(seed + 2, (case["o"],))] if bias else [])
    assert check(
        lambda *a: (
            F.conv2d(*a, stride=case["stride"], padding=case["padding"])
            if len(a) == 3
            else F.conv2d(*a, None, case["stride"], case["padding"])
        ),
        args,
        kernel=True,
    )


@given(case=conv_case(transpose=True), bias=st.booleans(), x_grad=st.booleans(), seed=seeds)
def test_conv_transpose2d(case, bias, x_grad, seed):
    x = randn(seed, (case["n"], case["c"], case["h"], case["w"])).requires_grad_(x_grad)
    w = randn(seed + 1, (case["c"], case["o"], *case["k"]))
    b = randn(seed + 2, (case["o"],)) if bias else None
    kw = dict(stride=case["stride"], padding=case["padding"], output_padding=case["output_padding"])
    if b is None:
        assert check(lambda x, w: F.conv_transpose2d(x, w, None, **kw), [x, w], kernel=True)
    else:
        assert check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), [x, w, b], kernel=True)


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h, w = draw(st.integers(kh, 7)), draw(st.integers(kw, 7))
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), k=(kh, kw), stride=stride, padding=padding
    )


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
@given(case=pool_case(), seed=seeds)
def test_pooling(pool, case, seed):
    x = leaf(np.random.default_rng(seed).permutation(np.prod(case["shape"])).reshape(case["shape"]) * 0.1)  # no ties
    assert check(lambda x: pool(x, case["k"], case["stride"], case["padding"]), [x], kernel=True)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@given(h=st.integers(1, 5), w=st.integers(1, 5), scale=st.sampled_from([1, 2, 3, 1.5, 0.5, (2, 3)]), seed=seeds)
def test_upsample(mode, h, w, scale, seed):
    factors = scale if isinstance(scale, tuple) else (scale, scale)
    if int(h * factors[0]) < 1 or int(w * factors[1]) < 1:
        return
    assert check(lambda x: F.upsample(x, scale, mode), [randn(seed, (2, 2, h, w))], kernel=True)


@given(shape=small_shapes, p=st.sampled_from([0.1, 0.5, 0.8]), seed=seeds)
def test_dropout_with_fixed_seed(shape, p, seed):
    def fn(x):
        md.manual_seed(seed)  # the same mask on every evaluation
        return F.dropout(x, p, training=True)

    assert check(fn, [randn(seed, shape)])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", ["mse", "bce", "bce_logits", "sigmoid_mse"])
@given(shape=small_shapes, seed=seeds, target_grad=st.booleans())
def test_losses(loss, reduction, shape, seed, target_grad):
    """With respect to the input and, where it requires grad, the target (as PyTorch differentiates
    both: BCE's target gradient is log(1 - p) - log p, the logits' -z)."""
    rng = np.random.default_rng(seed)
    target = leaf(rng.uniform(0.05, 0.95, shape), requires_grad=target_grad)
    if loss == "bce":
        x = leaf(rng.uniform(0.05, 0.95, shape))
        fn = lambda x, y: F.binary_cross_entropy(x, y, reduction)  # noqa: E731
    else:
        x = randn(seed, shape)
        fn = {
            "mse": lambda x, y: F.mse_loss(x, y, reduction),
            "bce_logits": lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction),
            "sigmoid_mse": lambda x, y: F.sigmoid_mse_loss(x, y, reduction),
        }[loss]
    assert check(fn, [x, target], kernel=loss in ("bce_logits", "sigmoid_mse"))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(n=st.integers(1, 4), c=st.integers(2, 5), seed=seeds)
def test_cross_entropy(reduction, n, c, seed):
    labels = np.random.default_rng(seed).integers(0, c, n)
    assert check(lambda z: F.cross_entropy(z, labels, reduction), [randn(seed, (n, c))])


def test_gradcheck_reports_the_wrong_element():
    class Wrong(md.Function):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * 3  # should be 2x

    with pytest.raises(md.GradcheckError, match=r"input 0 .* at element \(0,\)"):
        md.gradcheck(lambda x: Wrong.apply(x), [leaf([1.0, 2.0])])


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        md.gradcheck(lambda x: x * 2, [md.tensor([1.0], requires_grad=True)])
