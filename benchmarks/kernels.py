"""Every kernel family of minidl on the lab models' shapes (Model C's convolutions, Model D's
Linear layers, Model P's pooling and upsampling) and a sweep of batch and channels,
timed beside PyTorch doing the same op in the same run.

    python benchmarks/kernels.py                          # cpu: NumPy path vs PyTorch's CPU kernels
    python benchmarks/kernels.py --device cuda            # our CUDA kernels vs cuDNN (TF32 off), CUDA events
    python benchmarks/kernels.py --device emu             # launches and bytes per call only: no timing claims
    python benchmarks/kernels.py --short --json k.json --png k.png

Per row: the median time of --repeats calls after a warm-up, GFLOP/s (convolutions) or GB/s
(the memory-bound rest: bytes of the inputs read and outputs written once), that rate as a
fraction of this device's measured ceiling (a 2048² float32 matmul for GFLOP/s, a 64 MiB
copy for GB/s; no datasheet numbers), and minidl's time over PyTorch's. Without PyTorch the
ratio column is empty.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from peer import float32_peer

import minidl as md
from minidl import backend
from minidl.nn import functional as F
from minidl.ops import conv, linalg
from minidl.runtime import profile, runs_as_kernel

try:
    import torch
except ImportError:
    torch = None


@dataclass
class Row:
    family: str
    shape: str
    work: float  # flops (kind "flop") or bytes (kind "byte") per call
    kind: str
    ours: Callable[[], object]
    theirs: Callable[[], object] | None


# ------------------------------------------------------------------ the rows
def input_grads(y: md.Tensor, g) -> tuple:
    """The gradients y's op sends to its inputs for y's gradient g (an array), as a first-order backward
    computes them (without recording)."""
    with md.no_grad():
        return y._node.input_grads(md.Tensor._wrap(g, y.device))


def conv_rows(device: str, n: int, c: int, o: int, hw: int, stride: int, rng) -> list[Row]:
    """conv2d forward / input grad / weight grad and conv_transpose2d forward, 3×3, padding 1."""
    x, w = rng.standard_normal((n, c, hw, hw), np.float32), rng.standard_normal((o, c, 3, 3), np.float32) * 0.1
    out = (hw + 2 - 3) // stride + 1
    gy = rng.standard_normal((n, o, out, out), np.float32)
    flops = 2.0 * n * o * c * 9 * out * out
    dx, dw, dgy = (backend.move(a, device) for a in (x, w, gy))
    kernels = runs_as_kernel(device, (np.float32,))
    s, p = (stride, stride), (1, 1)
    forward = conv.conv2d_output_kernel if kernels else conv.conv2d_output
    input_grad = conv.conv2d_input_grad_kernel if kernels else conv.conv2d_input_grad
    weight_grad = conv.conv2d_weight_grad_kernel if kernels else conv.conv2d_weight_grad
    shape = f"N{n} C{c}->O{o} {hw}x{hw} s{stride}"
    extra = hw - ((out - 1) * stride - 2 + 3)  # conv_transpose2d's output_padding that gives back hw
    gy_tensor, w_tensor = md.tensor(gy, device=device), md.tensor(w, device=device)
    rows = [
        Row("conv2d forward", shape, flops, "flop", lambda: forward(dx, dw, s, p), None),
        Row("conv2d input grad", shape, flops, "flop", lambda: input_grad(dgy, dw, (hw, hw), s, p), None),
        Row("conv2d weight grad", shape, flops, "flop", lambda: weight_grad(dx, dgy, (3, 3), s, p), None),
        # the whole op (its forward is conv2d's input gradient, so the primitive alone would repeat the row above)
        Row("conv_transpose2d forward", f"N{n} C{o}->O{c} {out}x{out} s{stride}", flops, "flop",
            lambda: F.conv_transpose2d(gy_tensor, w_tensor, None, s, p, extra), None),
    ]  # fmt: skip
    if torch is not None:
        tx, tw, tgy = (to_torch(a, device) for a in (x, w, gy))
        rows[0].theirs = lambda: torch.nn.functional.conv2d(tx, tw, None, s, p)
        rows[1].theirs = lambda: torch.nn.grad.conv2d_input(tx.shape, tw, tgy, s, p)
        rows[2].theirs = lambda: torch.nn.grad.conv2d_weight(tx, tw.shape, tgy, s, p)
        rows[3].theirs = lambda: torch.nn.functional.conv_transpose2d(tgy, tw, None, s, p, extra)
    return rows


def pool_rows(device: str, n: int, c: int, hw: int, rng) -> list[Row]:
    """max and avg pooling, 2×2 windows at stride 2, forward and backward."""
    x = rng.standard_normal((n, c, hw, hw), np.float32)
    gy = rng.standard_normal((n, c, hw // 2, hw // 2), np.float32)
    shape, moved = f"N{n} C{c} {hw}x{hw} k2 s2", 4.0 * (x.size + gy.size)
    rows = []
    for name, op in (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)):
        t = md.tensor(x, device=device, requires_grad=True)
        y = op(t, 2)
        g = backend.move(gy, device)
        rows.append(Row(f"{name} forward", shape, moved, "byte", lambda op=op, t=t: op(t, 2), None))
        rows.append(Row(f"{name} backward", shape, moved, "byte", lambda y=y, g=g: input_grads(y, g), None))
    if torch is not None:
        tx = to_torch(x, device).requires_grad_()
        tgy = to_torch(gy, device)
        ty, indices = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
        rows[0].theirs = lambda: torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
        rows[1].theirs = lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            tgy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, indices
        )
        rows[2].theirs = lambda: torch.nn.functional.avg_pool2d(tx, 2)
        rows[3].theirs = lambda: torch.ops.aten.avg_pool2d_backward(tgy, tx, [2, 2], [2, 2], [0, 0], False, True, None)
    return rows


def upsample_rows(device: str, n: int, c: int, hw: int, mode: str, rng) -> list[Row]:
    """Upsampling by 2, forward and backward."""
    x = rng.standard_normal((n, c, hw, hw), np.float32)
    gy = rng.standard_normal((n, c, 2 * hw, 2 * hw), np.float32)
    shape, moved = f"N{n} C{c} {hw}x{hw} x2", 4.0 * (x.size + gy.size)
    t = md.tensor(x, device=device, requires_grad=True)
    y, g = F.interpolate(t, scale_factor=2, mode=mode), backend.move(gy, device)
    rows = [
        Row(
            f"upsample {mode} forward", shape, moved, "byte", lambda: F.interpolate(t, scale_factor=2, mode=mode), None
        ),
        Row(f"upsample {mode} backward", shape, moved, "byte", lambda: input_grads(y, g), None),
    ]
    if torch is not None:
        tx, tgy = to_torch(x, device).requires_grad_(), to_torch(gy, device)
        ty = torch.nn.functional.interpolate(tx, scale_factor=2, mode=mode)
        rows[0].theirs = lambda: torch.nn.functional.interpolate(tx, scale_factor=2, mode=mode)
        rows[1].theirs = lambda: torch.autograd.grad(ty, tx, tgy, retain_graph=True)
    return rows


def loss_and_adam_rows(device: str, count: int, rng) -> list[Row]:
    z, y = rng.standard_normal(count, np.float32), rng.random(count, np.float32)
    tz, ty = md.tensor(z, device=device, requires_grad=True), md.tensor(y, device=device)
    rows = [
        Row("sigmoid + BCE, loss and grad", f"{count:,} values", 12.0 * count, "byte",
            lambda: input_grads(F.binary_cross_entropy_with_logits(tz, ty), backend.move(np.ones((), np.float32),
                                                                                         device)), None),
    ]  # fmt: skip
    p = md.tensor(z, device=device, requires_grad=True)
    p.grad = md.tensor(y, device=device)
    adam = md.optim.Adam([p], lr=1e-3)
    rows.append(Row("Adam step", f"{count:,} parameters", 4.0 * 7 * count, "byte", adam.step, None))
    if torch is not None:
        sz, sy = to_torch(z, device).requires_grad_(), to_torch(y, device)

        def torch_loss():
            (grad,) = torch.autograd.grad(torch.nn.functional.binary_cross_entropy_with_logits(sz, sy), sz)
            return grad

        tp = to_torch(z, device).requires_grad_()
        tp.grad = to_torch(y, device)
        torch_adam = torch.optim.Adam([tp], lr=1e-3)
        rows[0].theirs, rows[1].theirs = torch_loss, torch_adam.step
    return rows


def gemm_rows(device: str, n: int, fan_in: int, fan_out: int, rng) -> list[Row]:
    """Linear's three products, y = x wᵀ, gx = gy w, gw = gyᵀ x: kernels/matmul.cu's gemm on a kernel
    device (transposed operands as stored), NumPy's or CuPy's @ (BLAS, cuBLAS) otherwise."""
    x, w = rng.standard_normal((n, fan_in), np.float32), rng.standard_normal((fan_out, fan_in), np.float32)
    gy = rng.standard_normal((n, fan_out), np.float32)
    dx, dw, dgy = (backend.move(a, device) for a in (x, w, gy))
    kernel = runs_as_kernel(device, (np.float32,))
    shape, flops = f"{n}x{fan_in} @ {fan_in}x{fan_out}", 2.0 * n * fan_in * fan_out
    rows = [
        Row("linear forward", shape, flops, "flop", lambda: linalg.product(dx, dw.T, kernel), None),
        Row("linear input grad", shape, flops, "flop", lambda: linalg.product(dgy, dw, kernel), None),
        Row("linear weight grad", shape, flops, "flop", lambda: linalg.product(dgy.T, dx, kernel), None),
    ]
    if torch is not None:
        tx, tw, tgy = (to_torch(a, device) for a in (x, w, gy))
        rows[0].theirs = lambda: tx @ tw.T
        rows[1].theirs = lambda: tgy @ tw
        rows[2].theirs = lambda: tgy.T @ tx
    return rows


def to_torch(array: np.ndarray, device: str):
    return torch.from_numpy(array.copy()).to("cuda" if device == "cuda" else "cpu")


def all_rows(device: str, short: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    batch = 32 if short else 128
    rows = []
    for c, o, hw, stride in ((1, 16, 28, 2), (16, 32, 14, 2), (32, 64, 7, 1)):  # Model C's encoder
        rows += conv_rows(device, batch, c, o, hw, stride, rng)
    if not short:  # the sweep: batch, then channels
        for n in (32, 256):
            rows += conv_rows(device, n, 32, 64, 7, 1, rng)
        for c in (16, 64, 128):
            rows += conv_rows(device, 128, c, c, 14, 1, rng)
    for fan_in, fan_out in ((784, 256), (256, 256), (256, 784)):  # Model D's layers
        rows += gemm_rows(device, batch, fan_in, fan_out, rng)
    for c, hw in ((16, 28), (8, 14)):  # Model P's pooling: 16×28×28 -> 16×14×14, 8×14×14 -> 8×7×7
        rows += pool_rows(device, batch, c, hw, rng)
    for c, hw in ((8, 7), (16, 14)):  # and its upsampling: 8×7×7 -> 8×14×14, 16×14×14 -> 16×28×28
        rows += upsample_rows(device, batch, c, hw, "nearest", rng)
    rows += upsample_rows(device, batch, 16, 14, "bilinear", rng)
    rows += loss_and_adam_rows(device, batch * 784, rng)
    return rows


# ------------------------------------------------------------------ timing
def wall_clock(fn: Callable[[], object]) -> float:
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def cupy_events(fn: Callable[[], object]) -> float:
    """GPU time of fn's work on CuPy's current stream, between two CUDA events."""
    cuda = backend.cupy().cuda
    start, end = cuda.Event(), cuda.Event()
    start.record()
    fn()
    end.record()
    end.synchronize()
    return cuda.get_elapsed_time(start, end) / 1e3


def torch_events(fn: Callable[[], object]) -> float:
    """The same for PyTorch's current stream."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def median_seconds(fn: Callable[[], object], timer: Callable, repeats: int) -> float:
    """The median of `repeats` timed calls, after one untimed call (compiles kernels, fills caches)."""
    fn()
    return statistics.median(timer(fn) for _ in range(repeats))


