"""minidl.nn.functional: the ops as functions, under PyTorch's names."""

from ..ops import (  # noqa: F401  (re-exported)
    avg_pool2d,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    conv2d,
    conv_transpose2d,
    cross_entropy,
    dropout,
    leaky_relu,
    linear,
    log_softmax,
    max_pool2d,
    mse_loss,
    pad,
    relu,
    sigmoid,
    sigmoid_mse_loss,
    silu,
    softmax,
    softplus,
    tanh,
    upsample,
)

interpolate = upsample
