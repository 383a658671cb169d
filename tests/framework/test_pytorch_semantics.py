"""What a PyTorch user writes does what PyTorch does (issue 36): views and version counters,
in-place operators, grad mode, the gradients of loss targets, edge gradients, promotion, half
precision, empty tensors. Each expectation is PyTorch's documented result, stated by hand or
by NumPy; where torch is installed, `torch_agrees` checks it against PyTorch too. The tensors are
made on the default device (MINIDL_DEVICE), so each leg checks its own device."""

import operator
import re

import numpy as np
import pytest

import minidl as md

try:
    import torch
except ImportError:
    torch = None


def torch_agrees(expected, compute):
    """Where PyTorch is installed, compute(torch) equals the stated expectation too."""
    if torch is None:
        return
    np.testing.assert_allclose(np.asarray(compute(torch), dtype=np.float64), expected, rtol=1e-6, equal_nan=True)


# ------------------------------------------------------------------ views and version counters
VIEWS = {
    "slice": lambda w: w[:2],
    "detach": lambda w: w.detach(),
    "reshape": lambda w: w.reshape(2, 2),
    "view": lambda w: w.view(2, 2),
    "transpose": lambda w: w.reshape(2, 2).transpose(0, 1),
    "permute": lambda w: w.reshape(2, 2).permute(1, 0),
    "unsqueeze": lambda w: w.unsqueeze(0),
}


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_step_through_a_views_base_refuses_a_stale_backward(view):
    """The loss used a view of w, then a step wrote w: backward ran with the stepped values
    (x.grad [0, 1, 2, 3] for [1, 2, 3, 4]); PyTorch raises, as views share their base's version."""
    w = md.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    v = view(w)
    x = md.ones(*v.shape, requires_grad=True)
    loss = (v * x).sum()
    w.grad = md.ones(4)
    md.optim.SGD([w], lr=1.0).step()
    assert v._version == w._version == 1
    with pytest.raises(RuntimeError, match="Mul needs for its gradient was changed in place"):
        loss.backward()


def test_a_write_through_a_view_bumps_its_base_and_the_base_sees_it():
    w = md.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = w.T
    loss_input = md.tensor([1.0, 1.0], requires_grad=True)
    loss = (w[0] * loss_input).sum()
    t += md.tensor([[10.0, 20.0], [30.0, 40.0]])  # t[i, j] is w[j, i]
    np.testing.assert_array_equal(w.numpy(), [[11, 32], [23, 44]])
    assert w._version == t._version == 1
    with pytest.raises(RuntimeError, match="Mul needs"):
        loss.backward()


def test_a_copy_does_not_share_the_version():
    """Index arrays copy (as in PyTorch): a step on w leaves the copy's graph valid."""
    w = md.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    x = md.ones(2, requires_grad=True)
    loss = (w[[0, 1]] * x).sum()
    with md.no_grad():
        w -= 1
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 2])  # the values when the loss was made
    torch_agrees([1, 2], _torch_copy_then_step)


def _torch_copy_then_step(torch):
    w, x = torch.tensor([1.0, 2, 3, 4], requires_grad=True), torch.ones(2, requires_grad=True)
    loss = (w[[0, 1]] * x).sum()
    with torch.no_grad():
        w -= 1
    loss.backward()
    return x.grad


# --------------------------------------------------------------------------- in-place operators
def test_in_place_operators_write_into_the_tensor():
    """`y = x; y += 1` left x unchanged (+= rebound y); PyTorch writes into x."""
    x = md.tensor([1.0, 2.0, 4.0])
    y = x
    y += 1
    y -= 0.5
    y *= 2
    y /= 4
    assert y is x
    np.testing.assert_array_equal(x.numpy(), [0.75, 1.25, 2.25])  # ((x + 1 - 0.5) * 2) / 4
    assert x._version == 4


