"""Sliding windows over NCHW images, shared by convolution and pooling (NumPy path).

sliding_windows is im2col without a copy: a strided view (N, C, kh, kw, Ho, Wo)
whose element [n, c, i, j, y, x] is image[n, c, y*sh + i, x*sw + j].
add_windows is its adjoint (col2im): it adds each window back where it came from,
as kh·kw strided slice-adds. It takes the windows as (A, kh, kw, Ho, Wo, B) for an
image (A, H, W, B): convolution puts the batch last (B = N), so that each slice-add runs
over long contiguous rows (Wo·N values at stride 1) instead of rows of Wo.
"""

from __future__ import annotations

from .. import backend


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