def ceilings(device: str, timer: Callable) -> dict[str, float]:
    """This device's measured GFLOP/s (a 2048² float32 matmul) and GB/s (a 64 MiB copy)."""
    xp = backend.array_module(device if device == "cuda" else "cpu")
    a = xp.ones((2048, 2048), np.float32)
    big, out = xp.ones(16 * 2**20, np.float32), xp.empty(16 * 2**20, np.float32)
    flop = 2 * 2048**3 / median_seconds(lambda: a @ a, timer, 5)
    byte = 2 * big.nbytes / median_seconds(lambda: xp.copyto(out, big), timer, 5)
    return {"flop": flop, "byte": byte}


def measure(rows: list[Row], device: str, repeats: int) -> list[dict]:
    ours_timer, theirs_timer = (cupy_events, torch_events) if device == "cuda" else (wall_clock, wall_clock)
    peak = ceilings(device, ours_timer)
    results = []
    for row in rows:
        ours = median_seconds(row.ours, ours_timer, repeats)
        theirs = median_seconds(row.theirs, theirs_timer, repeats) if row.theirs else None
        rate = row.work / ours
        results.append({
            "op": row.family, "shape": row.shape, "ms": ours * 1e3, "rate": rate, "unit": row.kind,
            "of_ceiling": rate / peak[row.kind], "torch_ms": None if theirs is None else theirs * 1e3,
            "ratio": None if theirs is None else ours / theirs,
        })  # fmt: skip
    return results


