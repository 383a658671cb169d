"""Slow, obviously-correct NumPy loop implementations of what the exercises blank: the grader's references
(the forward ops' loops live in the framework, minidl.loops, beside the op table that holds them)."""

import numpy as np


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
