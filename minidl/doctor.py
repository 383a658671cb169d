"""python -m minidl.doctor: what to run first on a new machine (a laptop, a lab PC, Colab's GPU).

It reports the versions that matter (Python, NumPy, CuPy, the CUDA runtime and driver, the GPU),
then checks, on the GPU or, where there is none, on the CPU emulator of CUDA:
  - every kernel file compiles (NVRTC on a GPU, g++ for the emulator) and every kernel loads;
  - each kernel family computes what the array path computes on the CPU, on small inputs,
    forward and gradients (conv2d, conv_transpose2d, pooling, upsampling, the fused sigmoid
    losses, linear and matmul, Adam);
  - on a GPU, a training step captured as a CUDA graph equals the same step run eagerly.
It ends with a one-line verdict; the exit status is 0 only when every check passed.

    python -m minidl.doctor                 # the GPU if there is one, else the emulator
    python -m minidl.doctor --device emu    # the emulator even where there is a GPU

Without --device, MINIDL_DEVICE is read as the rest of minidl reads it (an unknown name is a usage
error, cuda where there is no GPU an error); cpu, which runs no kernel, checks the default.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import backend, manual_seed, nn, optim, tensor
from .capture import CapturedStep
from .nn import functional as F
from .runtime import compiler, sources
from .runtime.emulator import EmulatorSettingError

TOLERANCE = dict(rtol=1e-4, atol=1e-5)  # float32 kernels against float32 NumPy


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    skipped: bool = False  # not run here (a GPU-only check without a GPU)


def facts(device: str) -> list[str]:
    """The versions and the device, one line each."""
    lines = [f"Python {platform.python_version()} ({sys.executable})", f"NumPy {np.__version__}"]
    problem = backend.cupy_problem()
    if problem is None:
        cupy = backend.cupy()
        runtime = cupy.cuda.runtime
        props = runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        lines += [
            f"CuPy {cupy.__version__}",
            f"CUDA runtime {cuda_version(runtime.runtimeGetVersion())}, "
            f"driver {cuda_version(runtime.driverGetVersion())}",
            f"GPU 0: {name}, compute capability {props['major']}.{props['minor']}, "
            f"{props['totalGlobalMem'] / 2**30:.0f} GiB, {runtime.getDeviceCount()} GPU(s)",
        ]
    else:
        lines.append(f"no GPU: {problem}")
    lines.append(
        f"checking on: {device}" + (" (the CPU emulator of CUDA: slow, for checks)" if device == "emu" else "")
    )
    return lines


def cuda_version(number: int) -> str:
    """A CUDA version number as CUDA writes it (12080 -> "12.8")."""
    return f"{number // 1000}.{number % 1000 // 10}"


def check_compiles(device: str) -> tuple[bool, str]:
    """Every kernel file compiles on the device, and every kernel instance loads."""
    found = sources.kernels()
    for kernel in found.values():
        for t in sources.C_TYPES if kernel.templated else (None,):
            compiler.function(kernel, t, device)
    by = "CuPy's RawModule (NVRTC)" if device == "cuda" else "g++ (the emulator)"
    return True, f"{len(sources.sources())} files, {len(found)} kernels, by {by}"


def _families():
    """(name, fn(*tensors) -> tensor, input shapes) of each kernel family, on small inputs; a loss's
    last input is its target, in [0, 1] and without a gradient."""
    return [
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, 2, 1), [(2, 3, 9, 9), (4, 3, 3, 3), (4,)]),
        ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1), [(2, 4, 5, 5), (4, 3, 3, 3), (3,)]),
        ("max_pool2d", lambda x: F.max_pool2d(x, 2), [(2, 3, 8, 8)]),
        ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), [(2, 3, 8, 8)]),
        ("upsample nearest", lambda x: F.upsample(x, 2, "nearest"), [(2, 3, 5, 5)]),
        ("upsample bilinear", lambda x: F.upsample(x, 2, "bilinear"), [(2, 3, 5, 5)]),
        ("sigmoid + BCE", lambda z, y: F.binary_cross_entropy_with_logits(z, y), [(4, 50), (4, 50)]),
        ("sigmoid + MSE", lambda z, y: F.sigmoid_mse_loss(z, y), [(4, 50), (4, 50)]),
        ("linear", F.linear, [(70, 33), (65, 33), (65,)]),
        ("matmul", lambda a, b: a @ b, [(3, 17, 9), (9, 70)]),
    ]


def _run_family(fn: Callable, arrays: list[np.ndarray], device: str, target: bool):
    """fn's output and its inputs' gradients on `device` (not the target's), as host arrays."""
    inputs = [
        tensor(a, requires_grad=not (target and k == len(arrays) - 1), device=device) for k, a in enumerate(arrays)
    ]
    out = fn(*inputs)
    weights = tensor(np.linspace(-1, 1, out.numel(), dtype=np.float32).reshape(out.shape), device=device)
    (out * weights).sum().backward()
    return [out.numpy()] + [t.grad.numpy() for t in inputs if t.requires_grad]


def check_families(device: str) -> list[Check]:
    """Each kernel family against the array path on the CPU: output and gradients."""
    rng = np.random.default_rng(0)
    checks = []
    for name, fn, shapes in _families():
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        target = name.startswith("sigmoid")
        if target:
            arrays[-1] = rng.random(shapes[-1]).astype(np.float32)
        checks.append(_guarded(f"{name} kernels", functools.partial(_compare, fn, arrays, device, target)))
    checks.append(_guarded("Adam kernels", functools.partial(check_adam, device)))
    return checks


def _compare(fn: Callable, arrays: list[np.ndarray], device: str, target: bool) -> tuple[bool, str]:
    expect, got = _run_family(fn, arrays, "cpu", target), _run_family(fn, arrays, device, target)
    worst = max(float(np.max(np.abs(g - e), initial=0.0)) for g, e in zip(got, expect))
    ok = all(np.allclose(g, e, **TOLERANCE) for g, e in zip(got, expect))
    return ok, f"output and gradients within {worst:.1e} of the CPU's"


def _guarded(name: str, run: Callable[[], tuple[bool, str]]) -> Check:
    """A check by name; one that raises fails with the error's first line."""
    try:
        ok, detail = run()
    except EmulatorSettingError:  # CXX or MINIDL_CACHE to set: one message and exit status 2 (minidl.cli)
        raise
    except Exception as error:  # a doctor reports what broke and goes on
        return Check(name, False, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    return Check(name, ok, detail)


def check_adam(device: str) -> tuple[bool, str]:
    """Three Adam steps on the device's kernel against the CPU's update."""
    results = []
    for dev in ("cpu", device):
        p = nn.Parameter(tensor(np.linspace(-1, 1, 300, dtype=np.float32), device=dev))
        opt = optim.Adam([p], lr=0.1, weight_decay=0.01)
        for _ in range(3):
            opt.zero_grad()
            (p * p * p).sum().backward()
            opt.step()
        results.append(p.numpy())
    worst = float(np.max(np.abs(results[1] - results[0])))
    return bool(np.allclose(results[1], results[0], **TOLERANCE)), f"3 steps within {worst:.1e}"


def _tiny_model(device: str):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, device=device), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10, device=device),
    )  # fmt: skip