def test_the_manual_sgd_update_of_the_tutorials_updates_the_parameter():
    """`p -= lr * p.grad` inside no_grad changed nothing; in PyTorch it updates p, which stays a leaf."""
    p = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (p * p).sum().backward()
    with md.no_grad():
        p -= 0.1 * p.grad  # p - 0.1 * 2p
    np.testing.assert_allclose(p.numpy(), [0.8, 1.6, 2.4], rtol=1e-6)
    assert p.is_leaf and p.requires_grad


IN_PLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv}


@pytest.mark.parametrize("symbol", IN_PLACE)
def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad(symbol):
    p = md.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape(symbol) + " on a leaf tensor that requires grad.*no_grad"):
        IN_PLACE[symbol](p, 2)
    with pytest.raises(RuntimeError, match="a view of a leaf tensor that requires grad"):
        IN_PLACE[symbol](p[:1], 2)
    np.testing.assert_array_equal(p.numpy(), [1, 2])


def test_in_place_does_not_broadcast_the_tensor_written_to():
    x = md.zeros(3)
    with pytest.raises(RuntimeError, match=r"result has shape \(2, 3\).*shape \(3,\)"):
        x += md.ones(2, 3)
    x += md.ones(1)  # the other operand broadcasts
    np.testing.assert_array_equal(x.numpy(), [1, 1, 1])


def test_in_place_refuses_a_result_the_dtype_cannot_hold():
    i = md.tensor([1, 2])
    with pytest.raises(RuntimeError, match="int64 tensor cannot hold"):
        i /= 2


def test_a_tensor_saved_for_backward_then_written_makes_backward_fail_naming_the_op():
    a = md.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    y = b * b  # Mul saves b
    b += 1
    with pytest.raises(RuntimeError, match="Mul needs for its gradient"):
        y.sum().backward()
    s = a.sigmoid()  # Sigmoid saves its output
    s += 1
    with pytest.raises(RuntimeError, match="output of Sigmoid"):
        s.sum().backward()


def test_in_place_on_a_computed_tensor_extends_its_graph():
    """y = 2a; y += a; y *= 3 gives y = 9a: dy/da = 9, as PyTorch."""
    a = md.tensor([1.0, 2.0], requires_grad=True)
    y = a * 2
    y += a
    y *= 3
    assert not y.is_leaf
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [9, 9])
    np.testing.assert_array_equal(y.detach().numpy(), [9, 18])


WRITES = {  # t = x * 1 (x = [[1, 2], [3, 4]]), then: a write and what the loss reads
    "an op that read t before keeps t's old history": lambda t: ((y := t * 2), t.__imul__(3), y)[2],
    "t += t.sum()": lambda t: (t.__iadd__(t.sum()), t)[1],
    "a view taken before follows t's values": lambda t: ((v := t[:1]), t.__imul__(2), v)[2],
    "t[0] = t[1]": lambda t: (t.__setitem__(0, t[1]), t)[1],
    "t[:, 0] = t[:, 1]": lambda t: (t.__setitem__((slice(None), 0), t[:, 1]), t)[1],
    "t += a view of t, reshaped": lambda t: (t.__iadd__(t.reshape(4).reshape(2, 2)), t)[1],
    "y = t * 2; t += 1; t -= y": lambda t: ((y := t * 2), t.__iadd__(1), t.__isub__(y), t)[3],
}


@pytest.mark.parametrize("name", WRITES)
def test_an_in_place_write_to_a_computed_tensor_gives_pytorchs_gradients(name):
    """The ops that read t before an in-place write keep t's old history, as PyTorch's edges do: a
    gradient went through the write (y = t * 2; t *= 3 gave 6 for 2), or t became its own input and
    the walk stopped without a word (t += t.sum(), t[0] = t[1]: no gradient at all)."""
    weights = np.array([[1.0, 10.0], [100.0, 1000.0]])

    def grad(lib, x):
        out = WRITES[name](x * 1.0)
        (out * lib.tensor(weights[: out.shape[0]])).sum().backward()
        return x.grad

    x = md.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    got = grad(md, x)
    assert got is not None, "no gradient reached x"
    torch_agrees(got.numpy(), lambda torch: grad(torch, torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True,
                                                                      dtype=torch.float64)))  # fmt: skip


