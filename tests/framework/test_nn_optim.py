"""nn (Module, layers, init, state dicts), save/load, and the optimisers against hand-computed steps."""

import math
import os

import numpy as np
import pytest
from conftest import KERNEL_DEVICES

import minidl as md
from minidl import backend, nn


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(4, 3)
        self.dec = nn.Sequential(nn.ReLU(), nn.Linear(3, 2))

    def forward(self, x):
        return self.dec(self.enc(x))


def test_parameters_are_registered_in_order():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == ["enc.weight", "enc.bias", "dec.1.weight", "dec.1.bias"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "Sequential"]
    assert all(p.requires_grad for p in m.parameters())
    assert m.enc.weight.shape == (3, 4)


def test_train_eval_and_dropout():
    m = nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2))
    m.eval()
    assert not any(layer.training for layer in m.modules())
    x = md.ones(3, 2)
    np.testing.assert_array_equal(m[0](x).numpy(), x.numpy())
    m.train()
    assert m[0].training


def test_zero_grad_and_backward_through_model():
    m = TwoLayer()
    m(md.randn(5, 4)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_linear_layer_computes_x_wt_plus_b():
    layer = nn.Linear(3, 2)
    x = np.arange(6.0).reshape(2, 3)
    expect = x @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(md.tensor(x, dtype=md.float32)).numpy(), expect, rtol=1e-6)


def test_default_init_bounds_follow_pytorch():
    md.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)
    w, b = conv.weight.numpy(), conv.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound
    assert nn.ConvTranspose2d(64, 32, 3).weight.shape == (64, 32, 3, 3)


def test_initialisers_statistics():
    md.manual_seed(1)
    w = md.zeros(400, 300)
    nn.init.kaiming_normal_(w)
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(w.numpy()).max() == pytest.approx(math.sqrt(6 / 300), rel=0.01)
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() == pytest.approx(math.sqrt(6 / 700), rel=0.01)
    nn.init.xavier_normal_(w)
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    t = md.zeros(64, 32, 3, 3)  # ConvTranspose2d layout: fan_in = 32·9, as PyTorch
    nn.init.kaiming_normal_(t)
    assert t.numpy().std() == pytest.approx(math.sqrt(2 / (32 * 9)), rel=0.03)
    with pytest.raises(ValueError, match="mode"):
        nn.init.kaiming_normal_(w, mode="fan_middle")


def test_state_dict_round_trip_and_errors(tmp_path):
    a, b = TwoLayer(), TwoLayer()
    b.load_state_dict(a.state_dict())
    for (_na, pa), (_nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    state = a.state_dict()
    del state["enc.bias"]
    state["extra.weight"] = md.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['enc.bias'\].*unexpected keys \['extra.weight'\]"):
        b.load_state_dict(state)
    other = a.state_dict()
    other["enc.weight"] = md.zeros(5, 4)
    with pytest.raises(ValueError, match=r"enc.weight: checkpoint \(5, 4\) vs model \(3, 4\)"):
        b.load_state_dict(other)


def test_save_load_npz(tmp_path):
    m = TwoLayer()
    path = tmp_path / "model.npz"
    md.save({"model": m.state_dict(), "epoch": 3}, path)
    loaded = md.load(path)
    assert int(loaded["epoch"]) == 3
    fresh = TwoLayer()
    fresh.load_state_dict(loaded["model"])
    np.testing.assert_array_equal(fresh.enc.weight.numpy(), m.enc.weight.numpy())
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_save_is_atomic_when_writing_fails(tmp_path):
    path = tmp_path / "model.npz"
    md.save({"w": np.ones(3)}, path)

    class Exploding:
        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        md.save({"w": np.zeros(3), "x": Exploding()}, path)
    np.testing.assert_array_equal(md.load(path)["w"], np.ones(3))  # the old file is intact
    assert os.listdir(tmp_path) == ["model.npz"]


def test_load_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.npz"
    md.save({"w": np.ones(1000)}, bad)
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(ValueError, match="broken.npz is not a readable"):
        md.load(bad)


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="evil.npz"):
        md.load(path)


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def test_sgd_plain_momentum_nesterov_weight_decay():
    p = _param([1.0, -2.0])
    opt = md.optim.SGD([p], lr=0.1)
    p.grad = md.tensor([0.5, 1.0], dtype=md.float64)
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.95, -2.1])

    p = _param([1.0])
    opt = md.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    expect, buf = 1.0, None
    for g in [0.5, -0.2, 0.3]:
        p.grad = md.tensor([g], dtype=md.float64)
        opt.step()
        d = g + 0.01 * expect
        buf = d if buf is None else 0.9 * buf + d
        expect -= 0.1 * (d + 0.9 * buf)
        np.testing.assert_allclose(p.numpy(), [expect], rtol=1e-12)


