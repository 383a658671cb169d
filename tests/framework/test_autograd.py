"""The engine: accumulation, broadcasting, graph walking, no_grad, retain_graph, errors."""

import numpy as np
import pytest
from conftest import leaf

import minidl as md


def test_simple_gradient_matches_formula():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x * x).sum()  # dy/dx = 3x²
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0, 27.0])


def test_gradients_accumulate_until_zero_grad():
    x = leaf([2.0])
    (x * 3).sum().backward()
    (x * 4).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0])
    x.zero_grad()
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0])


def test_tensor_used_many_times_in_one_graph():
    x = leaf([3.0])
    y = x * x + x * 2 + x  # dy/dx = 2x + 3 = 9
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [9.0])


@pytest.mark.parametrize(
    "fn,derivative",
    [
        (lambda x: x * (1 - x), lambda x: 1 - 2 * x),
        (lambda x: x * (x - 1), lambda x: 2 * x - 1),
        (lambda x: (lambda h: h * (1 - h))(x.exp()), lambda x: np.exp(x) - 2 * np.exp(2 * x)),
        (lambda x: (lambda s: s * s * (s + 1))(x * 2), lambda x: 24 * x**2 + 8 * x),
    ],
)
def test_reused_tensor_gets_every_path_whatever_the_order(fn, derivative):
    """A tensor reached by paths of different lengths waits for all of them before going on."""
    x = leaf([0.3, -1.2, 2.0])
    fn(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), derivative(x.numpy()), rtol=1e-12)


def test_diamond_graph_sums_both_paths():
    x = leaf([0.5])
    a = x.exp()
    y = (a * a.log() + a).sum()  # y = e^x·x + e^x, dy/dx = e^x(x + 2)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [np.exp(0.5) * 2.5])


@pytest.mark.parametrize(
    "shape_a,shape_b",
    [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((1,), (2, 2)), ((), (3,)), ((5, 1, 2), (1, 3, 1))],
)
def test_broadcast_gradients_are_summed_back(shape_a, shape_b, rng):
    a, b = leaf(rng.standard_normal(shape_a)), leaf(rng.standard_normal(shape_b))
    out = a * b
    out.sum().backward()
    full = np.broadcast_shapes(shape_a, shape_b)
    expect_a = np.broadcast_to(b.numpy(), full).sum(axis=tuple(range(len(full) - len(shape_a))))
    expect_a = expect_a.sum(axis=tuple(i for i, n in enumerate(shape_a) if n == 1), keepdims=True).reshape(shape_a)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    np.testing.assert_allclose(a.grad.numpy(), expect_a)


def test_chain_of_ten_thousand_ops_needs_no_recursion():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**10_000], rtol=1e-9)


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with md.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    assert md.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = leaf([2.0])
    y = x * x
    z = (y.detach() * x).sum()  # d/dx treats y as the constant 4
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])


def test_requires_grad_propagates_only_from_inputs_that_need_it():
    a, b = leaf([1.0]), leaf([2.0], requires_grad=False)
    assert (a + b).requires_grad
    assert not (b * 3).requires_grad


def test_gradient_with_respect_to_an_input_image():
    w = leaf(np.full((3,), 2.0), requires_grad=False)
    x = leaf([1.0, -1.0, 0.5])
    loss = ((x * w - 1) ** 2).sum()  # d/dx = 2(wx - 1)w
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * x.numpy() - 1) * 2)
    assert w.grad is None


def test_second_backward_needs_retain_graph():
    x = leaf([1.0])
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()  # allowed: the first call kept the graph
    np.testing.assert_allclose(x.grad.numpy(), [4 * np.e])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_of_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    with pytest.raises(RuntimeError, match="gradient argument"):
        y.backward()
    y.backward(md.tensor([1.0, 10.0], dtype=md.float64))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 30.0])


def test_backward_without_graph_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        md.tensor([1.0]).sum().backward()


def test_default_dtypes():
    assert md.tensor([1.0, 2.0]).dtype == np.float32
    assert md.tensor([1, 2]).dtype == np.int64
    assert md.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert md.zeros(2, 3).dtype == np.float32
    assert md.randn(2, dtype=md.float64).dtype == np.float64
    assert (md.tensor([1.0]) * 2.5).dtype == np.float32  # Python numbers do not promote


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating point"):
        md.tensor([1, 2], requires_grad=True)


def test_unknown_device_and_missing_gpu_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        md.tensor([1.0], device="tpu")
    if not md.cuda_available():
        with pytest.raises(RuntimeError, match="no GPU"):
            md.tensor([1.0], device="cuda")


