"""conv2d and conv_transpose2d, forward and backward.

Everything rests on three array primitives of conv2d (x: (N, C, H, W), w: (O, C, kh, kw),
y: (N, O, Ho, Wo)):

    conv2d_output(x, w)            y[n,o,p,q]  = Σ_c,i,j w[o,c,i,j] · xpad[n,c,p·sh+i,q·sw+j]
    conv2d_input_grad(gy, w)       gx = the adjoint of x ↦ y (scatter each window back)
    conv2d_weight_grad(x, gy)      gw[o,c,i,j] = Σ_n,p,q gy[n,o,p,q] · xpad[n,c,p·sh+i,q·sw+j]

conv_transpose2d is the adjoint of conv2d, so it needs no primitive of its own:
its forward is conv2d_input_grad, its input gradient is conv2d_output, and its
weight gradient is conv2d_weight_grad with the roles of input and output swapped.

On the cpu each primitive is im2col (a strided view, one copy) and one BLAS matmul
(an op computes each im2col matrix once and hands it to the primitives that need it);
on cuda and emu it launches the kernels of kernels/conv2d.cu (the _launch_* functions).
"""

from __future__ import annotations

from .. import backend
from ..autograd.tensor import Function, Tensor
from ..launch import MAX_SHARED_BYTES, blocks, ints, launch
from .windows import add_windows, crop_hw, output_size, pad_hw, pair, sliding_windows


def im2col(x, kernel, stride, padding):
    """(C·kh·kw, N·Ho·Wo) matrix of x's windows (one copy of a strided view)."""
    windows = sliding_windows(pad_hw(x, padding), kernel, stride)  # (N, C, kh, kw, Ho, Wo)
    n, c, kh, kw, ho, wo = windows.shape
    return windows.transpose(1, 2, 3, 0, 4, 5).reshape(c * kh * kw, n * ho * wo)


def conv2d_output(x, w, stride, padding, device: str, cols=None):
    """y = conv2d(x, w) without bias: (N, C, H, W), (O, C, kh, kw) -> (N, O, Ho, Wo).
    cols: x's im2col matrix, if the caller already has it."""
    if device in backend.KERNEL_DEVICES:
        return _launch_forward(x, w, stride, padding, device)
    o, (n, _, h, wd) = w.shape[0], x.shape
    ho, wo = output_size(h, w.shape[2], stride[0], padding[0]), output_size(wd, w.shape[3], stride[1], padding[1])
    cols = im2col(x, w.shape[2:], stride, padding) if cols is None else cols
    y = w.reshape(o, -1) @ cols
    return y.reshape(o, n, ho, wo).transpose(1, 0, 2, 3).copy()


def conv2d_input_grad(gy, w, in_hw, stride, padding, device: str):
    """gx of conv2d: (N, O, Ho, Wo), (O, C, kh, kw) -> (N, C, H, W) with (H, W) = in_hw."""
    if device in backend.KERNEL_DEVICES:
        return _launch_backward_input(gy, w, in_hw, stride, padding, device)
    n, o, ho, wo = gy.shape
    _, c, kh, kw = w.shape
    cols = w.reshape(o, -1).T @ gy.transpose(1, 0, 2, 3).reshape(o, -1)  # (C·kh·kw, N·Ho·Wo)
    # col2im channel-major: each (i, j) slice of cols is then one contiguous (C, N, Ho, Wo) block
    windows = cols.reshape(c, kh, kw, n, ho, wo).transpose(0, 3, 1, 2, 4, 5)
    h, w_ = in_hw
    padded = add_windows(windows, (c, n, h + 2 * padding[0], w_ + 2 * padding[1]), stride)
    return crop_hw(padded, padding, in_hw).transpose(1, 0, 2, 3).copy()