def test_t_times_itself_in_place_is_refused_as_pytorch():
    """h *= h: Mul needs the old h for its gradient, which the write changed (h had made itself its own
    input, and backward gave no gradient without a word)."""
    h = md.tensor([1.0, 2.0], requires_grad=True) * 1.0
    h *= h
    with pytest.raises(RuntimeError, match="Mul needs for its gradient was changed in place"):
        h.sum().backward()


def test_item_assignment_writes_in_place_as_pytorch():
    """`t[index] = v` and `w[:2] += 1` raised TypeError (no item assignment); PyTorch writes into t."""
    x = md.zeros(2, 3)
    alias = x
    x[0] = 1
    x[:, 1] = md.tensor([5.0, 6.0])
    x[x > 5] = -1
    np.testing.assert_array_equal(alias.numpy(), [[1, 5, 1], [0, -1, 0]])
    assert x._version == 3
    i = md.tensor([1, 2, 3])
    i[0] = 2.7  # the value takes the tensor's dtype
    np.testing.assert_array_equal(i.numpy(), [2, 2, 3])
    w = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with md.no_grad():
        w[:2] += 1
    np.testing.assert_array_equal(w.numpy(), [2, 3, 3])
    with pytest.raises(RuntimeError, match=r"t\[\.\.\.\] = on a leaf tensor that requires grad"):
        w[0] = 5


def test_item_assignment_is_differentiable():
    """y = 2a; y[1] = 3v: dy/da = [2, 0, 2] (the overwritten entry gets none), dy/dv = 3, as PyTorch."""
    a = md.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=md.float64)
    v = md.tensor(10.0, requires_grad=True, dtype=md.float64)
    y = a * 2
    y[1] = v * 3
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [2, 0, 2])
    assert v.grad.item() == 3
    rows = md.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True, dtype=md.float64)
    row = md.tensor([1.0, -2.0, 0.5, 4.0], requires_grad=True, dtype=md.float64)
    assert md.gradcheck(lambda x, r: md.ops.setitem(x, ([0, 2], slice(None)), r * r), [rows, row])
    assert md.gradgradcheck(lambda x, r: md.ops.setitem(x, ([0, 2], slice(None)), r * r), [rows, row])


def test_a_grad_accumulates_into_its_own_array():
    """`g0 = x.grad` (and, on the host, `x.grad.numpy()`) sees the next backward's sum, as in PyTorch."""
    x = md.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    g0 = x.grad
    host = g0.numpy()
    (x * x).sum().backward()
    assert x.grad is g0
    np.testing.assert_array_equal(g0.numpy(), [4, 8])  # 2x + 2x
    if x.device == "cpu":
        np.testing.assert_array_equal(host, [4, 8])


# ---------------------------------------------------------------------------------- grad mode
def test_create_graph_records_the_backward_also_inside_no_grad():
    """Inside no_grad, grad(create_graph=True) gave a gradient that could not be differentiated;
    PyTorch sets grad mode to create_graph for the backward: d/dx Σ 3x² = 6x."""
    x = md.tensor([1.0, 2.0], requires_grad=True, dtype=md.float64)
    y = (x**3).sum()
    with md.no_grad():
        (g,) = md.autograd.grad(y, x, create_graph=True)
        assert not md.autograd.is_grad_enabled()
    assert g.requires_grad
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])
    z = md.tensor([1.0, 2.0], requires_grad=True, dtype=md.float64)
    cube = (z**3).sum()
    with md.no_grad():
        cube.backward(create_graph=True)  # z.grad = 3z², differentiable in its turn
    assert z.grad.requires_grad
    (hessian_row,) = md.autograd.grad(z.grad.sum(), z)
    np.testing.assert_allclose(hessian_row.numpy(), [6.0, 12.0])


