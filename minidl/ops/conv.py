"""conv2d and conv_transpose2d, forward and backward.

Everything rests on three array primitives of conv2d (x: (N, C, H, W), w: (O, C, kh, kw),
y: (N, O, Ho, Wo)):

    conv2d_output(x, w)            y[n,o,p,q]  = Σ_c,i,j w[o,c,i,j] · xpad[n,c,p·sh+i,q·sw+j]
    conv2d_input_grad(gy, w)       gx = the adjoint of x ↦ y (scatter each window back)
    conv2d_weight_grad(x, gy)      gw[o,c,i,j] = Σ_n,p,q gy[n,o,p,q] · xpad[n,c,p·sh+i,q·sw+j]

conv_transpose2d is the adjoint of conv2d, so it needs no primitive of its own:
its forward is conv2d_input_grad, its input gradient is conv2d_output, and its
weight gradient is conv2d_weight_grad with the roles of input and output swapped.

The ops: Conv2d, ConvTranspose2d, and two gradients that are ops of their own (Conv2dWeightGrad,
BiasGrad), so that each op's backward is written once in ops and differentiates again.

The array path (NumPy, or CuPy on a GPU without our kernels) computes each primitive as
im2col (a strided view, one copy) and one matmul; conv2d's forward hands its im2col matrix
of x on to its weight gradient (Conv2dWeightGrad), so that it is made once (and conv_transpose2d's backward
makes gy's once for its two gradients). It works with the batch last: im2col's
columns are (p, q, n), so a matmul's result (O, Ho·Wo·N) is already an image stored as
(O, Ho, Wo, N), and the primitives return it as the (N, O, Ho, Wo) view of that storage
instead of copying it into NCHW order. The next op's im2col or col2im then reads runs of N
contiguous values (elementwise ops in between keep the layout). Where it is cheaper (stride 1, by the
rules shifted_is_cheaper and transposed_as_conv, measured) the ops skip the im2col or col2im matrix:
conv2d as kh·kw shifted matmuls, conv_transpose2d as the convolution with the flipped kernel. The kernel path launches
the kernels of kernels/conv2d.cu for the same three primitives and the bias gradient.
"""

from __future__ import annotations

from .. import backend, validate
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..runtime import MAX_SHARED_BYTES, Out, define, launch
from ..validate import pair
from .reductions import Expand
from .windows import add_windows, output_size, sliding_windows

# kernels/conv2d.cu's tiles, compiled into it as -D constants (its static_asserts check how they fit)
TILES = define(
    "conv2d.cu",
    CONV_TILE=8,  # conv2d_forward: output tile of CONV_TILE x CONV_TILE pixels per block
    CONV_LANES=4,  # conv2d_forward: threads per pixel, each owning every CONV_LANES-th channel
    CONV_MAX_GROUP=64,  # conv2d_forward: most output channels per block
    WG_TILE=16,  # conv2d_backward_weight: tiles of WG_TILE x WG_TILE weights, one thread each
)
FORWARD_MIN_BLOCKS = 512  # conv2d_forward: smaller groups of output channels while the grid has fewer blocks
# the sums over m = (n, p, q) of conv2d_backward_weight and bias_backward are split until there are
SPLIT_BLOCKS = 1024  # about this many blocks (a GPU's SMs several times),
SPLIT_MIN_CHUNK = 256  # but each split sums at least this many values of m


# ------------------------------------------------------------- the array path
def batch_last(x, padding):
    """x (N, C, H, W) as a zero-padded (C, H + 2ph, W + 2pw, N) array: a view of x when it needs
    no padding (contiguous when x is stored batch last), else one copy."""
    xt = x.transpose(1, 2, 3, 0)
    (ph, pw), (c, h, w, n) = padding, xt.shape
    if ph == 0 and pw == 0:
        return xt
    image = backend.array_module_of(x).zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    image[:, ph : ph + h, pw : pw + w] = xt
    return image


def im2col(x, kernel, stride, padding):
    """(C·kh·kw, Ho·Wo·N) matrix of x's windows, the batch last: row (c, i, j), column (p, q, n)
    holds xpad[n, c, p·sh + i, q·sw + j]. One copy of a strided view of batch_last(x)."""
    ### BEGIN SOLUTION exercise 3
    image = batch_last(x, padding)  # (C, Hp, Wp, N)
    windows = sliding_windows(image.transpose(3, 0, 1, 2), kernel, stride)  # (N, C, kh, kw, Ho, Wo), a view
    n, c, kh, kw, ho, wo = windows.shape
    return windows.transpose(1, 2, 3, 4, 5, 0).reshape(c * kh * kw, ho * wo * n)
    ### END SOLUTION


