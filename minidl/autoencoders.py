"""The lab's autoencoders and what it does with their codes.

Models: ModelC (the convolutional DAE of benchmarks/README.md), ModelD (the dense DAE),
ModelP (the lectures' conv AE with max-pooling and upsampling),
DenseAutoencoder (any stack of sigmoid layers, with encode/decode), SigmoidConvAutoencoder,
LinearAutoencoder (no activation: with MSE it learns PCA's subspace, see pca).
Penalties: L1 and KL sparsity of a code, the contractive penalty of a sigmoid encoder (by its
formula) and of any encoder (jacobian_penalty, by double backward).
Deep models: layer-wise pretraining, then stacking into one model to fine-tune.
Using codes: interpolation, the walk from noise to the data (and toward a chosen digit), how
plausible generated digits are, k-means + Hungarian accuracy, a classifier on an encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.optimize import linear_sum_assignment
from scipy.special import softmax

from . import backend, ops
from .autograd.engine import grad
from .autograd.function import no_grad
from .autograd.tensor import Tensor
from .nn import (
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Unflatten,
    Upsample,
    init,
)


class Autoencoder(Module):
    """An encoder f and a decoder g: forward(x) = g(f(x))."""

    encoder: Module
    decoder: Module

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, code: Tensor) -> Tensor:
        return self.decoder(code)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


class ModelC(Autoencoder):
    """Convolutional DAE: 1×28×28 -> 64×7×7 -> 1×28×28 logits (sigmoid fused into the loss).
    He (Kaiming normal, fan-in) weights and zero biases."""

    def __init__(self, device: str | None = None):
        super().__init__()
        self.encoder = Sequential(
            Conv2d(1, 16, 3, stride=2, padding=1, device=device), ReLU(),  # 28 -> 14
            Conv2d(16, 32, 3, stride=2, padding=1, device=device), ReLU(),  # 14 -> 7
            Conv2d(32, 64, 3, stride=1, padding=1, device=device), ReLU(),  # 7 -> 7
        )  # fmt: skip
        self.decoder = Sequential(
            ConvTranspose2d(64, 32, 3, stride=1, padding=1, device=device), ReLU(),
            ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1, device=device), ReLU(),  # 7 -> 14
            ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1, device=device),  # 14 -> 28
        )  # fmt: skip
        he_init(self)


class ModelP(Autoencoder):
    """The lectures' conv AE with pooling (CS8004's worked example, the Keras conv AE): conv + ReLU +
    2×2 max-pool twice, 1×28×28 -> 16×14×14 -> 8×7×7 (the code: 392 units), then conv + ReLU +
    nearest 2× upsampling twice and a last conv: 1×28×28 logits. 3×3 convolutions, padding 1;
    He weights and zero biases, as Model C."""

    def __init__(self, device: str | None = None):
        super().__init__()
        self.encoder = Sequential(
            Conv2d(1, 16, 3, padding=1, device=device), ReLU(), MaxPool2d(2),  # 28 -> 14
            Conv2d(16, 8, 3, padding=1, device=device), ReLU(), MaxPool2d(2),  # 14 -> 7
        )  # fmt: skip
        self.decoder = Sequential(
            Conv2d(8, 8, 3, padding=1, device=device), ReLU(), Upsample(2),  # 7 -> 14
            Conv2d(8, 16, 3, padding=1, device=device), ReLU(), Upsample(2),  # 14 -> 28
            Conv2d(16, 1, 3, padding=1, device=device),
        )  # fmt: skip
        he_init(self)


def he_init(model: Module) -> None:
    """Kaiming normal (fan-in, ReLU gain) weights and zero biases."""
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            init.kaiming_normal_(p, mode="fan_in", nonlinearity="relu")
        else:
            init.zeros_(p)


def start_at_mean(layer: Module, images: np.ndarray) -> None:
    """Set an output layer's bias so that, through the sigmoid after it, the model starts by drawing the
    mean of `images` (a dense layer: each pixel's mean; a convolution: each channel's) rather than
    sigmoid(0) = 0.5 grey, far from MNIST's mostly black digits, where MSE's gradient through a
    saturating sigmoid is small and training can sit on a plateau. bias = logit(mean), the mean
    clipped to [0.01, 0.99]; images: (N, C, H, W) in [0, 1]."""
    bias = layer.bias
    mean = images.mean(axis=0).reshape(bias.shape[0], -1).mean(axis=1).clip(0.01, 0.99)
    bias.data = backend.move(np.log(mean / (1 - mean)).astype(bias.dtype), bias.device)


class DenseAutoencoder(Autoencoder):
    """Fully connected AE: sizes (in, h1, ..., code), mirrored for the decoder. Hidden layers and
    the code use `activation` ("sigmoid", the classic choice whose codes lie in (0, 1), or
    "relu", which trains faster); the output is always a sigmoid. Dropout p after each
    hidden layer of the encoder. With image_shape the input is flattened and the output
    has that shape; with None both are vectors."""

    ACTIVATIONS = {"sigmoid": Sigmoid, "relu": ReLU}

    def __init__(self, sizes: Sequence[int], dropout: float = 0.0, image_shape=(1, 28, 28),
                 activation: str = "sigmoid", device: str | None = None):  # fmt: skip
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"an autoencoder needs at least an input and a code size, got {sizes}")
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}, expected one of {sorted(self.ACTIVATIONS)}")
        self.sizes, self.image_shape, self.activation = tuple(sizes), image_shape, activation
        act = self.ACTIVATIONS[activation]
        enc: list[Module] = [Flatten()] if image_shape else []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            enc += [Linear(a, b, device=device), act()]
            if dropout and i < len(sizes) - 2:
                enc.append(Dropout(dropout))
        dec: list[Module] = []
        back = list(reversed(sizes))
        for i, (a, b) in enumerate(zip(back[:-1], back[1:])):
            dec += [Linear(a, b, device=device), act() if i < len(back) - 2 else Sigmoid()]
        if image_shape:
            dec.append(Unflatten(1, image_shape))
        self.encoder, self.decoder = Sequential(*enc), Sequential(*dec)

    def linears(self) -> tuple[list[Linear], list[Linear]]:
        """The Linear layers of the encoder and of the decoder, in order."""
        return [m for m in self.encoder if isinstance(m, Linear)], [m for m in self.decoder if isinstance(m, Linear)]


class ModelD(Autoencoder):
    """The lab's first DAE: 784-256-256-784, a sigmoid after every layer, dropout 0.5 after each
    hidden layer; the code is the second hidden layer."""

    def __init__(self, device: str | None = None):
        super().__init__()
        self.encoder = Sequential(
            Flatten(), Linear(784, 256, device=device), Sigmoid(), Dropout(0.5),
            Linear(256, 256, device=device), Sigmoid(), Dropout(0.5),
        )  # fmt: skip
        self.decoder = Sequential(Linear(256, 784, device=device), Sigmoid(), Unflatten(1, (1, 28, 28)))


class LinearAutoencoder(Autoencoder):
    """x (N, *image_shape) -> code = W_e x + b_e (N, code_size) -> W_d code + b_d, no activation anywhere.
    Trained with MSE, an undercomplete one (code_size < inputs) spans at its optimum the subspace of
    the data's first code_size principal components (Baldi & Hornik 1989); an overcomplete one can
    copy its input exactly (W_d W_e = I)."""

    def __init__(self, inputs: int, code_size: int, image_shape=(1, 28, 28), device: str | None = None):
        super().__init__()
        self.encoder = Sequential(Flatten(), Linear(inputs, code_size, device=device))
        self.decoder = Sequential(Linear(code_size, inputs, device=device), Unflatten(1, image_shape))


def pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean (D,) of x (N, ...) flattened to (N, D), and its first k principal directions as
    orthonormal columns (D, k): the right singular vectors of the centred data, largest first."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return mean, vt[:k].T


class SigmoidConvAutoencoder(Autoencoder):
    """A small convolutional AE with sigmoid codes (for the contractive penalty of a conv encoder):
    1×28×28 -> 16×14×14 -> 16×7×7 (the code: 784 units in (0, 1)) and back by transposed convolutions."""

    def __init__(self, channels: int = 16, device: str | None = None):
        super().__init__()
        c = channels
        self.encoder = Sequential(
            Conv2d(1, c, 3, stride=2, padding=1, device=device), Sigmoid(),  # 28 -> 14
            Conv2d(c, c, 3, stride=2, padding=1, device=device), Sigmoid(),  # 14 -> 7
        )  # fmt: skip
        self.decoder = Sequential(
            ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1, device=device), Sigmoid(),  # 7 -> 14
            ConvTranspose2d(c, 1, 3, stride=2, padding=1, output_padding=1, device=device), Sigmoid(),  # 14 -> 28
        )  # fmt: skip


# ------------------------------------------------------------------ penalties
def l1_penalty(code: Tensor) -> Tensor:
    """Mean over the batch of Σ_j |h_j|."""
    return ops.abs(code).sum() / code.shape[0]


def kl_sparsity(code: Tensor, rho: float) -> Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the mean activation of unit j over the batch (activations in (0, 1))."""
    if not 0 < rho < 1:
        raise ValueError(f"target activation rho must be in (0, 1), got {rho}")
    rho_hat = ops.clamp(code.mean(0), 1e-6, 1 - 1e-6)
    return (rho * ops.log(rho / rho_hat) + (1 - rho) * ops.log((1 - rho) / (1 - rho_hat))).sum()


