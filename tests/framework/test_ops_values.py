"""Forward values of ops in particular cases: known values, layouts, ties, huge logits, dropout's statistics.
Every op's values against its loop reference are checked from the op table, in tests/framework/test_ops.py."""

import numpy as np
import pytest
from conftest import cpu_leg_only, leaf

import minidl as md
from minidl import loops
from minidl.nn import functional as F


def values(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


@cpu_leg_only
@pytest.mark.parametrize(
    "c, o, kernel, padding", [(8, 1, (3, 3), (1, 1)), (9, 2, (2, 3), (0, 2)), (4, 1, (1, 1), (0, 0))]
)
def test_convolutions_without_im2col_match_loops_and_differentiate(c, o, kernel, padding):
    """A stride-1 conv2d with few outputs per input channel runs as shifted matmuls (no im2col), and a
    stride-1 conv_transpose2d with more outputs than inputs as the flipped convolution (no col2im): the
    values match loops, the gradients gradcheck and gradgradcheck."""
    from minidl.ops import conv

    assert conv.shifted_is_cheaper(c, o, (1, 1)) and not conv.shifted_is_cheaper(c, o, (2, 1))
    assert conv.transposed_as_conv(np.zeros((o, c, *kernel)), (1, 1), padding) is not None
    x, w, b = values(0, (2, c, 5, 6)), values(1, (o, c, *kernel)), values(2, (o,))
    got = F.conv2d(leaf(x), leaf(w), leaf(b), 1, padding).numpy()
    np.testing.assert_allclose(got, loops.conv2d(x, w, b, (1, 1), padding), atol=1e-12)
    y = values(3, (2, o, 4, 5))
    got = F.conv_transpose2d(leaf(y), leaf(w), leaf(b[:1].repeat(c)), 1, padding).numpy()
    expect = loops.conv_transpose2d(y, w, b[:1].repeat(c), (1, 1), padding, (0, 0))
    np.testing.assert_allclose(got, expect, atol=1e-12)
    small = [leaf(v[:1]).requires_grad_() for v in (x, w)]
    assert md.gradcheck(lambda a, k: F.conv2d(a, k, None, 1, padding), small)
    assert md.gradgradcheck(lambda a, k: F.conv2d(a, k, None, 1, padding), small)
    small = [leaf(y[:1, :, :3, :3]).requires_grad_(), leaf(w).requires_grad_()]
    assert md.gradcheck(lambda a, k: F.conv_transpose2d(a, k, None, 1, padding), small)
    assert md.gradgradcheck(lambda a, k: F.conv_transpose2d(a, k, None, 1, padding), small)


@cpu_leg_only
def test_conv_transpose2d_backward_builds_gys_im2col_once(monkeypatch):
    """conv_transpose2d's input gradient (conv2d of gy) and weight gradient read one im2col matrix of gy
    (Model C's stride-2 decoder layers): one im2col per backward instead of two; the gradients still
    gradcheck and gradgradcheck (where the matrix is handed on to a differentiable conv2d). The array
    path's (on cpu in every leg: the kernel path builds no im2col)."""
    from minidl.ops import conv

    def on_cpu(seed, shape):
        return md.tensor(values(seed, shape), requires_grad=True, dtype=md.float64, device="cpu")

    calls, im2col = [], conv.im2col
    monkeypatch.setattr(conv, "im2col", lambda *args: calls.append(args[0].shape) or im2col(*args))
    x, w = on_cpu(0, (2, 3, 4, 5)), on_cpu(1, (3, 4, 3, 3))
    F.conv_transpose2d(x, w, None, 2, 1, 1).sum().backward()
    assert calls == [(2, 4, 8, 10)]  # gy's, once (a forward by col2im builds none)
    small = [on_cpu(2, (1, 3, 3, 3)), w]
    assert md.gradcheck(lambda a, k: F.conv_transpose2d(a, k, None, 2, 1, 1), small)
    assert md.gradgradcheck(lambda a, k: F.conv_transpose2d(a, k, None, 2, 1, 1), small)


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


def test_reductions_match_numpy(rng):
    x = rng.standard_normal((3, 4, 5))
    t = leaf(x, requires_grad=False)
    np.testing.assert_allclose(t.max(axis=2, keepdims=True).numpy(), x.max(2, keepdims=True))  # NumPy's words too
    np.testing.assert_allclose(t.var(correction=0).numpy(), x.var())


def test_max_ties_share_the_gradient():
    x = leaf([2.0, 2.0, 1.0])
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5, 0.0])


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


def test_dropout_statistics_and_eval_mode():
    md.manual_seed(0)
    x = md.ones(200, 200)
    y = F.dropout(x, 0.3, training=True).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()


def test_indexing_values(rng):
    x = rng.standard_normal((4, 5))
    t = leaf(x, requires_grad=False)
    np.testing.assert_array_equal(t[1:3, ::2].numpy(), x[1:3, ::2])
    np.testing.assert_array_equal(t[[0, 0, 3]].numpy(), x[[0, 0, 3]])
    np.testing.assert_array_equal(t[t > 0].numpy(), x[x > 0])
    np.testing.assert_array_equal(md.pad(t, (1, 2)).numpy(), np.pad(x, ((0, 0), (1, 2))))
