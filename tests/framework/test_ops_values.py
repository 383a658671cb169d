"""Forward values of every op family against independent references (loops, formulas, known values)."""

import numpy as np
import pytest
from conftest import leaf
from hypothesis import given
from hypothesis import strategies as st
from test_gradcheck_ops import conv_case, pool_case

import minidl as md
from minidl.lab import reference
from minidl.nn import functional as F


def values(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


@given(case=conv_case(), seed=st.integers(0, 999))
def test_conv2d_matches_loops(case, seed):
    x = values(seed, (case["n"], case["c"], case["h"], case["w"]))
    w = values(seed + 1, (case["o"], case["c"], *case["k"]))
    b = values(seed + 2, (case["o"],))
    got = F.conv2d(leaf(x), leaf(w), leaf(b), case["stride"], case["padding"]).numpy()
    np.testing.assert_allclose(got, reference.conv2d(x, w, b, case["stride"], case["padding"]), atol=1e-12)


@given(case=conv_case(transpose=True), seed=st.integers(0, 999))
def test_conv_transpose2d_matches_scatter_loops(case, seed):
    x = values(seed, (case["n"], case["c"], case["h"], case["w"]))
    w = values(seed + 1, (case["c"], case["o"], *case["k"]))
    got = F.conv_transpose2d(leaf(x), leaf(w), None, case["stride"], case["padding"], case["output_padding"])
    expect = reference.conv_transpose2d(x, w, None, case["stride"], case["padding"], case["output_padding"])
    assert got.shape == expect.shape
    np.testing.assert_allclose(got.numpy(), expect, atol=1e-12)


def test_conv_output_sizes_follow_pytorch_formulas():
    x = md.zeros(1, 1, 28, 28)
    sizes = []
    for layer in [
        md.nn.Conv2d(1, 16, 3, 2, 1),
        md.nn.Conv2d(16, 32, 3, 2, 1),
        md.nn.Conv2d(32, 64, 3, 1, 1),
        md.nn.ConvTranspose2d(64, 32, 3, 1, 1),
        md.nn.ConvTranspose2d(32, 16, 3, 2, 1, 1),
        md.nn.ConvTranspose2d(16, 1, 3, 2, 1, 1),
    ]:
        x = layer(x)
        sizes.append(x.shape)
    assert sizes == [(1, 16, 14, 14), (1, 32, 7, 7), (1, 64, 7, 7), (1, 32, 7, 7), (1, 16, 14, 14), (1, 1, 28, 28)]


def test_conv_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="expects 3 input channels"):
        F.conv2d(md.zeros(1, 2, 5, 5), md.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match="NCHW"):
        F.conv2d(md.zeros(2, 5, 5), md.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="output size"):
        F.conv2d(md.zeros(1, 1, 2, 2), md.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(md.zeros(1, 1, 2, 2), md.zeros(1, 1, 3, 3), stride=2, output_padding=2)
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        F.conv2d(md.zeros(1, 1, 5, 5), md.zeros(1, 1, 3, 3), stride="2")


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_case(), seed=st.integers(0, 999))
def test_pooling_matches_loops(kind, case, seed):
    x = values(seed, case["shape"])
    stride = case["stride"] or case["k"]
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    got = pool(leaf(x), case["k"], case["stride"], case["padding"]).numpy()
    expect = reference.pool2d(x, case["k"], stride, case["padding"], np.max if kind == "max" else np.mean)
    np.testing.assert_allclose(got, expect, atol=1e-12)


def test_max_pool_gradient_goes_to_the_first_maximum():
    x = leaf(np.array([[[[1.0, 3.0], [3.0, 0.0]]]]))
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0, 1], [0, 0]]]])