def count_launches(rows: list[Row]) -> list[dict]:
    """emu: launches per call of each row (timing the emulator would claim nothing about a GPU)."""
    profile.PROFILE = True
    results = []
    for row in rows:
        before = profile.launch_counts()
        row.ours()
        after = profile.launch_counts()
        launches = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        results.append({"op": row.family, "shape": row.shape, "work": row.work, "unit": row.kind,
                        "launches": sum(launches.values()), "kernels": sorted(launches)})  # fmt: skip
    return results


# ------------------------------------------------------------------ output
def table(results: list[dict], device: str) -> str:
    if device == "emu":
        lines = [f"{'op':<30} {'shape':<26} {'work':>14} {'launches':>8}  kernels"]
        for r in results:
            work = f"{r['work'] / 1e6:9.2f} {'MFLOP' if r['unit'] == 'flop' else 'MB'}"
            lines.append(f"{r['op']:<30} {r['shape']:<26} {work:>14} {r['launches']:>8}  {', '.join(r['kernels'])}")
        return "\n".join(lines)
    lines = [f"{'op':<30} {'shape':<26} {'ms':>9} {'rate':>13} {'of ceiling':>10} {'torch ms':>9} {'ratio':>6}"]
    for r in results:
        rate = f"{r['rate'] / 1e9:9.2f} {'GF/s' if r['unit'] == 'flop' else 'GB/s'}"
        torch_ms = "" if r["torch_ms"] is None else f"{r['torch_ms']:9.3f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:6.2f}"
        lines.append(f"{r['op']:<30} {r['shape']:<26} {r['ms']:9.3f} {rate:>13} {r['of_ceiling']:>10.1%} "
                     f"{torch_ms:>9} {ratio:>6}")  # fmt: skip
    return "\n".join(lines)