def conv2d_weight_grad(x, gy, kernel, stride, padding, device: str, cols=None):
    """gw of conv2d: (N, C, H, W), (N, O, Ho, Wo) -> (O, C, kh, kw). cols: x's im2col matrix, if known."""
    if device in backend.KERNEL_DEVICES:
        return _launch_backward_weight(x, gy, kernel, stride, padding, device)
    o = gy.shape[1]
    cols = im2col(x, kernel, stride, padding) if cols is None else cols
    gw = gy.transpose(1, 0, 2, 3).reshape(o, -1) @ cols.T
    return gw.reshape(o, x.shape[1], *kernel)


def bias_grad(gy, device: str):
    """gb = Σ over n, p, q of gy: (N, O, Ho, Wo) -> (O,)."""
    if device in backend.KERNEL_DEVICES:
        n, o, ho, wo = gy.shape
        gb = backend.array_module(device).empty((o,), dtype=gy.dtype)
        launch("conv2d.cu", "bias_backward", gy.dtype, device, o, (_c(gy, device), gb, *ints(n, o, ho * wo)))
        return gb
    return gy.sum(axis=(0, 2, 3))


# ------------------------------------------------------------ kernel launches
CONV_TILE, CONV_LANES, CONV_MAX_GROUP = 8, 4, 64  # as in kernels/conv2d.cu; 8·8 pixels × 4 lanes = 256 threads


def _c(array, device):
    return backend.array_module(device).ascontiguousarray(array)


def _dims(x_shape, w_shape, y_hw, stride, padding):
    """The int arguments every conv2d kernel takes: N C H W O KH KW SH SW PH PW HO WO."""
    n, c, h, w = x_shape
    o, _, kh, kw = w_shape
    return ints(n, c, h, w, o, kh, kw, *stride, *padding, *y_hw)