def test_grad_of_several_outputs_works_inside_no_grad():
    """It summed the outputs with unrecorded ops inside no_grad, then found nothing to differentiate;
    PyTorch gives d(Σ x² + Σ 3x)/dx = 2x + 3."""
    x = md.tensor([1.0, 2.0], requires_grad=True)
    square, triple = x * x, (x * 3).sum()
    with md.no_grad():
        (g,) = md.autograd.grad([square, triple], x, grad_outputs=[md.ones(2), None])
    np.testing.assert_array_equal(g.numpy(), [5, 7])


def test_no_grad_and_enable_grad_decorate_generator_functions():
    """@no_grad() on a generator function recorded a graph in its body (the mode was set only while
    the generator was made); as torch's _DecoratorContextManager, it holds around each step."""
    x = md.tensor([1.0, 2.0], requires_grad=True)

    @md.no_grad()
    def doubled(t, times):
        for _ in range(times):
            sent = yield t * 2
            assert sent is None or sent == "next"
        return "done"

    made = list(doubled(x, 2))
    assert [m.requires_grad for m in made] == [False, False]
    assert md.autograd.is_grad_enabled()  # the caller's mode between and after the steps
    steps = doubled(x, 1)
    next(steps)
    with pytest.raises(StopIteration) as stop:
        steps.send("next")
    assert stop.value.value == "done"

    @md.enable_grad()
    def recorded(t):
        yield t * 2

    with md.no_grad():
        assert next(recorded(x)).requires_grad
        assert not md.autograd.is_grad_enabled()


# ------------------------------------------------------------------------ sigmoid at the edges
EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 3.5, -3.5, 30.0, -30.0, 88.0, -87.0, -100.0], np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_the_fused_bce_at_the_edges_as_pytorch(dtype):
    """σ(z) without overflow at ±inf, NaN passed on, the tails down to float32's denormals (σ(-100) ≈ 3.7e-44,
    to their spacing): against the float64 formula 1 / (1 + e^-z) (minidl computes e^min(z, 0) / (1 + e^-|z|)),
    and PyTorch where the result is not denormal (PyTorch's float32 1 / (1 + e^100) is 1 / inf = 0)."""
    z = EDGES.astype(dtype)
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-z.astype(np.float64)))
    got = md.tensor(z).sigmoid().numpy()
    assert got.dtype == dtype
    np.testing.assert_allclose(
        got,
        expected,
        rtol=2e-7 if dtype == np.float32 else 1e-15,
        atol=2 * np.finfo(dtype).smallest_subnormal,
        equal_nan=True,
    )
    normal = ~((expected > 0) & (expected < np.finfo(dtype).tiny))
    torch_agrees(got[normal], lambda torch: torch.sigmoid(torch.tensor(z[normal])))
    finite = z[np.isfinite(z)]
    y = np.linspace(0, 1, finite.size).astype(dtype)
    bce = md.nn.functional.binary_cross_entropy_with_logits(md.tensor(finite), md.tensor(y)).item()
    zz = finite.astype(np.float64)
    np.testing.assert_allclose(bce, np.mean(np.maximum(zz, 0) - zz * y + np.log1p(np.exp(-np.abs(zz)))), rtol=1e-6)
    torch_agrees(
        bce, lambda torch: torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(finite), torch.tensor(y))
    )


# ----------------------------------------------------------------------- gradients of targets
P = np.array([[0.3, 0.9], [0.5, 0.02]])
Y = np.array([[0.2, 0.7], [1.0, 0.4]])
Z = np.array([[3.6, -1.2], [0.0, 2.5]])
TARGET_GRADIENTS = {  # loss: (input, d loss/d target by hand, mean over 4 elements)
    "binary_cross_entropy": (P, (np.log1p(-P) - np.log(P)) / 4),
    "binary_cross_entropy_with_logits": (Z, -Z / 4),
    "mse_loss": (Z, -2 * (Z - Y) / 4),
    "sigmoid_mse_loss": (Z, -2 * (1 / (1 + np.exp(-Z)) - Y) / 4),
}