def conv2d_output(x, w, stride, padding, cols=None):
    """y = conv2d(x, w) without bias: (N, C, H, W), (O, C, kh, kw) -> (N, O, Ho, Wo), stored batch
    last. cols: x's im2col matrix, if the caller already has it."""
    ### BEGIN SOLUTION exercise 3
    o, (n, _, h, wd) = w.shape[0], x.shape
    ho, wo = output_size(h, w.shape[2], stride[0], padding[0]), output_size(wd, w.shape[3], stride[1], padding[1])
    cols = im2col(x, w.shape[2:], stride, padding) if cols is None else cols
    y = w.reshape(o, -1) @ cols  # (O, Ho·Wo·N)
    return y.reshape(o, ho, wo, n).transpose(3, 0, 1, 2)
    ### END SOLUTION


def conv2d_input_grad(gy, w, in_hw, stride, padding):
    """gx of conv2d: (N, O, Ho, Wo), (O, C, kh, kw) -> (N, C, H, W) with (H, W) = in_hw, stored batch last."""
    ### BEGIN SOLUTION exercise 4
    n, o, ho, wo = gy.shape
    _, c, kh, kw = w.shape
    (ph, pw), (h, w_) = padding, in_hw
    # the batch last all the way through col2im: its slice-adds then run over long contiguous rows
    cols = w.reshape(o, -1).T @ gy.transpose(1, 2, 3, 0).reshape(o, -1)  # (C·kh·kw, Ho·Wo·N)
    padded = add_windows(cols.reshape(c, kh, kw, ho, wo, n), (c, h + 2 * ph, w_ + 2 * pw, n), stride)
    return padded[:, ph : ph + h, pw : pw + w_].transpose(3, 0, 1, 2)
    ### END SOLUTION


def times_transposed(a, b):
    """a @ bᵀ for a (O, M) and b (K, M) with a long M (the weight gradients' sums over pixels), computed
    as (b @ aᵀ)ᵀ: the same sums, which OpenBLAS runs faster in that orientation. Measured (1 thread,
    ms of CPU, a @ bᵀ / (b @ aᵀ)ᵀ): Model C's (64, 6272)·(288, 6272)ᵀ 3.92 / 3.32, (32, 6272)·(144, 6272)ᵀ
    1.04 / 0.79; Model P's (8, 28672)·(16, 28672)ᵀ 0.40 / 0.34; (16, 25088)·(9, 25088)ᵀ 0.29 / 0.30."""
    return (b @ a.T).T


def conv2d_weight_grad(x, gy, kernel, stride, padding, cols=None):
    """gw of conv2d: (N, C, H, W), (N, O, Ho, Wo) -> (O, C, kh, kw). cols: x's im2col matrix, if known."""
    ### BEGIN SOLUTION exercise 4
    o = gy.shape[1]
    cols = im2col(x, kernel, stride, padding) if cols is None else cols
    gw = times_transposed(gy.transpose(1, 2, 3, 0).reshape(o, -1), cols)  # (O, Ho·Wo·N) @ (Ho·Wo·N, C·kh·kw)
    return gw.reshape(o, x.shape[1], *kernel)
    ### END SOLUTION


# -------------------------------------------- the array path without im2col (stride 1)
def shifted_is_cheaper(c_in: int, c_out: int, stride: tuple[int, int]) -> bool:
    """Whether a stride-1 conv2d with c_in input and c_out output channels (its forward and weight
    gradient) runs cheaper as kh·kw shifted matmuls (conv2d_output_shifted, conv2d_weight_grad_shifted)
    than through im2col. im2col writes and reads C·kh·kw values per output pixel, once for both; the
    shifted products read C and accumulate O values per pixel and offset, in each of the two: they win
    while c_out ≤ c_in / 4. Measured (1 thread, batch 128, 3×3, ms of CPU, im2col / shifted; the
    weight gradient with im2col building its matrix): 16→1 at 28×28 forward 11.4 / 1.4, weight
    gradient 11.7 / 1.3; 16→8 at 14×14 3.3 / 2.1 and 4.2 / 3.0 (with the forward's matrix handed on,
    no gain); 1→16 at 28×28 1.2 / 23.3; 8→16 at 14×14 1.9 / 3.2; 32→64 at 7×7 3.4 / 4.0."""
    return tuple(stride) == (1, 1) and 4 * c_out <= c_in


