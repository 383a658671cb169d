"""What the student's code computes for the checks: run in the student's process, NumPy in, NumPy out.

Each probe takes the device first, then what the grader sends (plain values and NumPy arrays,
minidl.lab.wire), calls the copy's own code (the exercises' solutions among it) and returns
what the check compares, arrays as NumPy arrays. A probe judges nothing: checks.py does, in
the grader's process. Gradients are taken from the op's node (node.input_grads), not through
backward(), so that an exercise does not depend on the backward walk (exercise 2).
"""

from __future__ import annotations

import tempfile

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..autograd.tensor import Tensor


def _tensor(array: np.ndarray, device: str, requires_grad: bool = False) -> Tensor:
    return Tensor(array, requires_grad=requires_grad, device=device, dtype=array.dtype)


def _numpy(value):
    """A result as the grader receives it: a NumPy array (None stays None; other types say what they are)."""
    if value is None or isinstance(value, np.ndarray):
        return value
    if isinstance(value, Tensor):
        return backend.to_numpy(value.data)
    if backend.device_of(value) == backend.GPU or isinstance(value, np.generic | float | int):
        return backend.to_numpy(value)
    return f"a {type(value).__name__}"


def _input_grads(out: Tensor, grad_output: np.ndarray) -> tuple:
    """The gradients that out's op sends to its inputs for grad_output, as NumPy arrays."""
    grads = out._node.input_grads(backend.move(grad_output.astype(out.dtype), out.device))
    return tuple(_numpy(g) for g in grads)


# ------------------------------------------------------------ 1 unbroadcast
def unbroadcast(device: str, grad: np.ndarray, shape: tuple) -> np.ndarray:
    from ..autograd.engine import unbroadcast

    return _numpy(unbroadcast(backend.move(grad, device), shape))


def mul_grads(device: str, a: np.ndarray, b: np.ndarray, grad_output: np.ndarray) -> tuple:
    from ..ops import mul

    return _input_grads(mul(_tensor(a, device, True), _tensor(b, device, True)), grad_output)


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


def _deep(x: Tensor) -> Tensor:
    for _ in range(5000):
        x = _Scale.apply(x, k=1.0001)
    return x


GRAPHS = {  # checks.py names them and knows their gradients
    "chain": lambda x: _Square.apply(_Scale.apply(x, k=3.0)),
    "twice": lambda x: _Multiply.apply(x, x),
    "diamond": lambda x: _Multiply.apply(_Scale.apply(x, k=2.0), _Square.apply(x)),
    "paths": lambda x: (lambda s: _Multiply.apply(s, _Scale.apply(s, k=3.0)))(_Scale.apply(x, k=2.0)),
    "deep": _deep,
}


def backward_walk(device: str, graph: str, x0: np.ndarray) -> np.ndarray | None:
    """x.grad after GRAPHS[graph](x).backward(ones)."""
    x = _tensor(x0, device, requires_grad=True)
    GRAPHS[graph](x).backward(_tensor(np.ones_like(x0), device))
    return _numpy(x.grad)


def backward_twice(device: str, x0: np.ndarray) -> tuple:
    """x.grad after two backward() of x · c, and whether the constant c got a .grad."""
    x, c = _tensor(x0, device, requires_grad=True), _tensor(x0, device)
    for _ in range(2):
        _Multiply.apply(x, c).backward(_tensor(np.ones_like(x0), device))
    return _numpy(x.grad), c.grad is not None


# -------------------------------------------------------- 3 conv2d by im2col
def im2col(device: str, x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple) -> np.ndarray:
    from ..ops.conv import im2col

    return _numpy(im2col(x, kernel, stride, padding))


def conv2d_output(device: str, x: np.ndarray, weight: np.ndarray, stride: tuple, padding: tuple) -> np.ndarray:
    from ..ops.conv import conv2d_output

    return _numpy(conv2d_output(x, weight, stride, padding))


# ------------------------------------------------------ 4 conv2d gradients
def conv2d_input_grad(device: str, gy, weight, size: tuple, stride: tuple, padding: tuple) -> np.ndarray:
    from ..ops.conv import conv2d_input_grad

    return _numpy(conv2d_input_grad(gy, weight, size, stride, padding))


def conv2d_weight_grad(device: str, x, gy, kernel: tuple, stride: tuple, padding: tuple) -> np.ndarray:
    from ..ops.conv import conv2d_weight_grad

    return _numpy(conv2d_weight_grad(x, gy, kernel, stride, padding))


def _conv_transpose2d(device: str, x, weight, stride, padding, output_padding) -> Tensor:
    from ..nn import functional as F

    x, weight = _tensor(x, device, True), _tensor(weight, device, True)
    return F.conv_transpose2d(x, weight, None, stride, padding, output_padding)


def conv_transpose2d(device: str, x, weight, stride: tuple, padding: tuple, output_padding: tuple) -> np.ndarray:
    return _numpy(_conv_transpose2d(device, x, weight, stride, padding, output_padding))


def conv_transpose2d_grads(device: str, x, weight, stride, padding, output_padding, gy) -> tuple:
    """The gradients of conv_transpose2d(x, weight) with respect to x and weight, for gy."""
    return _input_grads(_conv_transpose2d(device, x, weight, stride, padding, output_padding), gy)


