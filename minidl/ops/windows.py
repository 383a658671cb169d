"""Sliding windows over NCHW images, shared by convolution and pooling (NumPy path).

sliding_windows is im2col without a copy: a strided view (N, C, kh, kw, Ho, Wo)
whose element [n, c, i, j, y, x] is image[n, c, y*sh + i, x*sw + j].
add_windows is its adjoint (col2im): it adds each window back where it came from,
as kh·kw strided slice-adds. It takes the windows as (A, kh, kw, Ho, Wo, B) for an
image (A, H, W, B): convolution puts the batch last (B = N), so that each slice-add runs
over long contiguous rows (Wo·N values at stride 1) instead of rows of Wo.
window_offsets takes the windows the other way round, one offset (i, j) of every window at a
time: pooling and block upsampling loop over the kh·kw offsets, each an elementwise op over
the whole output (window_sums adds them up, window_spread is its adjoint). storage and
in_storage let an op index an array in whatever order its axes are stored (NCHW, or batch
last as convolution leaves it).
"""

from __future__ import annotations

from .. import backend


def storage(x):
    """x's strides in elements, when x is one contiguous block with its axes stored in some order
    (NCHW, batch last, ...); else x's contiguous copy and its strides. Returns (x, strides)."""
    dense, expect = True, 1
    for axis in sorted(range(x.ndim), key=lambda a: x.strides[a]):  # innermost first
        if x.shape[axis] != 1:
            dense &= x.strides[axis] == expect * x.itemsize
            expect *= x.shape[axis]
    if not dense:
        x = backend.array_module_of(x).ascontiguousarray(x)
    return x, tuple(s // x.itemsize for s in x.strides)


def in_storage(flat, shape, strides):
    """The array of `shape` stored in `flat` with these element strides (a view)."""
    xp = backend.array_module_of(flat)
    return xp.lib.stride_tricks.as_strided(flat, shape, tuple(s * flat.itemsize for s in strides))


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2·padding - kernel) / stride) + 1 (PyTorch's formula)."""
    return (size + 2 * padding - kernel) // stride + 1


def pad_hw(x, padding: tuple[int, int], value: float = 0.0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = backend.array_module(backend.device_of(x))
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def sliding_windows(padded, kernel: tuple[int, int], stride: tuple[int, int]):
    """The (N, C, kh, kw, Ho, Wo) view of every kernel-sized window of a padded image."""
    xp = backend.array_module(backend.device_of(padded))
    n, c, h, w = padded.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    s_n, s_c, s_h, s_w = padded.strides
    return xp.lib.stride_tricks.as_strided(padded, (n, c, kh, kw, ho, wo), (s_n, s_c, s_h, s_w, s_h * sh, s_w * sw))


def window_offsets(padded, kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """For each offset n = i·kw + j of a window, n and the (..., Ho, Wo) view
    view[..., y, x] = padded[..., y·sh + i, x·sw + j]: offset n of every window at once."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, padded[..., i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]


def window_sums(padded, kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """The (..., Ho, Wo) sum of every window, offset by offset."""
    total = None
    for _, view in window_offsets(padded, kernel, stride, out_hw):
        total = view.copy(order="K") if total is None else backend.array_module_of(view).add(total, view, out=total)
    return total


def window_spread(values, padded_shape: tuple, kernel: tuple[int, int], stride: tuple[int, int]):
    """The adjoint of window_sums: an image of padded_shape in which every pixel of window (y, x)
    receives values[..., y, x] (summed where windows overlap, 0 where no window reaches)."""
    xp = backend.array_module_of(values)
    out_hw = values.shape[-2:]
    overlap = any(k > s for k, s in zip(kernel, stride))
    covered = tuple(o * k for o, k in zip(out_hw, kernel))  # the image's part the windows reach, if they tile it
    tiles = tuple(kernel) == tuple(stride) and tuple(padded_shape[-2:]) == covered
    image = (xp.empty if tiles else xp.zeros)(padded_shape, dtype=values.dtype)  # tiles: every pixel written
    for _, view in window_offsets(image, kernel, stride, out_hw):
        if overlap:
            view += values
        else:  # each pixel lies in one window at most: written once
            view[...] = values
    return image


def add_windows(windows, padded_shape, stride: tuple[int, int]):
    """col2im: a zero image of padded_shape (A, H, W, B) with every window of (A, kh, kw, Ho, Wo, B) added back."""
    xp = backend.array_module(backend.device_of(windows))
    _, kh, kw, ho, wo, _ = windows.shape
    sh, sw = stride
    image = xp.zeros(padded_shape, dtype=windows.dtype)
    for i in range(kh):
        for j in range(kw):
            image[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += windows[:, i, j]
    return image


def crop_hw(padded, padding: tuple[int, int], size: tuple[int, int]):
    """The inverse of pad_hw: rows/cols [p, p + size) of a padded image."""
    (ph, pw), (h, w) = padding, size
    return padded[:, :, ph : ph + h, pw : pw + w]