def test_adam_matches_hand_computed_steps():
    p = _param([1.0, 2.0])
    opt = md.optim.Adam([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    x = np.array([1.0, 2.0])
    m = v = np.zeros(2)
    for t, g in enumerate([np.array([0.3, -0.1]), np.array([0.2, 0.4]), np.array([-0.5, 0.1])], start=1):
        p.grad = md.tensor(g)
        opt.step()
        g = g + 0.1 * x
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        x = x - 0.01 / (1 - 0.9**t) * m / (np.sqrt(v) / np.sqrt(1 - 0.99**t) + 1e-8)
        np.testing.assert_allclose(p.numpy(), x, rtol=1e-12)
    state = opt.state_dict()
    assert state["state"][0]["step"] == 3
    fresh = md.optim.Adam([_param([0.0, 0.0])], lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
    fresh.load_state_dict(state)
    np.testing.assert_allclose(backend.to_numpy(fresh.state[0]["exp_avg"]), m)


def test_optimiser_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        md.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        md.optim.SGD([_param([1.0])], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="requires grad"):
        md.optim.Adam([md.tensor([1.0])])


def test_training_a_tiny_model_lowers_the_loss():
    md.manual_seed(0)
    x = md.randn(64, 4)
    y = x @ md.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.5
    model = nn.Linear(4, 1)
    opt = md.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(200):
        loss = md.nn.functional.mse_loss(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3 * first


def test_adam_steps_only_the_parameters_with_gradients():
    """Parameters without a gradient keep their step count (PyTorch's rule); on a kernel device the
    counts of the others advance in runs of consecutive parameters."""
    params = [md.nn.Parameter(np.ones(3, np.float32)) for _ in range(5)]
    opt = md.optim.Adam(params, lr=0.1)
    for grads in ([0, 1, 2, 3, 4], [0, 1, 3, 4], [2], [0, 1, 2]):
        opt.zero_grad()
        for i in grads:
            params[i].grad = md.ones(3)
        opt.step()
    assert [opt.state_dict()["state"][i]["step"] for i in range(5)] == [3, 3, 3, 2, 2]
    single = md.nn.Parameter(np.ones(3, np.float32))  # a parameter stepped twice alone moves as params[3]
    alone = md.optim.Adam([single], lr=0.1)
    for _ in range(2):
        single.grad = md.ones(3)
        alone.step()
    np.testing.assert_allclose(params[3].numpy(), single.numpy(), rtol=1e-6)


def _stepped_adam():
    params = [md.nn.Parameter(np.ones((2, 3), np.float32)), md.nn.Parameter(np.ones(3, np.float32))]
    opt = md.optim.Adam(params, lr=0.1)
    for _ in range(2):
        for p in params:
            p.grad = md.ones(*p.shape)
        opt.step()
    return params, opt


def _with(state: dict, path: tuple, value) -> dict:
    """A deep copy of an optimiser's state dict with the entry at `path` set to value (None: removed)."""
    state = {"state": {i: dict(s) for i, s in state["state"].items()}, "param_groups": [dict(state["param_groups"][0])]}
    *parents, last = path
    node = state
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return state


def _renumbered(state: dict, index) -> dict:
    return {"state": {index: state["state"][0]}, "param_groups": state["param_groups"]}


BAD_STATES = [
    ("index -1", lambda s: _renumbered(s, -1), ValueError, "names parameter -1; the parameters are 0 to 1"),
    ("index 2", lambda s: _renumbered(s, 2), ValueError, "names parameter 2"),
    ("index '1.5'", lambda s: _renumbered(s, "1.5"), ValueError, "names parameter '1.5'"),
    (
        "another model's shapes",
        lambda s: _with(s, ("state", 0, "exp_avg"), np.ones((3, 2))),
        ValueError,
        r"parameter 0's exp_avg must be an array of its shape \(2, 3\).*float64 \(3, 2\)",
    ),  # fmt: skip
    (
        "a moment of text",
        lambda s: _with(s, ("state", 1, "exp_avg_sq"), np.array(["a", "b", "c"])),
        ValueError,
        "exp_avg_sq must be an array of its shape",
    ),  # fmt: skip
    (
        "a missing moment",
        lambda s: _with(s, ("state", 1, "exp_avg_sq"), None),
        ValueError,
        r"must hold \['exp_avg', 'exp_avg_sq', 'step'\], got \['exp_avg', 'step'\]",
    ),  # fmt: skip
    ("step -1", lambda s: _with(s, ("state", 0, "step"), -1), ValueError, "step must be a whole number ≥ 0"),
    ("lr nan", lambda s: _with(s, ("param_groups", 0, "lr"), float("nan")), TypeError, "lr must be a finite number"),
    ("lr 'abc'", lambda s: _with(s, ("param_groups", 0, "lr"), "abc"), TypeError, "lr must be a finite number"),
    ("betas of 1", lambda s: _with(s, ("param_groups", 0, "betas"), (0.9, 1.0)), ValueError, "smaller than 1"),
    ("an unknown setting", lambda s: _with(s, ("param_groups", 0, "momentum"), 0.9), ValueError, "one group of"),
    ("no param_groups", lambda s: {"state": s["state"]}, ValueError, "takes {'state': ..., 'param_groups': ...}"),
]


@pytest.mark.parametrize("bad, change, error, words", BAD_STATES, ids=[b[0] for b in BAD_STATES])
def test_a_state_is_checked_before_any_of_it_is_taken(bad, change, error, words):
    """Adam took a state for parameter -1, SGD lr=nan (the next step filled the parameters with NaN), and
    another model's transposed moments failed with 'can only convert an array of size 1'."""
    params, opt = _stepped_adam()
    before = opt.state_dict()
    with pytest.raises(error, match=words):
        opt.load_state_dict(change(opt.state_dict()))
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"] and list(after["state"]) == [0, 1]
    for i in (0, 1):
        assert after["state"][i]["step"] == 2
        np.testing.assert_array_equal(backend.to_numpy(after["state"][i]["exp_avg"]),
                                      backend.to_numpy(before["state"][i]["exp_avg"]))  # fmt: skip


def test_sgd_refuses_a_nan_learning_rate_and_its_parameters_stay_finite():
    p = md.nn.Parameter(np.ones(3, np.float32))
    opt = md.optim.SGD([p], lr=0.1)
    with pytest.raises(TypeError, match="SGD: lr must be a finite number, got nan"):
        opt.load_state_dict({"state": {}, "param_groups": [{**opt.defaults, "lr": float("nan")}]})
    p.grad = md.ones(3)
    opt.step()
    np.testing.assert_allclose(p.numpy(), 0.9, rtol=1e-6)


@pytest.mark.parametrize("device", ["cpu", *KERNEL_DEVICES])
def test_adam_follows_its_parameters_to_another_dtype(device):
    """After model.to(dtype=float64) the Adam kernel got float32 moments beside a float64 parameter (the
    launch contract's dtype error); now they follow the parameter, as they follow it across devices."""
    grads = np.random.default_rng(4).standard_normal((6, 5))

    def train(device):
        layer = nn.Linear(5, 1, bias=False, device=device)
        layer.weight.data[...] = 0.5
        optimizer = md.optim.Adam(layer.parameters(), lr=0.1)
        for k in range(6):
            if k == 3:
                layer.to(dtype=md.float64)
            layer.weight.grad = md.tensor(grads[k : k + 1], dtype=layer.weight.dtype, device=device)
            optimizer.step()
        return layer.weight.numpy(), optimizer.state_dict()["state"][0]

    weight, state = train(device)
    assert weight.dtype == np.float64 and state["exp_avg"].dtype == np.float64 and state["step"] == 6
    reference, _ = train("cpu")  # the array path: NumPy's float32 moments meet float64 gradients
    np.testing.assert_allclose(weight, reference, rtol=1e-4, atol=1e-6)  # kernel and array path: float32 rounding