def _launch_forward(x, w, stride, padding, device):
    (n, c, h, wd), (o, _, kh, kw) = x.shape, w.shape
    ho, wo = output_size(h, kh, stride[0], padding[0]), output_size(wd, kw, stride[1], padding[1])
    group = min(CONV_MAX_GROUP, -(-o // CONV_LANES) * CONV_LANES)
    patch = ((CONV_TILE - 1) * stride[0] + kh) * ((CONV_TILE - 1) * stride[1] + kw)
    per_channel = x.dtype.itemsize * (patch + group * kh * kw)  # shared bytes per staged input channel
    chunk = min(c, MAX_SHARED_BYTES // per_channel)
    if chunk < 1:
        raise ValueError(
            f"conv2d kernel: a {kh}x{kw} window with stride {stride} needs more shared memory than a GPU has"
        )
    y = backend.array_module(device).empty((n, o, ho, wo), dtype=x.dtype)
    grid = (-(-wo // CONV_TILE), -(-ho // CONV_TILE), n * -(-o // group))
    args = (_c(x, device), _c(w, device), y, *_dims(x.shape, w.shape, (ho, wo), stride, padding), *ints(chunk, group))
    launch("conv2d.cu", "conv2d_forward", x.dtype, device, grid, args, shared_mem=chunk * per_channel)
    return y


def _launch_backward_input(gy, w, in_hw, stride, padding, device):
    n, c = gy.shape[0], w.shape[1]
    gx = backend.array_module(device).empty((n, c, *in_hw), dtype=gy.dtype)
    args = (_c(gy, device), _c(w, device), gx, *_dims(gx.shape, w.shape, gy.shape[2:], stride, padding))
    launch("conv2d.cu", "conv2d_backward_input", gy.dtype, device, blocks(gx.size), args)
    return gx


def _launch_backward_weight(x, gy, kernel, stride, padding, device):
    o, c = gy.shape[1], x.shape[1]
    gw = backend.array_module(device).empty((o, c, *kernel), dtype=x.dtype)
    args = (_c(x, device), _c(gy, device), gw, *_dims(x.shape, gw.shape, gy.shape[2:], stride, padding))
    launch("conv2d.cu", "conv2d_backward_weight", x.dtype, device, gw.size, args)
    return gw


# ------------------------------------------------------------------- the ops
class Conv2d(Function):
    def forward(self, x, w, b=None, *, stride, padding):
        self.x, self.w, self.stride, self.padding = x, w, stride, padding
        # on the cpu, x's im2col serves the forward and, later, the weight gradient
        self.cols = im2col(x, w.shape[2:], stride, padding) if self.device == "cpu" else None
        y = conv2d_output(x, w, stride, padding, self.device, self.cols)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def backward(self, gy):
        gx = None
        if self.needs_grad[0]:  # not for the images entering the first layer
            gx = conv2d_input_grad(gy, self.w, self.x.shape[2:], self.stride, self.padding, self.device)
        gw = conv2d_weight_grad(self.x, gy, self.w.shape[2:], self.stride, self.padding, self.device, self.cols)
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, bias_grad(gy, self.device))


class ConvTranspose2d(Function):
    """The adjoint of Conv2d: x (N, C_in, H, W), w (C_in, C_out, kh, kw) -> (N, C_out, H_out, W_out)."""

    def forward(self, x, w, b=None, *, stride, padding, out_hw):
        self.x, self.w, self.stride, self.padding = x, w, stride, padding
        y = conv2d_input_grad(x, w, out_hw, stride, padding, self.device)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def backward(self, gy):
        # on the cpu one im2col of gy serves both gradients
        cols = im2col(gy, self.w.shape[2:], self.stride, self.padding) if self.device == "cpu" else None
        gx = conv2d_output(gy, self.w, self.stride, self.padding, self.device, cols) if self.needs_grad[0] else None
        gw = conv2d_weight_grad(gy, self.x, self.w.shape[2:], self.stride, self.padding, self.device, cols)
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, bias_grad(gy, self.device))


def _check(name: str, x: Tensor, w: Tensor, b: Tensor | None, channels_in: int, channels_out: int) -> None:
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{name}: input, weight and bias must share a dtype, got {x.dtype} and {w.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be NCHW (4 dims), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{name}: weight must have 4 dims, got shape {w.shape}")
    if x.shape[1] != channels_in:
        raise ValueError(
            f"{name}: weight {w.shape} expects {channels_in} input channels, input {x.shape} has {x.shape[1]}"
        )
    if b is not None and b.shape != (channels_out,):
        raise ValueError(f"{name}: bias of shape ({channels_out},) expected, got {b.shape}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation. x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O,) -> (N, O, Ho, Wo),
    Ho = floor((H + 2·ph - kh) / sh) + 1."""
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    _check("conv2d", x, weight, bias, weight.shape[1], weight.shape[0])
    out = [output_size(x.shape[2 + d], weight.shape[2 + d], stride[d], padding[d]) for d in range(2)]
    if min(stride) < 1 or min(padding) < 0 or min(out) < 1:
        raise ValueError(
            f"conv2d: input {x.shape} with kernel {weight.shape[2:]}, stride {stride}, padding {padding} "
            f"gives output size {tuple(out)}; stride must be ≥ 1, padding ≥ 0, output ≥ 1"
        )
    args = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*args, stride=stride, padding=padding)


def conv_transpose2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, output_padding=0
) -> Tensor:
    """Transposed convolution. x: (N, C_in, H, W), weight: (C_in, C_out, kh, kw) -> (N, C_out, H_out, W_out),
    H_out = (H - 1)·sh - 2·ph + kh + output_padding_h."""
    stride, padding, extra = pair(stride, "stride"), pair(padding, "padding"), pair(output_padding, "output_padding")
    _check("conv_transpose2d", x, weight, bias, weight.shape[0], weight.shape[1])
    if any(e >= s or e < 0 for e, s in zip(extra, stride)) or min(stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"conv_transpose2d: output_padding {extra} must be ≥ 0 and smaller than stride {stride}; "
            f"padding {padding} must be ≥ 0"
        )
    out_hw = tuple((x.shape[2 + d] - 1) * stride[d] - 2 * padding[d] + weight.shape[2 + d] + extra[d] for d in range(2))
    if min(out_hw) < 1:
        raise ValueError(f"conv_transpose2d: input {x.shape} and weight {weight.shape} give output size {out_hw}")
    args = (x, weight) if bias is None else (x, weight, bias)
    return ConvTranspose2d.apply(*args, stride=stride, padding=padding, out_hw=out_hw)