@pytest.mark.parametrize("name", TARGET_GRADIENTS)
def test_a_target_that_requires_grad_gets_its_gradient(name):
    """binary_cross_entropy(_with_logits) gave a target that requires grad no gradient; PyTorch does."""
    inputs, expected = TARGET_GRADIENTS[name]
    x = md.tensor(inputs, requires_grad=True, dtype=md.float64)
    y = md.tensor(Y, requires_grad=True, dtype=md.float64)
    getattr(md.nn.functional, name)(x, y).backward()
    np.testing.assert_allclose(y.grad.numpy(), expected, rtol=1e-12)
    if name != "sigmoid_mse_loss":  # minidl's own fused loss: PyTorch has none
        torch_agrees(expected, lambda torch: _torch_target_grad(torch, name, inputs))


def _torch_target_grad(torch, name, inputs):
    y = torch.tensor(Y, requires_grad=True)
    getattr(torch.nn.functional, name)(torch.tensor(inputs, requires_grad=True), y).backward()
    return y.grad


# ----------------------------------------------------------------------------- edge gradients
def _grad_of(fn, *values):
    """The gradients of fn(*tensors).sum() with respect to float64 leaves of values."""
    leaves = [md.tensor(v, requires_grad=True, dtype=md.float64) for v in values]
    fn(*leaves).sum().backward()
    return [t.grad.numpy() for t in leaves]


def test_relu_passes_the_gradient_at_nan_as_pytorch():
    """PyTorch's mask is x <= 0, so d relu/dx at NaN is 1 (minidl's x > 0 gave 0)."""
    (g,) = _grad_of(md.relu, [np.nan, -1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [1, 0, 0, 1])
    torch_agrees([1, 0, 0, 1], lambda torch: _torch_grad(torch, torch.relu, [np.nan, -1.0, 0.0, 2.0])[0])


def test_the_exponents_gradient_at_a_negative_base_is_nan():
    """d(a^b)/db = a^b log a: NaN for a < 0 (was 0), 0 at 0^(b ≥ 0), -inf at 0^(b < 0), as PyTorch."""
    a, b = [-2.0, 0.0, 0.0, 2.0], [2.0, 2.0, -1.0, 0.5]
    ga, gb = _grad_of(lambda x, y: x**y, a, b)
    np.testing.assert_allclose(ga, [-4.0, 0.0, -np.inf, 0.5 * 2**-0.5])
    np.testing.assert_allclose(gb, [np.nan, 0.0, -np.inf, 2**0.5 * np.log(2)])
    torch_agrees(gb, lambda torch: _torch_grad(torch, lambda x, y: x**y, a, b)[1])


VAR_EDGES = [  # values, correction, var, its gradient (PyTorch's var_backward: 2/(n-c)·(x - mean))
    ([np.inf, 1.0], 1, np.nan, [np.nan, -np.inf]),  # x - mean = [inf - inf, 1 - inf]
    ([1.0, 2.0], 2, np.inf, [np.inf, np.inf]),  # n = correction over every dim: +inf where x is not the mean
    ([3.0], 1, np.nan, [np.nan]),  # ... and NaN where it is
    ([3.0], 0, 0.0, [0.0]),
    ([1.0, 2.0, 4.0], 1, 7 / 3, [-4 / 3, -1 / 3, 5 / 3]),  # mean 7/3
]


@pytest.mark.parametrize("values, correction, value, grad", VAR_EDGES)
def test_var_and_its_gradient_at_the_edges_as_pytorch(values, correction, value, grad):
    x = md.tensor(values, requires_grad=True, dtype=md.float64)
    v = x.var(correction=correction)
    v.backward()
    np.testing.assert_allclose(v.item(), value)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-12)
    torch_agrees(grad, lambda torch: _torch_grad(torch, lambda t: t.var(correction=correction), values)[0])


def test_var_along_a_dim_of_correction_n_gives_signed_infinities():
    """Along a dim PyTorch's gradient is 2/(n - c)·(x - mean), c = n: ±inf by the side of the mean."""
    (g,) = _grad_of(lambda x: x.var(1, correction=2), [[1.0, 2.0], [3.0, 5.0]])
    np.testing.assert_array_equal(g, [[-np.inf, np.inf], [-np.inf, np.inf]])


