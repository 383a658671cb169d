"""One training step on the CPU, minidl beside PyTorch: the ratios issue 41 is judged by.

Workloads (batch 128 unless --batch): Model C with sigmoid + BCE and with sigmoid + MSE, Model D
(MSE, dropout), Model P (sigmoid + BCE), and a 784-16 sigmoid AE with the exact contractive penalty
by double backward (one probe per code unit, as double_backward.py). For each number of threads a
worker subprocess sets NumPy's BLAS threads (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS
before NumPy loads) and torch.set_num_threads, builds both frameworks from the same weights, and
alternates them on the same batches: per round, --steps steps of minidl then --steps of PyTorch,
wall time (perf_counter) and CPU time of the process (process_time, all threads); each figure is
the median over --rounds rounds of the time per step. Each block of steps starts with --settle
untimed steps: at 2 threads each framework's workers (OpenBLAS's, OpenMP's) wait actively for a
while after their work, so a block timed from its first step would pay for the other framework's.
Peak RSS: one subprocess per framework and workload (1 thread), running only that framework's steps
(PyTorch's also imports minidl: about 7 MB, and minidl.host_memory's malloc settings, which the timed
PyTorch steps share too). The header has
lscpu's model name, whether the CPU has AVX-512, and the load average before and after each worker
(the machine may be shared).

    PYTHONPATH=. python benchmarks/cpu_step.py [--threads 1 2] [--rounds 5] [--steps 3] [--settle 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORKLOADS = ("C-bce", "C-mse", "D", "P", "contractive-exact-16")
BATCHES = 4  # distinct batches, cycled


def cpu_info() -> dict:
    """lscpu's model name and whether the CPU flags include AVX-512 (avx512f)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    model = fields.get("Model name", "unknown").strip()
    flags = fields.get("Flags", "").split()
    return {"model": model, "avx512": "avx512f" in flags, "cores": os.cpu_count()}


def batches(batch: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((batch, 1, 28, 28), dtype=np.float32) for _ in range(BATCHES)]


def minidl_step(workload: str, xs: list[np.ndarray]):
    """(model, step): step(i) trains minidl's model one Adam step on batch i (input = target)."""
    import minidl as md
    from minidl.experiments.models import DenseAutoencoder, ModelC, ModelD, ModelP
    from minidl.experiments.penalties import jacobian_penalty
    from minidl.nn import functional as F

    md.manual_seed(0)
    kind = workload.split("-")[0]
    if kind == "contractive":
        model = DenseAutoencoder((784, 16))
    else:
        model = {"C": ModelC, "D": ModelD, "P": ModelP}[kind]()
    opt = md.optim.Adam(model.parameters(), lr=1e-3)
    data = [md.tensor(x) for x in xs]

    def loss(x):
        if kind == "contractive":
            return F.mse_loss(model(x), x) + 1e-2 * jacobian_penalty(model.encode, x)
        if kind == "D":
            return F.mse_loss(model(x), x)
        fused = F.sigmoid_mse_loss if workload == "C-mse" else F.binary_cross_entropy_with_logits
        return fused(model(x), x)

    def step(i: int) -> None:
        value = loss(data[i % len(data)])
        opt.zero_grad()
        value.backward()
        opt.step()

    return model, step