def test_device_comes_from_environment(monkeypatch):
    monkeypatch.setenv("MINIDL_DEVICE", "cpu")
    assert md.tensor([1.0]).device == "cpu"
    monkeypatch.setenv("MINIDL_DEVICE", "bogus")
    with pytest.raises(ValueError, match="MINIDL_DEVICE|unknown device"):
        md.tensor([1.0])


def test_mixing_devices_is_a_clear_error():
    a = md.tensor([1.0], device="cpu")
    b = md.tensor([1.0], device="emu")
    with pytest.raises(RuntimeError, match="same device"):
        a + b


def test_to_moves_and_gradients_flow_back():
    x = leaf([1.0, 2.0])
    y = x.to("emu").to(dtype=np.float32)
    assert y.device == "emu" and y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_comparisons_give_boolean_tensors():
    x = md.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])
    np.testing.assert_array_equal((x == 2).numpy(), [False, True, False])


def test_manual_seed_repeats_random_numbers():
    md.manual_seed(7)
    a = md.randn(5).numpy()
    md.manual_seed(7)
    np.testing.assert_array_equal(a, md.randn(5).numpy())


def test_item_and_repr():
    assert md.tensor([[3.5]]).item() == 3.5
    with pytest.raises(ValueError, match="one element"):
        md.tensor([1.0, 2.0]).item()
    assert "requires_grad=True" in repr(leaf([1.0]))


# ------------------------------------------------------------ higher-order gradients
def test_create_graph_leaves_a_differentiable_grad_as_pytorch_does():
    """PyTorch: y = Σx³; y.backward(create_graph=True) gives x.grad = 3x² with a graph; then
    x.grad.sum().backward() adds d(Σ3x²)/dx = 6x into x.grad: 3x² + 6x."""
    x = leaf([1.0, -2.0, 0.5])
    (x * x * x).sum().backward(create_graph=True)
    assert x.grad.requires_grad and not x.grad.is_leaf
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0, 0.75])
    x.grad.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0 + 6.0, 12.0 - 12.0, 0.75 + 3.0])


def test_grad_returns_gradients_without_touching_any_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    w.grad = md.tensor([7.0, 7.0], dtype=md.float64)
    y = (w * x * x).sum()
    (gx,) = md.autograd.grad(y, x, create_graph=True)  # 2wx
    np.testing.assert_allclose(gx.numpy(), [6.0, -4.0])
    assert x.grad is None and w.grad.numpy().tolist() == [7.0, 7.0]
    hx, hw = md.autograd.grad(gx.sum(), [x, w])  # d(Σ2wx)/dx = 2w, /dw = 2x
    np.testing.assert_allclose(hx.numpy(), [6.0, -2.0])
    np.testing.assert_allclose(hw.numpy(), [2.0, 4.0])


def test_grad_of_a_hidden_tensor_and_of_unused_inputs():
    x, unused = leaf([1.0, 2.0]), leaf([5.0])
    h = x * 3
    y = (h * h).sum()
    (gh,) = md.autograd.grad(y, h, retain_graph=True)  # 2h, stopping at h
    np.testing.assert_allclose(gh.numpy(), [6.0, 12.0])
    assert x.grad is None
    with pytest.raises(RuntimeError, match="input 1 was not used.*allow_unused=True"):
        md.autograd.grad(y, [x, unused], retain_graph=True)
    unused.grad = md.tensor([9.0], dtype=md.float64)  # an input's own .grad is kept, used or not
    gx, none = md.autograd.grad(y, [x, unused], allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), [18.0, 36.0])
    assert none is None and unused.grad.numpy().tolist() == [9.0]


def test_grad_works_only_on_the_paths_to_its_inputs():
    """As torch.autograd.grad: an op on the way asks for the gradients of the inputs that lead to the
    requested ones only (needs_grad narrowed for that walk: Linear skips its weight gradient), and its
    own needs_grad is back for the next backward."""
    seen = []

    class Scale(md.autograd.Function):  # y = w·x, recording what each backward was asked for
        def forward(self, x, w):
            return w * x

        def backward(self, g):
            seen.append(self.needs_grad)
            x, w = self.inputs
            return (g * w if self.needs_grad[0] else None), ((g * x).sum() if self.needs_grad[1] else None)

    x, w = leaf([1.0, 2.0]), leaf(3.0)
    h = Scale.apply(x, w)
    y = md.nn.functional.linear(h.reshape(1, 2), leaf([[1.0, -1.0]]), leaf([0.5])).sum()
    (gx,) = md.autograd.grad(y, x, retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), [3.0, -3.0])
    assert seen == [(True, False)] and x.grad is None and w.grad is None
    y.backward()
    assert seen[1] == (True, True)
    np.testing.assert_allclose(w.grad.numpy(), 1.0 - 2.0)
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -3.0])


