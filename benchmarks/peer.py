"""PyTorch as the benchmarks' peer: the one place that says how it runs beside minidl.

On a GPU PyTorch would use TF32 (10-bit mantissas) in cuDNN convolutions and cuBLAS products by
default on Ampere and later; minidl computes in float32, so the peer is held to float32 too.
"""

from __future__ import annotations


def float32_peer(torch) -> str:
    """Turn TF32 off in cuDNN and cuBLAS; returns the words for a table's header."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return "PyTorch in float32 (TF32 off)"