def test_the_lectures_worked_example():
    """CS8004's conv AE by hand, its numbers from the slides: a 6×6 image, 3×3 conv (SAME padding) +
    ReLU, 2×2 max-pool, 3×3 conv + ReLU, 2× nearest upsampling; on a batch-last and an NCHW copy."""
    image = [[0, 1, 4, 2, 8, 2], [5, 3, 0, 1, 0, 5], [1, 5, 3, 2, 9, 3], [9, 8, 5, 7, 8, 7], [7, 2, 7, 9, 9, 4],
             [7, 1, 8, 7, 5, 3]]  # fmt: skip
    first, second = [[1, 0, 1], [0, -1, 1], [1, 1, 0]], [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    conv = F.conv2d(leaf(np.array(image)[None, None]), leaf(np.array(first)[None, None]), padding=1)
    np.testing.assert_array_equal(conv.numpy()[0, 0][[0, 5]], [[6, 11, 1, 7, -5, 3], [-4, 21, 10, 14, 11, 6]])
    pooled = F.max_pool2d(F.relu(conv), 2)
    np.testing.assert_array_equal(pooled.numpy()[0, 0], [[11, 16, 20], [20, 29, 22], [27, 28, 21]])
    code = F.relu(F.conv2d(pooled, leaf(np.array(second)[None, None]), padding=1))
    np.testing.assert_array_equal(code.numpy()[0, 0], [[56, 78, 49], [88, 126, 86], [75, 98, 72]])
    up = F.upsample(code, 2).numpy()[0, 0]
    np.testing.assert_array_equal(up[::2, ::2], code.numpy()[0, 0])
    np.testing.assert_array_equal(up, np.kron(code.numpy()[0, 0], np.ones((2, 2))))


@pytest.mark.parametrize("layout", ["batch last", "a slice"])
def test_pooling_and_upsampling_read_any_layout(layout):
    """conv2d's array path returns its output stored batch last; pooling and upsampling (values and
    gradients) must not care how their input is stored."""
    x = values(0, (3, 2, 6, 8))
    if layout == "batch last":
        base = leaf(np.ascontiguousarray(x.transpose(1, 2, 3, 0)))
        stored, back = lambda: base.permute(3, 0, 1, 2), lambda g: g.transpose(3, 0, 1, 2)
    else:
        base = leaf(np.pad(x, ((0, 0), (0, 1), (0, 0), (1, 0))))
        stored, back = lambda: base[:, :2, :, 1:], lambda g: g[:, :2, :, 1:]
    for op in (lambda t: F.max_pool2d(t, 2), lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: F.upsample(t, 2)):
        nchw, view = leaf(x), stored()
        assert not view.data.flags.c_contiguous
        expect, got = op(nchw), op(view)
        np.testing.assert_array_equal(got.numpy(), expect.numpy())
        g = md.tensor(values(1, expect.shape), dtype=md.float64)
        base.grad = None
        expect.backward(g), got.backward(g)
        np.testing.assert_array_equal(back(base.grad.numpy()), nchw.grad.numpy())


def test_upsample_nearest_known_values():
    x = md.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expect = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    np.testing.assert_array_equal(F.upsample(x, 2).numpy()[0, 0], expect)


@given(h=st.integers(1, 6), w=st.integers(1, 6), scale=st.sampled_from([2, 3, 1.5]), seed=st.integers(0, 999))
def test_upsample_bilinear_matches_loops(h, w, scale, seed):
    x = values(seed, (1, 2, h, w))
    got = F.upsample(leaf(x), scale, "bilinear").numpy()
    np.testing.assert_allclose(got, reference.upsample_bilinear(x, scale), atol=1e-12)


def test_upsample_unknown_mode():
    with pytest.raises(ValueError, match="unknown mode 'cubic'"):
        F.upsample(md.zeros(1, 1, 2, 2), 2, "cubic")


def test_activation_formulas():
    z = np.linspace(-5, 5, 11)
    t = leaf(z, requires_grad=False)
    np.testing.assert_allclose(F.sigmoid(t).numpy(), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(F.tanh(t).numpy(), np.tanh(z))
    np.testing.assert_allclose(F.softplus(t).numpy(), np.log1p(np.exp(z)))
    np.testing.assert_allclose(F.relu(t).numpy(), np.maximum(z, 0))
    np.testing.assert_allclose(F.leaky_relu(t, 0.1).numpy(), np.where(z > 0, z, 0.1 * z))
    s = F.softmax(leaf(z.reshape(1, -1)), 1).numpy()
    np.testing.assert_allclose(s[0], np.exp(z) / np.exp(z).sum(), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(leaf(z.reshape(1, -1)), 1).numpy(), np.log(s), rtol=1e-12)


def test_reductions_match_numpy(rng):
    x = rng.standard_normal((3, 4, 5))
    t = leaf(x, requires_grad=False)
    np.testing.assert_allclose(t.sum(1).numpy(), x.sum(1))
    np.testing.assert_allclose(t.mean((0, 2), keepdim=True).numpy(), x.mean((0, 2), keepdims=True))
    np.testing.assert_allclose(t.max(axis=2, keepdims=True).numpy(), x.max(2, keepdims=True))
    np.testing.assert_allclose(t.min(-1).values.numpy(), x.min(-1))
    np.testing.assert_array_equal(t.min(-1).indices.numpy(), x.argmin(-1))
    np.testing.assert_allclose(t.var(1).numpy(), x.var(1, ddof=1))
    np.testing.assert_allclose(t.var(correction=0).numpy(), x.var())
    with pytest.raises(IndexError, match="out of range"):
        t.sum(3)


def test_max_ties_share_the_gradient():
    x = leaf([2.0, 2.0, 1.0])
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5, 0.0])


