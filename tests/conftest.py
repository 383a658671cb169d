"""Shared test helpers. Tensors are made on the default device, so
`MINIDL_DEVICE=emu pytest` runs the same tests through the CUDA kernels on the emulator."""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minidl as md

settings.register_profile(
    "minidl", deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("minidl")


def leaf(array, requires_grad=True, dtype=np.float64):
    """A float64 leaf tensor on the default device."""
    return md.tensor(np.asarray(array), requires_grad=requires_grad, dtype=dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
