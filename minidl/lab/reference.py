"""Slow, obviously-correct NumPy loop implementations: the references of the tests and of the exercise grader."""

import numpy as np


def conv2d(x, w, b, stride, padding):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, o, ho, wo))
    for p in range(ho):
        for q in range(wo):
            patch = xp[:, :, p * sh : p * sh + kh, q * sw : q * sw + kw]
            y[:, :, p, q] = np.einsum("ncij,ocij->no", patch, w)
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def conv_transpose2d(x, w, b, stride, padding, output_padding):
    """Scatter form: every input pixel adds weight · value to a kh×kw patch of the output."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    (sh, sw), (ph, pw), (oh, ow) = stride, padding, output_padding
    full = np.zeros((n, o, (h - 1) * sh + kh + oh, (wd - 1) * sw + kw + ow))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += np.einsum("nc,coij->noij", x[:, :, i, j], w)
    hout, wout = full.shape[2] - 2 * ph, full.shape[3] - 2 * pw
    y = full[:, :, ph : ph + hout, pw : pw + wout]
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def pool2d(x, kernel, stride, padding, reduce):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    fill = -np.inf if reduce is np.max else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c, ho, wo))
    for p in range(ho):
        for q in range(wo):
            y[:, :, p, q] = reduce(xp[:, :, p * sh : p * sh + kh, q * sw : q * sw + kw], axis=(2, 3))
    return y


def upsample_bilinear(x, scale):
    """PyTorch's align_corners=False bilinear, one output pixel at a time."""
    n, c, h, w = x.shape
    ho, wo = int(h * scale), int(w * scale)
    y = np.zeros((n, c, ho, wo))
    for p in range(ho):
        for q in range(wo):
            sy, sx = max((p + 0.5) / scale - 0.5, 0), max((q + 0.5) / scale - 0.5, 0)
            y0, x0 = min(int(sy), h - 1), min(int(sx), w - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            ly, lx = sy - y0, sx - x0
            y[:, :, p, q] = (
                (1 - ly) * (1 - lx) * x[:, :, y0, x0]
                + (1 - ly) * lx * x[:, :, y0, x1]
                + ly * (1 - lx) * x[:, :, y1, x0]
                + ly * lx * x[:, :, y1, x1]
            )
    return y


def im2col(x, kernel, stride, padding):
    """Row (c, i, j), column (p, q, n) (the batch last): xpad[n, c, p·sh + i, q·sw + j]."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = np.zeros((c * kh * kw, n * ho * wo), dtype=x.dtype)
    for row, (ci, i, j) in enumerate(np.ndindex(c, kh, kw)):
        for col, (p, q, ni) in enumerate(np.ndindex(ho, wo, n)):
            cols[row, col] = xp[ni, ci, p * sh + i, q * sw + j]
    return cols


def conv2d_weight_grad(x, gy, kernel, stride, padding):
    """gw[o, c, i, j] = Σ_n,p,q gy[n, o, p, q] · xpad[n, c, p·sh + i, q·sw + j]."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = gy.shape[2:]
    gw = np.zeros((gy.shape[1], x.shape[1], kh, kw))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            gw[:, :, i, j] = np.einsum("nopq,ncpq->oc", gy, patch)
    return gw


def max_pool2d_backward(x, gy, kernel, stride, padding):
    """Each window's gradient goes to its first maximum (row-major) among its real pixels."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    gx = np.zeros_like(x)
    for ni, ci, p, q in np.ndindex(gy.shape):
        best = None
        for i, j in np.ndindex(kh, kw):
            row, col = p * sh - ph + i, q * sw - pw + j
            if 0 <= row < h and 0 <= col < w and (best is None or x[ni, ci, row, col] > x[ni, ci, best[0], best[1]]):
                best = (row, col)
        gx[ni, ci, best[0], best[1]] += gy[ni, ci, p, q]
    return gx


def unbroadcast(grad, shape):
    """The adjoint of broadcasting to grad.shape: each element adds into the one it was copied from."""
    out = np.zeros(shape)
    for index in np.ndindex(grad.shape):
        source = tuple(0 if n == 1 else k for k, n in zip(index[len(index) - len(shape) :], shape))
        out[source] += grad[index]
    return out


def adam(p, grads, lr, betas, eps, weight_decay):
    """The parameters after Adam steps with each of grads (the textbook form, bias-corrected moments)."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p