def test_a_grad_inside_a_backward_walks_its_own_paths():
    """The narrowing is per walk: a grad() that a backward calls (here for W, which the outer grad() for
    x does not want) gets W's gradient, as in PyTorch; the outer walk's gradient is unchanged."""
    inner = []

    class Probe(md.autograd.Function):
        def forward(self, h):
            return h * 1.0

        def backward(self, g):
            (h,) = self.inputs
            with md.autograd.enable_grad():
                inner.append(md.autograd.grad(h.sum(), w, retain_graph=True)[0])
            return g

    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (gx,) = md.autograd.grad(Probe.apply(x * w).sum(), x)
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(inner[0].numpy(), [1.0, 2.0])


def test_grad_takes_grad_outputs_and_several_outputs():
    x = leaf([1.0, 2.0])
    a, b = x * 2, x * x
    ga, = md.autograd.grad([a, b], x, grad_outputs=[md.tensor([1.0, 1.0], dtype=md.float64),
                                                    md.tensor([0.5, 2.0], dtype=md.float64)])  # fmt: skip
    np.testing.assert_allclose(ga.numpy(), [2 + 0.5 * 2, 2 + 2 * 4])
    with pytest.raises(ValueError, match="2 outputs and 1 grad_outputs"):
        md.autograd.grad([a, b], x, grad_outputs=[md.tensor([1.0, 1.0], dtype=md.float64)])
    with pytest.raises(RuntimeError, match=r"output 0 has shape \(2,\): give its grad_outputs"):
        md.autograd.grad([a, b], x)  # as backward(): no implicit ones for an output of several elements
    # grad_outputs that depend on x are constants of the vector-Jacobian product of (3x, x²) with
    # (a, b) = (2x, x²): 3·a + 2x·b = 6x + 2x³, not also the derivatives of a and b themselves
    a, b = x * 2, x * x
    (gx,) = md.autograd.grad([a * 1.5, b], x, grad_outputs=[a, b], retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), [6 * 1 + 2 * 1, 6 * 2 + 2 * 8])
    with pytest.raises(NotImplementedError, match="grad_outputs 0 requires grad under create_graph"):
        md.autograd.grad([a * 1.5, b], x, grad_outputs=[a, b], create_graph=True)


def test_hessian_vector_product_by_double_backward():
    """f = Σ x_i³ + x_0 x_1 has the Hessian H = diag(6x) + [[0, 1], [1, 0]]: H v by two grads."""
    x, v = leaf([1.5, -0.5]), md.tensor([1.0, 2.0], dtype=md.float64)
    f = (x * x * x).sum() + x[0] * x[1]
    (g,) = md.autograd.grad(f, x, create_graph=True)
    (hv,) = md.autograd.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.numpy(), [6 * 1.5 * 1 + 2, 6 * -0.5 * 2 + 1])


def test_a_users_op_with_one_backward_has_a_second_derivative():
    class Cube(md.Function):  # a user's op: its one backward, written in ops, differentiates again
        def forward(self, x):
            return x**3

        def backward(self, g):
            (x,) = self.inputs
            return g * 3 * x * x

    x = leaf([1.5, -2.0])
    (g,) = md.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = md.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g.numpy(), [3 * 1.5**2, 3 * 4.0])
    np.testing.assert_allclose(h.numpy(), [6 * 1.5, 6 * -2.0])
    Cube.apply(x).sum().backward()  # first order: no graph recorded by the backward
    assert x.grad.numpy().tolist() == [3 * 1.5**2, 3 * 4.0] and x.grad.is_leaf and not x.grad.requires_grad


def test_a_backward_that_returns_an_array_is_told_to_return_tensors():
    class OnArrays(md.Function):  # the old contract: backward on arrays
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g.data * 2

    with pytest.raises(TypeError, match=r"OnArrays.backward returned a ndarray for input 0: a backward returns"):
        OnArrays.apply(leaf([1.0])).sum().backward()