def _torch_grad(torch, fn, *values):
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    fn(*leaves).sum().backward()
    return [t.grad for t in leaves]


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**70, [1, 2**64]])
def test_an_int_beyond_int64_overflows_as_pytorch(value):
    """md.tensor([2**63]) became uint64; PyTorch raises OverflowError."""
    with pytest.raises(OverflowError, match="int64's range"):
        md.tensor(value)
    assert md.tensor([2**63 - 1, -(2**63)]).dtype == np.int64


@pytest.mark.parametrize("reduce", ["sum", "mean", "amin", "amax", "var"])
@pytest.mark.parametrize("empty", [[], ()])
def test_an_empty_dim_list_reduces_every_dim(reduce, empty):
    """sum(dim=[]), mean(dim=()), amin(dim=()) reduced nothing; PyTorch reduces every dim."""
    values = np.array([[1.0, 2.0], [4.0, 8.0]])
    out = getattr(md.tensor(values), reduce)(dim=empty)
    expected = {"sum": 15.0, "mean": 3.75, "amin": 1.0, "amax": 8.0, "var": values.var(ddof=1)}[reduce]
    assert out.shape == ()
    np.testing.assert_allclose(out.item(), expected, rtol=1e-6)


# ---------------------------------------------------------------------------------- promotion
def _t(m, values, dtype):
    """A tensor of minidl or (m = torch) of PyTorch, of a NumPy dtype."""
    return m.tensor(np.asarray(values), dtype=dtype if m is md else getattr(torch, np.dtype(dtype).name))


PROMOTIONS = {  # name: (the expression in m = minidl or torch, PyTorch's result dtype, its values)
    "float32 with a 0-d float64 tensor": (lambda m: m.ones(2) + _t(m, 1.0, np.float64), np.float32, [2, 2]),
    "int32 with a 0-d int64 tensor": (lambda m: _t(m, [1, 2], np.int32) + _t(m, 1, np.int64), np.int32, [2, 3]),
    "int64 with a 0-d float64 tensor": (
        lambda m: _t(m, [1, 2], np.int64) + _t(m, 1.5, np.float64),
        np.float64,
        [2.5, 3.5],
    ),
    "int64 with a float32 tensor": (lambda m: m.maximum(_t(m, [1, 2], np.int64), m.ones(2)), np.float32, [1, 2]),
    "two 0-d tensors": (lambda m: _t(m, 1.0, np.float64) + _t(m, 1.0, np.float32), np.float64, 2.0),
    "bool with a 0-d int32 tensor": (lambda m: _t(m, [True, False], bool) + _t(m, 3, np.int32), np.int32, [4, 3]),
    "int64 with a Python float": (lambda m: _t(m, [1, 2], np.int64) * 1.5, np.float32, [1.5, 3]),
    "int64 ** 0.5": (lambda m: _t(m, [1, 4], np.int64) ** 0.5, np.float32, [1, 2]),
    "bool with a Python int": (lambda m: _t(m, [True], bool) + 1, np.int64, [2]),
    "int64 / int64": (lambda m: _t(m, [1, 2], np.int64) / _t(m, [4, 4], np.int64), np.float32, [0.25, 0.5]),
    "exp of int64": (lambda m: m.exp(_t(m, [0, 1], np.int64)), np.float32, [1, np.e]),
    "sqrt of int64": (lambda m: m.sqrt(_t(m, [4, 9], np.int64)), np.float32, [2, 3]),
    "sigmoid of int64": (lambda m: m.sigmoid(_t(m, [0], np.int64)), np.float32, [0.5]),
    "where of int64 and a Python float": (
        lambda m: m.where(_t(m, [1, 0], bool), _t(m, [1, 2], np.int64), 1.5),
        np.float32,
        [1, 1.5],
    ),  # fmt: skip
    "where of float32 and a 0-d float64": (
        lambda m: m.where(_t(m, [1, 0], bool), m.ones(2), _t(m, 3.0, np.float64)),
        np.float32,
        [1, 3],
    ),  # fmt: skip
    "concat of int32 and float32": (lambda m: m.concat([_t(m, [1], np.int32), m.ones(1)]), np.float32, [1, 1]),
    "stack of int64 and float64": (
        lambda m: m.stack([_t(m, [1], np.int64), _t(m, [2], np.float64)]),
        np.float64,
        [[1], [2]],
    ),
    "float16 * 1e5": (lambda m: _t(m, [0.001], np.float16) * 1e5, np.float16, [np.float16(np.float32(0.001) * 1e5)]),
    "float16 / 70000.0": (lambda m: _t(m, [7000], np.float16) / 70000.0, np.float16, [0.1]),
    "uint8 + 300 wraps": (lambda m: _t(m, [1, 2], np.uint8) + 300, np.uint8, [45, 46]),  # (1 + 300) mod 256
    "int8 * -200 wraps": (lambda m: _t(m, [1, 2], np.int8) * -200, np.int8, [56, 112]),  # -200 mod 256 = 56
    "uint8 - 1 wraps": (lambda m: _t(m, [0], np.uint8) - 1, np.uint8, [255]),
    "int32 * 2**40 wraps": (lambda m: _t(m, [3], np.int32) * 2**40, np.int32, [0]),
}