def _train_step(model, opt, x, y):
    """One step of the tiny model: its MSE loss, backward, Adam's update; returns the loss."""
    loss = F.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def check_capture(device: str) -> tuple[bool, str]:
    """Four steps of a small conv + linear model, captured as a CUDA graph and eagerly: equal bits."""
    rng = np.random.default_rng(1)
    x = tensor(rng.random((6, 1, 8, 8), dtype=np.float32), device=device)
    y = tensor(rng.random((6, 10), dtype=np.float32), device=device)
    runs = []
    for capture in (False, True):
        manual_seed(0)
        model = _tiny_model(device)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        step = functools.partial(_train_step, model, opt)
        step = CapturedStep(step, opt) if capture else step
        losses = [step(x, y).item() for _ in range(4)]  # a warm-up, a recording, two replays
        runs.append((losses, [p.numpy() for p in model.parameters()]))
    (eager, eager_weights), (captured, weights) = runs
    same = eager == captured and all(np.array_equal(a, b) for a, b in zip(eager_weights, weights))
    return same, "4 steps, losses and weights bit for bit" if same else f"losses {captured} != eager {eager}"


def diagnose(device: str) -> list[Check]:
    """Every check on `device`, in order; nothing runs after the kernels failed to compile."""
    compiled = _guarded("kernels compile", lambda: check_compiles(device))
    if not compiled.ok:
        return [compiled]
    if device == "cuda":
        capture = _guarded("captured step", lambda: check_capture(device))
    else:
        capture = Check("captured step", True, "needs a GPU: not checked here", skipped=True)
    return [compiled, *check_families(device), capture]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minidl.doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "emu"], default=None, help="default: cuda if usable, else emu")
    args = parser.parse_args(argv)
    asked = backend.resolve_device(args.device)  # --device, else a valid MINIDL_DEVICE: exit 2 for a bad one
    device = asked if asked != backend.HOST else ("cuda" if backend.cuda_available() else "emu")
    for line in facts(device):
        print(line)
    start = time.perf_counter()
    checks = diagnose(device)
    for c in checks:
        print(f"{'skip' if c.skipped else 'ok  ' if c.ok else 'FAIL'}  {c.name:<26} {c.detail}")
    failed = [c.name for c in checks if not c.ok]
    where = "the GPU" if device == "cuda" else "the emulator" + ("" if backend.cuda_available() else " (no GPU here)")
    if failed:
        print(f"minidl doctor: {len(failed)} of {len(checks)} checks failed on {where}: {', '.join(failed)}")
        return 1
    ran = [c for c in checks if not c.skipped]
    print(f"minidl doctor: all {len(ran)} checks passed on {where} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    from .cli import run

    run(main)