def contractive_penalty(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """‖J‖_F² of the sigmoid encoder h = σ(x Wᵀ + b), averaged over the batch, exactly:
    J_ji = h_j (1 - h_j) W_ji, so ‖J‖_F² = Σ_j (h_j (1 - h_j))² Σ_i W_ji².
    x (N, ...) is flattened to (N, in); weight (code, in); bias (code,)."""
    ### BEGIN SOLUTION exercise 11
    h = ops.sigmoid(ops.linear(x.reshape(x.shape[0], -1), weight, bias))
    slope = h * (1 - h)
    return ((slope * slope) * (weight * weight).sum(1)).sum() / x.shape[0]
    ### END SOLUTION


def jacobian_penalty(encode: Callable[[Tensor], Tensor], x: Tensor, samples: int | None = None) -> Tensor:
    """‖∂enc(x)/∂x‖_F² of any encoder, averaged over the batch, by double backward: a differentiable
    loss term (the contractive penalty of a deep or convolutional encoder). x (N, ...); the encoder
    must treat the samples of a batch independently (no batch statistics, no dropout).
      samples=None, exactly: Σ_j ‖∂h_j/∂x‖², one backward per code unit j (the sum over the batch of
        h_nj has ∂/∂x_n = ∂h_nj/∂x_n, so one backward serves every sample);
      samples=S, Hutchinson's estimate: the mean over S draws of ‖vᵀJ‖² with v of random signs,
        unbiased since E[v vᵀ] = I; one backward per draw, whatever the code size."""
    if samples is not None and samples < 1:
        raise ValueError(f"jacobian_penalty: samples must be a positive number of draws or None (exact), got {samples}")
    n = x.shape[0]
    x = x.detach().requires_grad_()  # the Jacobian is with respect to this batch, not what made it
    h = encode(x).reshape(n, -1)
    if samples is None:
        probes = [h[:, j].sum() for j in range(h.shape[1])]
    else:
        generator = backend.generator(x.device)
        signs = [(generator.random(h.shape) < 0.5).astype(h.dtype) * 2 - 1 for _ in range(samples)]  # ±1
        probes = [(h * v).sum() for v in signs]
    total = None
    for probe in probes:
        (g,) = grad(probe, x, retain_graph=True, create_graph=True)
        term = (g * g).sum()
        total = term if total is None else total + term
    return total / (n * (1 if samples is None else samples))


# ------------------------------------------------------ deep: layer by layer
def pretrain_layerwise(
    sizes: Sequence[int],
    inputs: np.ndarray,
    train_level: Callable[[int, DenseAutoencoder, np.ndarray], None],
    encode: Callable[[DenseAutoencoder, np.ndarray], np.ndarray],
    activation: str = "sigmoid",
    device: str | None = None,
) -> list[DenseAutoencoder]:
    """Train one single-layer AE per level of `sizes` (784 -> h1 -> h2 ...), each on the codes
    of the level below, its code unit `activation`. train_level(level, ae, inputs) trains ae in
    place (plainly or denoising); encode(ae, inputs) gives the next level's inputs. Returns the
    trained levels."""
    levels = []
    for level, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        ae = DenseAutoencoder((a, b), image_shape=(1, 28, 28) if level == 0 else None, activation=activation,
                              device=device)  # fmt: skip
        train_level(level, ae, inputs)
        inputs = encode(ae, inputs)
        levels.append(ae)
    return levels


def stack(levels: Sequence[DenseAutoencoder], device: str | None = None) -> DenseAutoencoder:
    """One deep AE whose layers are copies of the pretrained levels: encoders in order,
    decoders in reverse, with the levels' activation; ready to fine-tune end to end."""
    sizes = [levels[0].sizes[0]] + [level.sizes[1] for level in levels]
    deep = DenseAutoencoder(sizes, image_shape=levels[0].image_shape, activation=levels[0].activation, device=device)
    encoders, decoders = deep.linears()
    for i, level in enumerate(levels):
        (enc,), (dec,) = level.linears()
        encoders[i].load_state_dict(enc.state_dict())
        decoders[len(levels) - 1 - i].load_state_dict(dec.state_dict())
    return deep


# --------------------------------------------------------------- using codes
def pick_pair(labels: np.ndarray, a: int, b: int, rng: np.random.Generator) -> tuple[int, int]:
    """Two different indices drawn at random, of an example of class a and one of class b."""
    i = rng.choice(np.flatnonzero(labels == a))
    j = rng.choice(np.flatnonzero((labels == b) & (np.arange(len(labels)) != i)))
    return int(i), int(j)


def interpolate(model: Module, a: Tensor, b: Tensor, alphas: Sequence[float], logits: bool = False) -> Tensor:
    """Decoded images of (1 - α) f(a) + α f(b) for each α: a, b (1, ...) -> (len(alphas), 1, 28, 28)."""
    with no_grad():
        za, zb = model.encode(a), model.encode(b)
        codes = ops.concat([za * (1 - t) + zb * t for t in alphas], 0)
        out = model.decode(codes)
        return ops.sigmoid(out) if logits else out


def manifold_walk(
    model: Module, x: Tensor, steps: int, mode: str = "reconstruct", step_size: float = 0.1, logits: bool = False,
    target: Tensor | None = None, pull: float = 0.1,
) -> list[np.ndarray]:  # fmt: skip
    """Frames of x walking to the data manifold, r = g∘f the reconstruction, η = step_size:
    reconstruct: x ← x + η (r(x) - x), the lecture's step along the DAE's vector field r(x) - x
                 (which points toward the data, ∝ ∇ₓ log p(x)); η = 1 is x ← r(x);
    gradient:    x ← clip(x - η ∇ₓ ‖r(x) - x‖², 0, 1), ascent on -‖r(x) - x‖²;
    toward:      x ← clip(x - η ∇ₓ (‖r(x) - x‖² + λ‖x - t‖²), 0, 1), the same ascent with a pull of
                 weight λ (`pull`) toward a target image t (1, ...), e.g. the mean of one digit's images:
                 it ends where the manifold and the pull balance, not on t itself."""
    if mode not in WALKS:
        raise ValueError(f"manifold_walk: mode must be one of {WALKS}, got {mode!r}")
    if (target is None) == (mode == "toward"):
        raise ValueError("manifold_walk: give a target image for mode 'toward', and only for it")

    def reconstruct(t):
        out = model(t)
        return ops.sigmoid(out) if logits else out

    frames = [x.numpy()]
    for _ in range(steps):
        if mode == "reconstruct":
            with no_grad():
                x = x + step_size * (reconstruct(x) - x)
        else:
            x = x.detach().requires_grad_()
            error = ((reconstruct(x) - x) ** 2).sum()
            if target is not None:
                error = error + pull * ((x - target) ** 2).sum()
            error.backward()
            x = ops.clamp(x.detach() - step_size * x.grad, 0.0, 1.0)
        frames.append(x.numpy())
    return frames


WALKS = ("reconstruct", "gradient", "toward")


def plausibility(images: np.ndarray, logits: np.ndarray, digits: np.ndarray, chunk: int = 4096) -> dict:
    """Are images (M, 1, 28, 28) plausible digits? Given a classifier's logits (M, 10) for them and a
    set of real digits (K, 1, 28, 28): each image's predicted class, its confidence (the softmax's
    largest probability) and its RMS pixel distance to the nearest real digit."""
    p = softmax(logits, axis=1)
    a, b = images.reshape(len(images), -1).astype(np.float64), digits.reshape(len(digits), -1)
    nearest = np.full(len(a), np.inf)
    for start in range(0, len(b), chunk):
        part = b[start : start + chunk].astype(np.float64)
        d2 = (a**2).sum(1)[:, None] + (part**2).sum(1)[None] - 2 * a @ part.T
        nearest = np.minimum(nearest, d2.min(axis=1))
    return {"class": p.argmax(axis=1), "confidence": p.max(axis=1),
            "nearest": np.sqrt(np.maximum(nearest, 0) / a.shape[1])}  # fmt: skip


def class_changed(first: np.ndarray, last: np.ndarray, target: int | None = None) -> np.ndarray:
    """Per walk (or strip), from the judge's classes of its first and last frames (M,): whether it changed
    class, and with a target, whether it changed to the target. A walk that never leaves one class does
    not count, even when that class is the target: it went nowhere the judge can tell."""
    changed = np.asarray(first) != np.asarray(last)
    return changed if target is None else changed & (np.asarray(last) == target)


def kmeans(points: np.ndarray, k: int, seed: int = 0, restarts: int = 5) -> np.ndarray:
    """Cluster labels of k-means (k-means++ starts; the best of `restarts` runs by distortion)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= len(points):
        raise ValueError(f"kmeans: k must be a whole number from 1 to the number of points ({len(points)}), got {k!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int | np.integer) or restarts < 1:
        raise ValueError(f"kmeans: restarts must be a whole number ≥ 1, got {restarts!r}")
    ### BEGIN SOLUTION exercise 12
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    best, best_cost = None, np.inf
    for r in range(restarts):
        centres, labels = kmeans2(points, k, minit="++", seed=np.random.default_rng([seed, r]))
        cost = ((points - centres[labels]) ** 2).sum()
        if cost < best_cost:
            best, best_cost = labels, cost
    return best
    ### END SOLUTION


def cluster_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy under the best one-to-one map of clusters to labels (Hungarian assignment)."""
    for name, values in (("labels", labels), ("clusters", clusters)):
        values = np.asarray(values)
        if values.size == 0 or values.dtype.kind not in "iu" or values.min() < 0:
            raise ValueError(
                f"cluster_accuracy: {name} must be a non-empty array of whole numbers ≥ 0, got {values.dtype} "
                f"{values.shape}" + (f" holding {values.min()}" if values.size and values.dtype.kind in "iuf" else "")
            )
    ### BEGIN SOLUTION exercise 12
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.shape != clusters.shape:
        raise ValueError(f"labels {labels.shape} and clusters {clusters.shape} differ in shape")
    n = max(labels.max(), clusters.max()) + 1
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    return counts[rows, cols].sum() / len(labels)
    ### END SOLUTION


def cluster_digits(labels: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (clusters × labels) matrix of counts, and the label each cluster stands for under the best
    one-to-one map (the Hungarian assignment that cluster_accuracy scores; -1 for a cluster left over)."""
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    label_of = np.full(len(counts), -1)
    label_of[rows] = cols
    return counts, label_of


class Classifier(Module):
    """An encoder (frozen or trained with the head) followed by a softmax classifier head."""

    def __init__(self, encoder: Module, code_size: int, classes: int = 10, hidden: int = 0, freeze: bool = False,
                 device: str | None = None):  # fmt: skip
        super().__init__()
        self.encoder, self.freeze = encoder, freeze
        layers: list[Module] = [Linear(code_size, hidden, device=device), ReLU()] if hidden else []
        layers.append(Linear(hidden or code_size, classes, device=device))
        self.head = Sequential(*layers)
        for p in encoder.parameters():
            p.requires_grad = not freeze

    def parameters(self):
        return (p for p in super().parameters() if p.requires_grad)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, classes)."""
        code = self.encoder(x)
        return self.head(code.detach() if self.freeze else code)