def test_a_penalty_on_the_gradient_trains():
    """A gradient penalty ‖∂L/∂x‖² differentiated with respect to the weights (WGAN-GP's pattern)."""
    w, x = leaf([0.5, -1.0]), leaf([1.0, 2.0])
    loss = md.sigmoid((w * x).sum())
    (gx,) = md.autograd.grad(loss, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    s = 1 / (1 + np.exp(-(0.5 - 2.0)))
    ds = s * (1 - s)  # gx = ds · w, penalty = ds² ‖w‖², d/dw = 2 ds ‖w‖² dds/dz x + 2 ds² w
    dds = ds * (1 - 2 * s)
    expect = 2 * ds * dds * np.sum(np.array([0.5, -1.0]) ** 2) * np.array([1.0, 2.0]) + 2 * ds**2 * np.array(
        [0.5, -1.0]
    )
    np.testing.assert_allclose(w.grad.numpy(), expect, rtol=1e-10)


def test_the_readmes_api_tour_runs(tmp_path, monkeypatch):
    """The README's tour of the API, as a reader would paste it (in a folder of their own)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    tour = readme.split("## A tour of the API", 1)[1]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (A tour of the API)", "exec"), {})
    assert (tmp_path / "model.npz").is_file()


def _graph_nodes(root):
    nodes, stack, seen = [], [root], set()
    while stack:
        t = stack.pop()
        if t._node is not None and id(t._node) not in seen:
            seen.add(id(t._node))
            nodes.append(t._node)
            stack += [x for x in t._node.inputs if isinstance(x, md.Tensor)]
    return nodes


def _holds_arrays_or_nodes(value) -> bool:
    if isinstance(value, dict):
        return any(_holds_arrays_or_nodes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_arrays_or_nodes(v) for v in value)
    return isinstance(value, md.Function | md.Tensor) or hasattr(value, "dtype") and getattr(value, "ndim", 0) > 0


def test_every_op_declares_what_it_saves_and_backward_frees_exactly_that():
    """A node keeps arrays only through save_for_backward: after a backward without retain_graph no node of
    a graph that uses every op holds an array, a tensor or another node (its options stay)."""
    F = md.nn.functional
    rng = np.random.default_rng(0)
    x = leaf(rng.random((2, 1, 8, 8)))
    w, wt = leaf(rng.standard_normal((3, 1, 3, 3))), leaf(rng.standard_normal((3, 2, 3, 3)))
    lin = leaf(rng.standard_normal((4, 18)))
    h = F.conv2d(x, w, leaf(np.zeros(3)), 2, 1)  # (2, 3, 4, 4)
    h = F.max_pool2d(F.relu(h), 2) + F.avg_pool2d(F.leaky_relu(h, 0.1), 2)  # (2, 3, 2, 2)
    u = F.conv_transpose2d(F.upsample(h, 2, "bilinear"), wt, leaf(np.zeros(2)), 1, 1)  # (2, 2, 4, 4)
    u = F.upsample(u, 0.5, "nearest")  # (2, 2, 2, 2)
    flat = md.concat([h.reshape(2, -1), md.pad(u.reshape(2, -1), (0, 2)).permute(0, 1)], 1)[:, [0, 3, 5] * 6]
    z = F.linear(md.tanh(flat), lin, leaf(np.zeros(4)))  # (2, 4)
    z = md.where(z > 0, md.sigmoid(z), md.exp(z) - 1) * md.clamp(z, -1, 1) + md.abs(z) ** 1.5
    z = md.maximum(z, md.minimum(z, -z)) / (md.sqrt(z * z + 1) + md.log(z * z + 2))
    z = F.dropout(F.softplus(z), 0.3) @ md.ones(4, 3, dtype=md.float64)
    values, _ = z.max(dim=1)
    loss = (F.cross_entropy(z, np.array([0, 2])) + F.mse_loss(z, md.zeros(2, 3, dtype=md.float64))
            + F.binary_cross_entropy_with_logits(z, md.ones(2, 3, dtype=md.float64))
            + F.sigmoid_mse_loss(z, md.zeros(2, 3, dtype=md.float64))
            + F.binary_cross_entropy(md.sigmoid(z), md.ones(2, 3, dtype=md.float64))
            + F.log_softmax(z, 1).sum() + F.softmax(z, 0).var() + values.mean() + z.amax()
            - z.float().sum().double())  # fmt: skip
    nodes = _graph_nodes(loss)
    assert len({type(n).__name__ for n in nodes}) >= 35
    loss.backward()
    for node in nodes:
        kept = {k: v for k, v in vars(node).items() if _holds_arrays_or_nodes(v)}
        assert node.released and not kept, f"{type(node).__name__} still holds {sorted(kept)}"


def test_a_computed_tensor_read_for_long_keeps_no_list_of_dead_readers():
    """Each computed tensor remembers its readers weakly (an in-place write hands them its old history);
    read by 10,000 ops that are gone, it keeps fewer than 128 of those references, not 10,000."""
    kept = leaf([1.0, 2.0]) * 2
    for _ in range(10_000):
        (kept * 3).sum()
    assert len(kept._users) < 128


def test_a_computed_tensor_that_ops_read_pickles_and_copies():
    """Its readers are weak references, which pickle cannot hold: they are not part of the tensor's state
    (pickling y = x * 2 after z = y * 3 had failed)."""
    import copy
    import pickle

    x = leaf([1.0, 2.0])
    y = x * 2
    _reader = y * 3
    for again in (pickle.loads(pickle.dumps(y)), copy.deepcopy(y)):
        np.testing.assert_array_equal(again.numpy(), [2.0, 4.0])
        assert again._users is None
