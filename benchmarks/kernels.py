"""Every op with kernels in minidl's op table (minidl/optable.py), forward and backward, on the
shapes its entry gives (the lab models': Model C's convolutions, Model D's Linear layers, Model
P's pooling and upsampling), and Adam's step, timed beside PyTorch doing the same in the same run.

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
from minidl import backend, optable
from minidl.runtime import profile

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
FLOPS = {  # 2 × the multiply-adds of the ops that compute more than they move, by the op table's name
    "conv2d": lambda x, w, out: 2.0 * out * w[1] * w[2] * w[3],
    "conv_transpose2d": lambda x, w, out: 2.0 * np.prod(x) * w[1] * w[2] * w[3],
    "linear": lambda x, w, out: 2.0 * out * w[1],
    "matmul": lambda a, b, out: 2.0 * out * a[-1],
}


def op_rows(info: optable.OpInfo, example: optable.Example, device: str, batch: int, rng) -> list[Row]:
    """An op of the op table on one of its benchmark examples (the batch, its first dim, set to
    `batch`): its forward, and its backward from a saved graph (the inputs' gradients)."""
    first = (max(1, example.shapes[0][0] * batch // 128), *example.shapes[0][1:])  # the entries' batch is 128
    shapes = [first if k == 0 or k in example.targets else s for k, s in enumerate(example.shapes)]  # targets too
    sized = optable.Example(tuple(shapes), example.args, example.kwargs, example.targets)
    sample = sized.sample(rng)
    inputs = [md.tensor(a, device=device, requires_grad=g) for a, g in zip(sample.arrays, sample.grads)]
    wrt = [t for t in inputs if t.requires_grad]
    out = sample.call(info.op, inputs)
    gy = md.tensor(rng.standard_normal(out.shape, np.float32), device=device)
    flops = FLOPS.get(info.name)
    moved = 4.0 * (sum(a.size for a in sample.arrays) + out.numel())  # float32 bytes read and written once
    work, kind = (flops(*shapes[:2], out.numel()), "flop") if flops else (moved, "byte")
    shape = " ".join("x".join(map(str, s)) for s in shapes)
    rows = [
        Row(f"{info.name} forward", shape, work, kind, lambda: sample.call(info.op, inputs), None),
        Row(f"{info.name} backward", shape, 2 * work if flops else work, kind,
            lambda: md.autograd.grad(out, wrt, gy, retain_graph=True), None),
    ]  # fmt: skip
    peer = _torch_op(info)
    if peer is not None:
        theirs = [to_torch(a, device).requires_grad_(g) for a, g in zip(sample.arrays, sample.grads)]
        their_wrt = [t for t in theirs if t.requires_grad]
        their_out, their_gy = sample.call(peer, theirs, lambda a: to_torch(a, device)), to_torch(gy.numpy(), device)
        rows[0].theirs = lambda: sample.call(peer, theirs, lambda a: to_torch(a, device))
        rows[1].theirs = lambda: torch.autograd.grad(their_out, their_wrt, their_gy, retain_graph=True)
    return rows


def _torch_op(info: optable.OpInfo):
    return None if torch is None or info.torch is None else info.torch_op()


def adam_rows(device: str, count: int, rng) -> list[Row]:
    """One Adam step over `count` parameters (the optimiser's fused kernel)."""
    z, y = rng.standard_normal(count, np.float32), rng.random(count, np.float32)
    p = md.tensor(z, device=device, requires_grad=True)
    p.grad = md.tensor(y, device=device)
    adam = md.optim.Adam([p], lr=1e-3)
    row = Row("Adam step", f"{count:,} parameters", 4.0 * 7 * count, "byte", adam.step, None)
    if torch is not None:
        tp = to_torch(z, device).requires_grad_()
        tp.grad = to_torch(y, device)
        row.theirs = torch.optim.Adam([tp], lr=1e-3).step
    return [row]


def to_torch(array: np.ndarray, device: str):
    return torch.from_numpy(np.array(array, copy=True)).to("cuda" if device == "cuda" else "cpu")


def all_rows(device: str, short: bool) -> list[Row]:
    """Every kernel op of the op table on its benchmark examples (the lab models' shapes), and Adam."""
    rng = np.random.default_rng(0)
    batch = 32 if short else 128
    rows = []
    for info in optable.kernel_ops():
        for example in info.benchmark:
            rows += op_rows(info, example, device, batch, rng)
    return rows + adam_rows(device, batch * 784, rng)


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
    op, shape = max(len(r["op"]) for r in results), max(len(r["shape"]) for r in results)
    if device == "emu":
        lines = [f"{'op':<{op}} {'shape':<{shape}} {'work':>14} {'launches':>8}  kernels"]
        for r in results:
            work = f"{r['work'] / 1e6:9.2f} {'MFLOP' if r['unit'] == 'flop' else 'MB'}"
            lines.append(
                f"{r['op']:<{op}} {r['shape']:<{shape}} {work:>14} {r['launches']:>8}  {', '.join(r['kernels'])}"
            )
        return "\n".join(lines)
    lines = [f"{'op':<{op}} {'shape':<{shape}} {'ms':>9} {'rate':>13} {'of ceiling':>10} {'torch ms':>9} {'ratio':>6}"]
    for r in results:
        rate = f"{r['rate'] / 1e9:9.2f} {'GF/s' if r['unit'] == 'flop' else 'GB/s'}"
        torch_ms = "" if r["torch_ms"] is None else f"{r['torch_ms']:9.3f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:6.2f}"
        lines.append(f"{r['op']:<{op}} {r['shape']:<{shape}} {r['ms']:9.3f} {rate:>13} {r['of_ceiling']:>10.1%} "
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