@pytest.mark.parametrize("name", PROMOTIONS)
def test_promotion_follows_pytorchs_rules(name):
    """0-d tensors and Python numbers do not raise a dimensioned tensor's category (float32 with a 0-d
    float64 was float64); float ops of integers give float32 (were float64); Python numbers meet float16
    in float32 (1e5 was inf); integers wrap (uint8 + 300 raised NumPy's OverflowError)."""
    make, dtype, values = PROMOTIONS[name]
    out = make(md)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy().astype(np.float64), values, rtol=1e-3 if dtype == np.float16 else 1e-6)
    if torch is not None:
        theirs = make(torch)
        assert str(theirs.dtype) == f"torch.{np.dtype(dtype).name}"
        np.testing.assert_allclose(theirs.numpy().astype(np.float64), out.numpy().astype(np.float64), rtol=1e-6)


def test_a_promoted_operand_gets_its_gradient_in_its_own_dtype():
    x = md.tensor([1.0, 2.0], requires_grad=True, dtype=md.float64)
    y = md.tensor([3.0, 4.0], requires_grad=True)
    (x.sum() * y).sum().backward()  # 0-d float64 with float32 is float32
    assert x.grad.dtype == np.float64 and y.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [7, 7])
    np.testing.assert_array_equal(y.grad.numpy(), [3, 3])


# ----------------------------------------------------------------------------- half precision
def _half(m, values):
    return _t(m, values, np.float16)


HALF = {  # name: (the expression in m = minidl or torch, PyTorch's result: float32 accumulation, rounded)
    "mean of 70,000 ones": (lambda m: _half(m, np.ones(70000)).mean(), 1.0),  # was inf
    "mean of 70,000 x 0.001": (lambda m: (_half(m, np.ones(70000)) * 0.001).mean(), np.float16(0.001)),
    "var of 1000, 1001, 1002": (lambda m: _half(m, [1000, 1001, 1002]).var(), 1.0),
    "sum of 70,000 ones": (lambda m: _half(m, np.ones(70000)).sum(), np.inf),  # 70000 > float16's 65504
    "sum of 3000 x 0.1": (lambda m: (_half(m, np.ones(3000)) * 0.1).sum(), np.float16(3000 * np.float16(0.1))),
    "mse_loss of 70,000": (
        lambda m: m.nn.functional.mse_loss(_half(m, np.ones(70000)), _half(m, np.zeros(70000))),
        1.0,
    ),
    "softmax": (lambda m: m.nn.functional.softmax(_half(m, [1, 2, 3]), 0)[2], np.exp(3) / np.exp([1, 2, 3]).sum()),
}


@pytest.mark.parametrize("name", HALF)
def test_half_precision_reductions_accumulate_in_float32(name):
    """PyTorch accumulates float16 in float32 and rounds the result back; float16 sums overflowed."""
    make, expected = HALF[name]
    out = make(md)
    assert out.dtype == np.float16
    np.testing.assert_allclose(float(out.item()), float(expected), rtol=1e-3)
    torch_agrees(out.item(), lambda torch: make(torch).item())