# ---------------------------------------------------------- 5 max-pool kernel
def max_pool2d(device: str, x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    from ..nn import functional as F

    return _numpy(F.max_pool2d(_tensor(x, device), kernel, stride, padding))


def max_pool2d_grad(device: str, x: np.ndarray, kernel, stride, padding, gy: np.ndarray) -> np.ndarray:
    from ..nn import functional as F

    (gx,) = _input_grads(F.max_pool2d(_tensor(x, device, True), kernel, stride, padding), gy)
    return gx


# ----------------------------------------------- 6 fused sigmoid + loss kernel
def sigmoid_loss(device: str, kind: str, z: np.ndarray, y: np.ndarray, reduction: str) -> tuple:
    """The loss, its gradient with respect to the logits z, and the loss of a second call."""
    from ..nn import functional as F

    loss_of = {"bce": F.binary_cross_entropy_with_logits, "mse": F.sigmoid_mse_loss}[kind]
    loss = loss_of(_tensor(z, device, True), _tensor(y, device), reduction)
    grad = _input_grads(loss, np.ones(()))[0]
    again = loss_of(_tensor(z, device), _tensor(y, device), reduction)
    return _numpy(loss), grad, _numpy(again)


# -------------------------------------------------------------------- 7 Adam
def adam(device: str, p0: np.ndarray, grads: list, hyper: dict) -> list:
    """The parameter after each of len(grads) steps of Adam from p0."""
    from ..optim import Adam

    p = _tensor(p0, device, requires_grad=True)
    optimizer, after = Adam([p], **hyper), []
    for g in grads:
        p.grad = _tensor(g, device)
        optimizer.step()
        after.append(_numpy(p).copy())
    return after


# ------------------------------------------------------------- 9 corruptions
def gaussian(device: str, x: np.ndarray, seed: int, sigma: float, clip: bool) -> tuple:
    """gaussian(x, default_rng(seed), sigma, clip) and x afterwards."""
    from ..experiments.corruptions import gaussian

    return _numpy(gaussian(x, np.random.default_rng(seed), sigma, clip=clip)), x


def salt_and_pepper(device: str, x: np.ndarray, seed: int, fraction: float) -> tuple:
    """salt_and_pepper(x, default_rng(seed), fraction) and x afterwards."""
    from ..experiments.corruptions import salt_and_pepper

    return _numpy(salt_and_pepper(x, np.random.default_rng(seed), fraction)), x


# ----------------------------------------------------- 10 the training loop
def train_denoiser(device: str, images: int, epochs: int, test_images: int) -> dict:
    """A 784-64-784 denoising AE (Gaussian noise 0.3, Adam lr 1e-2) trained by Experiment.fit: the
    epochs' losses, whether each parameter changed, Adam's step counts, and the denoised first
    `test_images` test images (noise from default_rng(1))."""
    from ..experiments import corruptions
    from ..experiments.experiment import Experiment
    from ..experiments.models import DenseAutoencoder
    from ..experiments.options import command_line
    from ..nn import functional as F
    from ..optim import Adam

    with tempfile.TemporaryDirectory() as out:
        argv = ["--epochs", str(epochs), "--limit", str(images), "--device", device, "--out", out, "--seed", "0"]
        exp = Experiment(command_line("exercise 10", epochs=epochs).parse_args(argv), "exercise10")
        noise = corruptions.corruption("gaussian:0.3")
        model = DenseAutoencoder((784, 64), activation="relu", device=device)
        optimizer = Adam(model.parameters(), lr=1e-2)
        before = [p.numpy().copy() for p in model.parameters()]
        history, _ = exp.fit(
            "dae", model, optimizer, lambda x, rng: F.mse_loss(model(noise(x, rng)), x), [exp.data.x_train]
        )
        test = exp.data.x_test[:test_images]
        return {
            "history": [float(h) for h in history],
            "changed": [not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters())],
            "steps": sorted(int(s["step"]) for s in optimizer.state_dict()["state"].values()),
            "denoised": _numpy(exp.evaluate(model, noise(test, np.random.default_rng(1)))),
        }


# ------------------------------------------------- 11 the contractive penalty
def contractive_penalty(device: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple:
    """The penalty and, through backward(), its gradients with respect to x, weight and bias."""
    from ..experiments.penalties import contractive_penalty

    tensors = [_tensor(a, device, True) for a in (x, weight, bias)]
    penalty = contractive_penalty(*tensors)
    penalty.backward()
    return (_numpy(penalty), *(_numpy(t.grad) for t in tensors))


def contractive_penalty_value(device: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    from ..experiments.penalties import contractive_penalty

    return _numpy(contractive_penalty(*(_tensor(a, device) for a in (x, weight, bias))))


# ------------------------------------------------------------ 12 clustering
def cluster_accuracy(device: str, labels: np.ndarray, clusters: np.ndarray):
    from ..experiments.clustering import cluster_accuracy

    return _numpy(cluster_accuracy(labels, clusters))


def kmeans(device: str, points: np.ndarray, k: int, seed: int, restarts: int | None = None):
    """kmeans(points, k, seed=seed), with restarts=restarts if one is given (else kmeans's default)."""
    from ..experiments.clustering import kmeans

    return _numpy(kmeans(points, k, seed=seed) if restarts is None else kmeans(points, k, seed=seed, restarts=restarts))