def padded_rows(x, kernel, padding):
    """x (N, C, H, W) zero-padded, batch last and flattened: (C, Hp·Wp·N + (kw-1)·N), so that
    xpad[n, c, p + i, q + j] is row c at (p·Wp + q)·N + n + (i·Wp + j)·N: each offset (i, j) of the
    windows is one slice of columns (the zero tail keeps the last offsets' slices in bounds)."""
    xp = backend.array_module_of(x)
    (n, c, h, w), (_, kw), (ph, pw) = x.shape, kernel, padding
    hp, wp = h + 2 * ph, w + 2 * pw
    rows = xp.zeros((c, hp * wp * n + (kw - 1) * n), dtype=x.dtype)
    rows[:, : hp * wp * n].reshape(c, hp, wp, n)[:, ph : ph + h, pw : pw + w] = x.transpose(1, 2, 3, 0)
    return rows


def conv2d_output_shifted(x, w, padding, rows=None):
    """conv2d_output for stride 1 as Σ_i,j w[:, :, i, j] @ (x's rows shifted by (i, j)): the outputs
    (O, Ho, Wp, N) over the padded width, of which columns q < Wo are the image (stored batch last).
    rows: padded_rows(x), if the caller already has it."""
    xp = backend.array_module_of(x)
    (n, _, h, wd), (o, _, kh, kw) = x.shape, w.shape
    rows = padded_rows(x, (kh, kw), padding) if rows is None else rows
    wp = wd + 2 * padding[1]
    ho, wo = h + 2 * padding[0] - kh + 1, wp - kw + 1
    length = ho * wp * n
    y, product = xp.empty((o, length), dtype=x.dtype), xp.empty((o, length), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            start = (i * wp + j) * n
            xp.matmul(w[:, :, i, j], rows[:, start : start + length], out=product if i or j else y)
            if i or j:
                y += product
    return y.reshape(o, ho, wp, n)[:, :, :wo].transpose(3, 0, 1, 2)


def conv2d_weight_grad_shifted(x, gy, kernel, padding, rows=None):
    """conv2d_weight_grad for stride 1: gw[:, :, i, j] = gy's rows @ (x's rows shifted by (i, j))ᵀ, with
    gy zero-padded to the padded width (the columns q ≥ Wo, which no output has). rows: padded_rows(x),
    if the caller already has it (conv2d's forward made it)."""
    xp = backend.array_module_of(x)
    (n, o, ho, wo), (kh, kw) = gy.shape, kernel
    rows = padded_rows(x, kernel, padding) if rows is None else rows
    wp = x.shape[3] + 2 * padding[1]
    g = xp.zeros((o, ho, wp, n), dtype=gy.dtype)
    g[:, :, :wo] = gy.transpose(1, 2, 3, 0)
    g, length = g.reshape(o, -1), ho * wp * n
    gw = xp.empty((o, x.shape[1], kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            start = (i * wp + j) * n
            gw[:, :, i, j] = times_transposed(g, rows[:, start : start + length])
    return gw


def transposed_as_conv(w, stride, padding):
    """conv_transpose2d's forward (conv2d_input_grad) as a convolution, where that is cheaper: for stride
    1 and padding ≤ k - 1 it is conv2d with the kernel flipped, its channels swapped and padding
    k - 1 - p. That reads C_in·kh·kw values per pixel where col2im writes and adds C_out·kh·kw, so it
    is taken while C_in < C_out. Measured (1 thread, batch 128, 3×3, ms of CPU, col2im / as conv2d):
    1→16 at 28×28 27.3 / 1.5, 8→16 at 14×14 3.2 / 1.3, 32→64 at 7×7 4.8 / 2.8; but 16→1 at 28×28
    1.0 / 10.8, 16→8 at 14×14 1.7 / 2.3, 64→32 at 7×7 3.1 / 4.1. Returns (weight, padding), or None."""
    (c_in, c_out, kh, kw), (ph, pw) = w.shape, padding
    if tuple(stride) != (1, 1) or c_in >= c_out or ph > kh - 1 or pw > kw - 1:
        return None
    return w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], (kh - 1 - ph, kw - 1 - pw)


# ------------------------------------------------------------ the kernel path
def _sizes(x_shape, w_shape, y_hw, stride, padding) -> dict[str, int]:
    """The numbers every conv2d kernel takes, by name: N C H W O KH KW SH SW PH PW HO WO."""
    (n, c, h, w), (o, _, kh, kw), (sh, sw), (ph, pw), (ho, wo) = x_shape, w_shape, stride, padding, y_hw
    return dict(N=n, C=c, H=h, W=w, O=o, KH=kh, KW=kw, SH=sh, SW=sw, PH=ph, PW=pw, HO=ho, WO=wo)


def forward_group(n: int, o: int, tiles: int) -> int:
    """conv2d_forward's output channels per block (a multiple of CONV_LANES): as many as one
    block takes (CONV_MAX_GROUP), halved while the grid of n · ⌈o / group⌉ · tiles blocks is
    smaller than FORWARD_MIN_BLOCKS, so that small images (Model C's 7×7) still fill a GPU."""
    lanes = TILES["CONV_LANES"]
    group = min(TILES["CONV_MAX_GROUP"], -(-o // lanes) * lanes)
    while group > lanes and n * -(-o // group) * tiles < FORWARD_MIN_BLOCKS:
        group = max(lanes, group // 2 // lanes * lanes)
    return group


def conv2d_output_kernel(x, w, stride, padding):
    """conv2d_output through kernels/conv2d.cu: one block per 8×8 output tile, image and
    group of output channels (forward_group), input channels staged through shared memory."""
    (n, c, h, wd), (o, _, kh, kw) = x.shape, w.shape
    ho, wo = output_size(h, kh, stride[0], padding[0]), output_size(wd, kw, stride[1], padding[1])
    tile = TILES["CONV_TILE"]
    tiles = -(-ho // tile) * -(-wo // tile)
    group = forward_group(n, o, tiles)
    patch = ((tile - 1) * stride[0] + kh) * ((tile - 1) * stride[1] + kw)
    per_channel = x.dtype.itemsize * (patch + group * kh * kw)  # shared bytes per staged input channel
    chunk = min(c, MAX_SHARED_BYTES // per_channel)
    if chunk < 1:
        raise ValueError(
            f"conv2d kernel: a {kh}x{kw} window with stride {stride} needs more shared memory than a GPU has"
        )
    return launch(
        "conv2d_forward", x, w, Out((n, o, ho, wo)), **_sizes(x.shape, w.shape, (ho, wo), stride, padding), CC=chunk,
        OG=group, grid=n * -(-o // group) * tiles, shared_mem=chunk * per_channel,
    )  # fmt: skip


def conv2d_input_grad_kernel(gy, w, in_hw, stride, padding):
    """conv2d_input_grad through kernels/conv2d.cu: a gather, one thread per element of gx."""
    gx_shape = (gy.shape[0], w.shape[1], *in_hw)
    sizes = _sizes(gx_shape, w.shape, gy.shape[2:], stride, padding)
    return launch(
        "conv2d_backward_input", gy, w, Out(gx_shape), **sizes, threads=gy.shape[0] * w.shape[1] * in_hw[0] * in_hw[1]
    )


def conv2d_weight_grad_kernel(x, gy, kernel, stride, padding, with_bias: bool = False):
    """conv2d_weight_grad through kernels/conv2d.cu, and with_bias also gb = Σ_n,p,q gy (else None):
    a split-K implicit GEMM over m = (n, p, q) into (splits, O, C·kh·kw + with_bias) partial sums,
    then their sum in split order (bitwise repeatable)."""
    o, (n, c), (ho, wo) = gy.shape[1], x.shape[:2], gy.shape[2:]
    gw_shape, columns, tile = (o, c, *kernel), c * kernel[0] * kernel[1] + with_bias, TILES["WG_TILE"]
    tiles = -(-o // tile) * -(-columns // tile)
    splits, chunk = _splits(n * ho * wo, tiles)
    sizes = _sizes(x.shape, gw_shape, (ho, wo), stride, padding)
    partial = launch("conv2d_backward_weight", x, gy, Out((splits, o, columns)), **sizes, has_bias=int(with_bias),
                     chunk=chunk, grid=(tiles, splits))  # fmt: skip
    gw, gb = launch("conv2d_weight_total", partial, Out(gw_shape), Out((o if with_bias else 1,)), O=o,
                    K=columns - with_bias, has_bias=int(with_bias), splits=splits, threads=o * columns)  # fmt: skip
    return gw, (gb if with_bias else None)


def _splits(m: int, blocks: int) -> tuple[int, int]:
    """How a sum over m values is split for `blocks` blocks per split: (splits, values per split),
    about SPLIT_BLOCKS blocks in all but at least SPLIT_MIN_CHUNK values each."""
    splits = max(1, min(SPLIT_BLOCKS // blocks, m // SPLIT_MIN_CHUNK))
    chunk = -(-m // splits)
    return -(-m // chunk), chunk  # no empty split


def bias_grad_kernel(gy):
    """gb = Σ over n, p, q of gy: (N, O, Ho, Wo) -> (O,) (BiasGrad's kernel path, for conv2d's and
    conv_transpose2d's bias): partial sums of splits of (n, p, q), then their sum in order."""
    n, o, ho, wo = gy.shape
    splits, chunk = _splits(n * ho * wo, o)
    partial = launch("bias_backward", gy, Out((splits, o, 1)), N=n, O=o, HW=ho * wo, chunk=chunk, grid=(o, splits))
    _, gb = launch("conv2d_weight_total", partial, Out((o, 0)), Out((o,)), O=o, K=0, has_bias=1, splits=splits,
                   threads=o)  # fmt: skip
    return gb


# ------------------------------------------------------------------- the ops
class Conv2d(Function):
    """y = conv2d(x, w) + b. Its gradients are convolutions too: gx = conv_transpose2d(gy, w), gw =
    Conv2dWeightGrad(x, gy), gb = BiasGrad(gy); second derivatives come from their backwards."""

    def forward(self, x, w, b=None, *, stride, padding, cols=None):
        """cols: x's im2col matrix, where the caller made it (conv_transpose2d's backward)."""
        self.stride, self.padding, self.has_bias = stride, padding, b is not None
        if cols is None and shifted_is_cheaper(x.shape[1], w.shape[0], stride):
            rows = padded_rows(x, w.shape[2:], padding)
            self.save_for_backward(None, rows)  # serves the forward and the weight gradient
            y = conv2d_output_shifted(x, w, padding, rows)
        else:
            cols = im2col(x, w.shape[2:], stride, padding) if cols is None else cols
            self.save_for_backward(cols, None)  # serves the forward and the weight gradient
            y = conv2d_output(x, w, stride, padding, cols)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def forward_kernel(self, x, w, b=None, *, stride, padding, cols=None):
        self.stride, self.padding, self.has_bias = stride, padding, b is not None
        y = conv2d_output_kernel(x, w, stride, padding)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def backward(self, gy):
        (x, w), needs, options = self.inputs[:2], self.needs_grad, dict(stride=self.stride, padding=self.padding)
        cols = rows = None  # x's im2col matrix or padded rows, from the array path's forward (the kernels keep neither)
        if self.saved:
            cols, rows = (t.data if t is not None else None for t in self.saved)
        return (
            ConvTranspose2d.apply(gy, w, out_hw=x.shape[2:], **options) if needs[0] else None,
            Conv2dWeightGrad.apply(x, gy, kernel=w.shape[2:], cols=cols, rows=rows, **options) if needs[1] else None,
            *([BiasGrad.apply(gy) if needs[2] else None] if self.has_bias else []),
        )


class ConvTranspose2d(Function):
    """The adjoint of Conv2d: x (N, C_in, H, W), w (C_in, C_out, kh, kw) -> (N, C_out, H_out, W_out).
    Its input gradient is conv2d(gy, w), its weight gradient Conv2dWeightGrad(gy, x)."""

    def forward(self, x, w, b=None, *, stride, padding, out_hw):
        self.stride, self.padding, self.has_bias = stride, padding, b is not None
        as_conv = transposed_as_conv(w, stride, padding)  # (flipped weight, padding), or None: col2im
        if as_conv is None:
            y = conv2d_input_grad(x, w, out_hw, stride, padding)
        else:
            y = conv2d_output(x, as_conv[0], (1, 1), as_conv[1])
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def forward_kernel(self, x, w, b=None, *, stride, padding, out_hw):
        self.stride, self.padding, self.has_bias = stride, padding, b is not None
        y = conv2d_input_grad_kernel(x, w, out_hw, stride, padding)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def backward(self, gy):
        (x, w), needs, options = self.inputs[:2], self.needs_grad, dict(stride=self.stride, padding=self.padding)
        cols = None  # gy's im2col matrix, made once for both gradients where both take it (the array path)
        if (
            needs[0]
            and needs[1]
            and not self.uses_kernels
            and not shifted_is_cheaper(gy.shape[1], w.shape[0], self.stride)
        ):
            cols = im2col(gy.data, w.shape[2:], self.stride, self.padding)
        return (
            Conv2d.apply(gy, w, cols=cols, **options) if needs[0] else None,
            Conv2dWeightGrad.apply(gy, x, kernel=w.shape[2:], cols=cols, **options) if needs[1] else None,
            *([BiasGrad.apply(gy) if needs[2] else None] if self.has_bias else []),
        )


class Conv2dWeightGrad(Function):
    """conv2d's weight gradient as an op: x (N, C, H, W) and gy (N, O, Ho, Wo) -> gw (O, C, kh, kw),
    gw[o,c,i,j] = Σ_n,p,q gy[n,o,p,q] · xpad[n,c,p·sh+i,q·sw+j]. It is bilinear, so its gradients for
    an output gradient G (O, C, kh, kw) are convolutions with G as the weight: d/dx = conv_transpose2d(gy, G)
    and d/dgy = conv2d(x, G). cols, rows: x's im2col matrix or padded rows, where conv2d's forward made them."""

    def forward(self, x, gy, kernel, stride, padding, cols=None, rows=None):
        self.stride, self.padding = stride, padding
        if cols is None and shifted_is_cheaper(x.shape[1], gy.shape[1], stride):
            return conv2d_weight_grad_shifted(x, gy, kernel, padding, rows)
        return conv2d_weight_grad(x, gy, kernel, stride, padding, cols)

    def forward_kernel(self, x, gy, kernel, stride, padding, cols=None, rows=None):
        self.stride, self.padding = stride, padding
        return conv2d_weight_grad_kernel(x, gy, kernel, stride, padding)[0]

    def backward(self, g):
        (x, gy), options = self.inputs, dict(stride=self.stride, padding=self.padding)
        return (
            ConvTranspose2d.apply(gy, g, out_hw=x.shape[2:], **options) if self.needs_grad[0] else None,
            Conv2d.apply(x, g, **options) if self.needs_grad[1] else None,
        )


class BiasGrad(Function):
    """The bias gradient of a convolution as an op: gy (N, O, Ho, Wo) -> Σ_n,p,q gy (O,); its gradient
    broadcasts back (Expand)."""

    saves_inputs = False  # its backward needs the shape only

    def forward(self, gy):
        self.shape = gy.shape
        return gy.sum(axis=(0, 2, 3))

    def forward_kernel(self, gy):
        self.shape = gy.shape
        return bias_grad_kernel(gy)

    def backward(self, g):
        return Expand.apply(g, shape=self.shape, dims=(0, 2, 3), keepdim=False)


def _check(name: str, x: Tensor, w: Tensor, b: Tensor | None, transposed: bool) -> None:
    for arg, value in (("input", x), ("weight", w), ("bias", b)):
        if not isinstance(value, Tensor) and not (arg == "bias" and value is None):
            raise TypeError(f"{name}: {arg} must be a Tensor, got {type(value).__name__}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{name}: input, weight and bias must share a dtype, got {x.dtype} and {w.dtype}")
    validate.floating(name, x)
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be NCHW (4 dims), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{name}: weight must have 4 dims, got shape {w.shape}")
    channels_in, channels_out = (w.shape[0], w.shape[1]) if transposed else (w.shape[1], w.shape[0])
    if x.shape[1] != channels_in:
        raise ValueError(
            f"{name}: weight {w.shape} expects {channels_in} input channels, input {x.shape} has {x.shape[1]}"
        )
    if b is not None and b.shape != (channels_out,):
        raise ValueError(f"{name}: bias of shape ({channels_out},) expected, got {b.shape}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation. x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O,) -> (N, O, Ho, Wo),
    Ho = floor((H + 2·ph - kh) / sh) + 1."""
    stride, padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
    _check("conv2d", x, weight, bias, transposed=False)
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
    stride, padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
    extra = pair(output_padding, "output_padding", 0)
    _check("conv_transpose2d", x, weight, bias, transposed=True)
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