def chart(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['op']}\n{r['shape']}" for r in results]
    ratio = [r["ratio"] if r.get("ratio") else 0 for r in results]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(results) + 1.5))
    ax.barh(range(len(results)), ratio, color=["tab:red" if v > 1 else "tab:green" for v in ratio])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(results)), labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("minidl time / PyTorch time (below 1: minidl faster)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=backend.DEVICES, default="cpu")
    parser.add_argument("--short", action="store_true", help="Model C's shapes at batch 32, no sweep (CI)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 20, short 5)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--png", type=Path, default=None, help="draw the ratios to PyTorch here")
    args = parser.parse_args(argv)
    device = backend.resolve_device(args.device)
    global torch
    if device == "cuda" and torch is not None and not torch.cuda.is_available():
        print("this PyTorch has no CUDA: no ratios on cuda")
        torch = None
    if device == "cuda" and torch is not None:
        float32_peer(torch)
    repeats = args.repeats or (5 if args.short else 20)
    rows = all_rows(device, args.short)
    results = count_launches(rows) if device == "emu" else measure(rows, device, repeats)
    print(table(results, device))
    if device != "emu" and torch is None:
        print("PyTorch is not installed: no ratios (pip install torch, or the bench extra)")
    if args.json:
        text = json.dumps({"device": device, "short": args.short, "repeats": repeats, "rows": results}, indent=1)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.json)
    if args.png and device != "emu":
        chart(results, args.png, f"minidl kernels on {device}, {'short' if args.short else 'full'} run")


if __name__ == "__main__":
    main()