def test_loss_formulas(rng):
    y = rng.random((4, 3))
    p = rng.uniform(0.01, 0.99, (4, 3))
    z = rng.standard_normal((4, 3)) * 3
    s = 1 / (1 + np.exp(-z))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    cases = [
        (F.mse_loss(leaf(p), leaf(y)), ((p - y) ** 2).mean()),
        (F.mse_loss(leaf(p), leaf(y), "sum"), ((p - y) ** 2).sum()),
        (F.binary_cross_entropy(leaf(p), leaf(y)), bce.mean()),
        (
            F.binary_cross_entropy_with_logits(leaf(z), leaf(y), "sum"),
            (-(y * np.log(s) + (1 - y) * np.log(1 - s))).sum(),
        ),
        (F.sigmoid_mse_loss(leaf(z), leaf(y)), ((s - y) ** 2).mean()),
    ]
    for got, expect in cases:
        np.testing.assert_allclose(got.item(), expect, rtol=1e-10)
    labels = np.array([0, 2, 1, 1])
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    np.testing.assert_allclose(F.cross_entropy(leaf(z), labels).item(), -logp[np.arange(4), labels].mean(), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_stay_finite_for_huge_logits(dtype):
    z = md.tensor([[1000.0, -1000.0, 0.0, 1000.0]], requires_grad=True, dtype=dtype)
    y = md.tensor([[0.0, 1.0, 0.5, 1.0]], dtype=dtype)
    for loss in (F.binary_cross_entropy_with_logits(z, y), F.sigmoid_mse_loss(z, y), F.cross_entropy(z, [0])):
        z.grad = None
        loss.backward()
        assert np.isfinite(loss.item()) and np.isfinite(z.grad.numpy()).all()
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(z, y, "sum").item(), 1000 + 1000 + np.log(2), rtol=1e-6
    )
    p = md.tensor([[1.0, 0.0]])
    assert F.binary_cross_entropy(p, md.tensor([[0.0, 1.0]]), "sum").item() == pytest.approx(200.0)


def test_loss_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        F.mse_loss(md.zeros(2), md.zeros(2), "avg")
    with pytest.raises(ValueError, match=r"shape \(2,\) and target shape \(3,\)"):
        F.mse_loss(md.zeros(2), md.zeros(3))
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(md.tensor([1.5]), md.tensor([1.0]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.cross_entropy(md.zeros(2, 3), [0, 3])
    with pytest.raises(ValueError, match="integer labels"):
        F.cross_entropy(md.zeros(2, 3), md.tensor([0.0, 1.0]))


def test_dropout_statistics_and_eval_mode():
    md.manual_seed(0)
    x = md.ones(200, 200)
    y = F.dropout(x, 0.3, training=True).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.dropout(x, 1.5)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3\)"):
        md.zeros(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match="do not fit"):
        md.zeros(2, 3) @ md.zeros(2, 3)
    with pytest.raises(ValueError, match="one shape"):
        md.stack([md.zeros(2), md.zeros(3)])
    with pytest.raises(ValueError, match="differ in another dim"):
        md.concat([md.zeros(2, 3), md.zeros(3, 2)], 0)


def test_indexing_values(rng):
    x = rng.standard_normal((4, 5))
    t = leaf(x, requires_grad=False)
    np.testing.assert_array_equal(t[1:3, ::2].numpy(), x[1:3, ::2])
    np.testing.assert_array_equal(t[[0, 0, 3]].numpy(), x[[0, 0, 3]])
    np.testing.assert_array_equal(t[t > 0].numpy(), x[x > 0])
    np.testing.assert_array_equal(md.pad(t, (1, 2)).numpy(), np.pad(x, ((0, 0), (1, 2))))
