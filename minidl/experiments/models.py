"""The lab's autoencoders, their initialisation, deep ones built level by level, and a classifier
on an encoder.

ModelC (the convolutional DAE of benchmarks/README.md), ModelD (the dense DAE), ModelP (the
lectures' conv AE with max-pooling and upsampling), DenseAutoencoder (any stack of sigmoid
layers, with encode/decode), SigmoidConvAutoencoder, LinearAutoencoder (no activation: with MSE
it learns PCA's subspace, see latent.pca). Deep models: layer-wise pretraining, then
stack_levels into one model to fine-tune.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend, optim
from ..autograd.tensor import Tensor
from ..nn import (
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


@dataclass(frozen=True)
class MainJobModel:
    """How the main job (examples/conv_dae_mnist.py) trains one of its models; normalization.py and
    dae_mnist.py train them the same way."""

    label: str
    make: Callable[..., Module]  # the constructor: make(device=...)
    output_layer: Callable[[Module], Module]  # the sigmoid's input layer, started at the mean image
    logits: bool  # whether the model ends in logits (the sigmoid fused into the loss)
    lr: float  # Adam's learning rate

    def start(self, images: np.ndarray, device: str | None = None) -> tuple[Module, optim.Adam]:
        """A fresh model on `device`, its output layer started at the mean of `images` (start_at_mean),
        and the Adam that trains it."""
        model = self.make(device=device)
        start_at_mean(self.output_layer(model), images)
        return model, optim.Adam(model.parameters(), lr=self.lr)


# The learning rates are the fastest to converge on the validation split of those tried (MSE, input
# + 0.3·N(0, 1), 1 thread, 2026-12-07): Model C at 2e-3 reached 0.00487 at epoch 11 and stopped at
# 12, at 1e-3 0.00489 at 16; Model D at 3e-3 stopped at epoch 17 (0.0151), at 1e-3 had not
# converged by 20 (0.0161), at 1e-2 was at 0.0189 after 14.
MAIN_JOB = {
    "model_c": MainJobModel("Model C (conv)", ModelC, lambda m: m.decoder[-1], logits=True, lr=2e-3),
    "model_d": MainJobModel("Model D (dense)", ModelD, lambda m: m.decoder[0], logits=False, lr=3e-3),
}


class LinearAutoencoder(Autoencoder):
    """x (N, *image_shape) -> code = W_e x + b_e (N, code_size) -> W_d code + b_d, no activation anywhere.
    Trained with MSE, an undercomplete one (code_size < inputs) spans at its optimum the subspace of
    the data's first code_size principal components (Baldi & Hornik 1989); an overcomplete one can
    copy its input exactly (W_d W_e = I)."""

    def __init__(self, inputs: int, code_size: int, image_shape=(1, 28, 28), device: str | None = None):
        super().__init__()
        self.encoder = Sequential(Flatten(), Linear(inputs, code_size, device=device))
        self.decoder = Sequential(Linear(code_size, inputs, device=device), Unflatten(1, image_shape))


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


def stack_levels(levels: Sequence[DenseAutoencoder], device: str | None = None) -> DenseAutoencoder:
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