def test_half_precision_gradients_stay_half():
    x = _half(md, [1, 2, 3]).requires_grad_()
    x.mean().backward()
    assert x.grad.dtype == np.float16
    np.testing.assert_allclose(x.grad.numpy().astype(float), [1 / 3] * 3, rtol=1e-3)


# ------------------------------------------------------------------- empty tensors and matmul
@pytest.mark.parametrize("a_shape", [(3,), (2, 3), (4, 2, 3), (2, 1, 2, 3)], ids=str)
@pytest.mark.parametrize("b_shape", [(3,), (3, 2), (4, 3, 2), (1, 4, 3, 2)], ids=str)
def test_matmul_of_every_rank_pytorch_accepts(a_shape, b_shape):
    """1-D @ 1-D (the dot product) raised an internal IndexError in backward; every pair of ranks
    gives NumPy's matmul, and gradients that central differences confirm (gradcheck)."""
    rng = np.random.default_rng(0)
    a_values, b_values = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    a, b = (md.tensor(v, requires_grad=True, dtype=md.float64) for v in (a_values, b_values))
    np.testing.assert_allclose((a @ b).numpy(), a_values @ b_values, rtol=1e-12)
    assert md.gradcheck(lambda x, y: x @ y, [a, b])


def test_the_gradient_of_a_dot_product_is_the_other_vector():
    a, b = md.tensor([1.0, 2.0], requires_grad=True), md.tensor([3.0, 4.0], requires_grad=True)
    dot = a @ b
    dot.backward()
    assert dot.shape == () and dot.item() == 11
    np.testing.assert_array_equal(a.grad.numpy(), [3, 4])
    np.testing.assert_array_equal(b.grad.numpy(), [1, 2])


EMPTY = {  # name: (the expression in m = minidl or torch, PyTorch's shape, its values)
    "softmax over an empty dim": (lambda m: m.nn.functional.softmax(m.zeros(3, 0), 1), (3, 0), []),
    "log_softmax over an empty dim": (lambda m: m.nn.functional.log_softmax(m.zeros(3, 0), 1), (3, 0), []),
    "linear with 0 in-features": (
        lambda m: m.nn.functional.linear(m.zeros(2, 0), m.zeros(4, 0), m.ones(4)),
        (2, 4),
        np.ones((2, 4)),
    ),  # fmt: skip
    "x[[]]": (lambda m: m.ones(4, 3)[[]], (0, 3), []),
    "an empty batch of matrices": (lambda m: m.ones(2, 0, 3) @ m.ones(3, 4), (2, 0, 4), []),
    "an empty dot product": (lambda m: m.zeros(0) @ m.zeros(0), (), 0.0),
}


@pytest.mark.parametrize("name", EMPTY)
def test_empty_tensors_and_dims_give_pytorchs_results(name):
    """These raised NumPy's reduction and reshape errors (or IndexError); PyTorch returns results."""
    make, shape, values = EMPTY[name]
    x = make(md)
    assert x.shape == shape
    np.testing.assert_array_equal(x.numpy(), np.reshape(values, shape))
    torch_agrees(np.reshape(values, shape), make)


def test_empty_tensors_backpropagate():
    logits = md.zeros(3, 0, requires_grad=True)
    md.nn.functional.log_softmax(logits, 1).sum().backward()
    assert logits.grad.shape == (3, 0)
    x, w, b = md.zeros(2, 0, requires_grad=True), md.zeros(4, 0, requires_grad=True), md.ones(4, requires_grad=True)
    md.nn.functional.linear(x, w, b).sum().backward()
    assert x.grad.shape == (2, 0) and w.grad.shape == (4, 0)
    np.testing.assert_array_equal(b.grad.numpy(), [2, 2, 2, 2])  # one per row of the batch
    y = md.ones(4, 3, requires_grad=True)
    y[[]].sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), np.zeros((4, 3)))
