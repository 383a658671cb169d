"""Layers, containers and initialisers (PyTorch's names and weight layouts)."""

from . import functional, init
from .layers import (
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
    Unflatten,
    Upsample,
)
from .module import Module, Parameter, Sequential

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "ConvTranspose2d",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Unflatten",
    "Upsample",
    "functional",
    "init",
]