def torch_step(workload: str, xs: list[np.ndarray], ours=None):
    """step(i): PyTorch's one Adam step on batch i, from ours's weights when given."""
    import torch
    from train_model_c import copy_weights, torch_model

    T, kind = torch.nn, workload.split("-")[0]
    if kind == "contractive":
        enc = T.Sequential(T.Flatten(), T.Linear(784, 16), T.Sigmoid())
        model = T.Sequential(enc, T.Linear(16, 784), T.Sigmoid(), T.Unflatten(1, (1, 28, 28)))
    else:
        model = torch_model(kind)
    if ours is not None:
        copy_weights(ours, model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = [torch.from_numpy(x) for x in xs]
    F = T.functional

    def penalty(x):  # Σ_j ‖∂h_j/∂x‖² / N, one backward per code unit (double_backward.py's exact penalty)
        x = x.detach().requires_grad_()
        h = enc(x)
        total = 0
        for j in range(h.shape[1]):
            (g,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True, retain_graph=True)
            total = total + (g * g).sum()
        return total / len(x)

    def loss(x):
        if kind == "contractive":
            return F.mse_loss(model(x), x) + 1e-2 * penalty(x)
        if kind == "D":
            return F.mse_loss(model(x), x)
        out = model(x)
        return F.mse_loss(torch.sigmoid(out), x) if workload == "C-mse" else F.binary_cross_entropy_with_logits(out, x)

    def step(i: int) -> None:
        value = loss(data[i % len(data)])
        opt.zero_grad()
        value.backward()
        opt.step()

    return step


def timed(step, steps: int, start: int) -> tuple[float, float]:
    """Wall and CPU seconds per step over `steps` steps."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(start, start + steps):
        step(i)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def worker(args) -> dict:
    """Time every workload at args.worker threads, the frameworks alternating; returns the rows."""
    import torch

    torch.set_num_threads(args.worker)
    load_before = os.getloadavg()[0]
    xs, rows = batches(args.batch), []
    for workload in args.workloads:
        model, ours = minidl_step(workload, xs)
        theirs = torch_step(workload, xs, model)
        ours(0), theirs(0)  # warm-up
        times = {"minidl": [], "torch": []}
        for r in range(args.rounds):
            for name, step in (("minidl", ours), ("torch", theirs)):
                for i in range(args.settle):  # untimed: the other framework's threads stop spinning
                    step(r * args.steps + i)
                times[name].append(timed(step, args.steps, r * args.steps))
        row = {"workload": workload, "threads": args.worker}
        for name, pairs in times.items():
            row[f"{name}_wall_ms"] = statistics.median(p[0] for p in pairs) * 1e3
            row[f"{name}_cpu_ms"] = statistics.median(p[1] for p in pairs) * 1e3
        rows.append(row)
    return {"rows": rows, "load": [load_before, os.getloadavg()[0]]}


def peak_rss(args) -> float:
    """Peak RSS in MB of this process after warm-up and --steps steps of one framework."""
    xs = batches(args.batch)
    framework, workload = args.rss
    if framework == "minidl":
        step = minidl_step(workload, xs)[1]
    else:
        step = torch_step(workload, xs)
    for i in range(args.steps + 1):
        step(i)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_self(args, extra: list[str], threads: int) -> str:
    """This script in a subprocess with `threads` BLAS threads; its stdout."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))  # fmt: skip
    common = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--settle", str(args.settle),
              "--batch", str(args.batch)]  # fmt: skip
    command = [sys.executable, __file__, *common, "--workloads", *args.workloads, *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per round and framework")
    parser.add_argument("--settle", type=int, default=1, help="untimed steps before each block (default 1)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.rss:
        print(peak_rss(args))
        return

    import minidl

    report = {"cpu": cpu_info(), "minidl": str(Path(minidl.__file__).parent), "rounds": args.rounds,
              "steps": args.steps, "settle": args.settle, "batch": args.batch,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "rows": [], "load": {}, "rss_mb": {}}  # fmt: skip
    for threads in args.threads:
        result = json.loads(run_self(args, ["--worker", str(threads)], threads))
        report["rows"] += result["rows"]
        report["load"][str(threads)] = result["load"]
    if not args.no_rss:
        for workload in args.workloads:
            report["rss_mb"][workload] = {
                framework: float(run_self(args, ["--rss", framework, workload], 1)) for framework in ("minidl", "torch")
            }
    cpu = report["cpu"]
    print(f"{cpu['model']}, {cpu['cores']} cores, AVX-512: {'yes' if cpu['avx512'] else 'no'}; minidl from "
          f"{report['minidl']}; batch {args.batch}; median of {args.rounds} rounds x {args.steps} steps "
          f"(each block after {args.settle} untimed); "
          f"{report['date']}")  # fmt: skip
    for threads, (before, after) in report["load"].items():
        print(f"load average (1 min) around the {threads}-thread run: {before:.2f} -> {after:.2f}")
    print(f"{'workload':<22} {'thr':>3} {'minidl ms':>9} {'torch ms':>8} {'wall':>6} "
          f"{'minidl cpu':>10} {'torch cpu':>9} {'cpu':>6}")  # fmt: skip
    for row in report["rows"]:
        ours, theirs = row["minidl_wall_ms"], row["torch_wall_ms"]
        ours_cpu, theirs_cpu = row["minidl_cpu_ms"], row["torch_cpu_ms"]
        print(f"{row['workload']:<22} {row['threads']:>3} {ours:9.1f} {theirs:8.1f} {ours / theirs:6.2f} "
              f"{ours_cpu:10.1f} {theirs_cpu:9.1f} {ours_cpu / theirs_cpu:6.2f}")  # fmt: skip
    for workload, rss in report["rss_mb"].items():
        print(f"peak RSS {workload:<22} minidl {rss['minidl']:6.0f} MB  torch {rss['torch']:6.0f} MB  "
              f"ratio {rss['minidl'] / rss['torch']:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
