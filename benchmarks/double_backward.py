"""What a second derivative costs: one training step of a 784-256 sigmoid AE (batch 128) plain,
with the contractive penalty by its formula, and with the penalty by double backward (Hutchinson,
one draw; and exactly, for a 16-unit code), minidl beside PyTorch doing the same work
(torch.autograd.grad(create_graph=True)) in the same run, from the same weights and batch.

    python benchmarks/double_backward.py [--device cpu|cuda] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import minidl as md
from minidl import backend
from minidl.experiments.models import DenseAutoencoder
from minidl.experiments.penalties import contractive_penalty, jacobian_penalty
from minidl.nn import functional as F

LAMBDA = 1e-2


def minidl_steps(device: str, code: int, x: np.ndarray):
    md.manual_seed(0)
    model = DenseAutoencoder((784, code), device=device)
    opt = md.optim.Adam(model.parameters())
    batch = md.tensor(x, device=device)
    first = model.linears()[0][0]

    def step(penalty):
        def run():
            opt.zero_grad()
            loss = F.mse_loss(model(batch), batch) + LAMBDA * penalty()
            loss.backward()
            opt.step()
            return loss

        return run

    return model, {
        "plain": step(lambda: 0.0),
        "formula": step(lambda: contractive_penalty(batch, first.weight, first.bias)),
        "double backward, Hutchinson 1": step(lambda: jacobian_penalty(model.encode, batch, samples=1)),
        "double backward, exact": step(lambda: jacobian_penalty(model.encode, batch)),
    }


def torch_steps(model: DenseAutoencoder, code: int, x: np.ndarray, signs: np.ndarray):
    T = torch.nn
    enc = T.Sequential(T.Flatten(), T.Linear(784, code), T.Sigmoid())
    dec = T.Sequential(T.Linear(code, 784), T.Sigmoid())
    with torch.no_grad():  # minidl's initial weights
        for theirs, ours in zip([enc[1], dec[0]], [model.linears()[0][0], model.linears()[1][0]]):
            theirs.weight.copy_(torch.from_numpy(ours.weight.numpy()))
            theirs.bias.copy_(torch.from_numpy(ours.bias.numpy()))
    params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params)
    batch, v = torch.from_numpy(x), torch.from_numpy(signs)

    def jacobian(probes):
        xb = batch.detach().requires_grad_()
        h = enc(xb)
        total = 0
        for probe in probes(h):
            (g,) = torch.autograd.grad(probe, xb, create_graph=True, retain_graph=True)
            total = total + (g * g).sum()
        return total / len(batch)

    def formula():
        h = enc(batch)
        slope = h * (1 - h)
        return ((slope * slope) * (enc[1].weight ** 2).sum(1)).sum() / len(batch)

    def step(penalty):
        def run():
            opt.zero_grad()
            loss = T.functional.mse_loss(dec(enc(batch)).reshape(batch.shape), batch) + LAMBDA * penalty()
            loss.backward()
            opt.step()
            return loss

        return run

    return {
        "plain": step(lambda: 0.0),
        "formula": step(formula),
        "double backward, Hutchinson 1": step(lambda: jacobian(lambda h: [(h * v).sum()])),
        "double backward, exact": step(lambda: jacobian(lambda h: [h[:, j].sum() for j in range(h.shape[1])])),
    }


def median_ms(fn, repeats: int, sync) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (match the machine)")
    args = parser.parse_args()
    device = backend.resolve_device(args.device)
    if device != "cpu":
        raise SystemExit("double_backward.py compares on the cpu (PyTorch's CPU build is the peer here)")
    torch.set_num_threads(args.threads)
    x = np.random.default_rng(0).random((128, 1, 28, 28), dtype=np.float32)
    print(f"one training step of a 784-code-784 sigmoid AE, batch 128, on {device}; ms, median of {args.repeats}")
    print(f"{'code':>4}  {'penalty':<30} {'minidl ms':>9} {'torch ms':>9} {'ratio':>6} {'x plain':>8}")
    for code in (256, 16):
        signs = np.sign(np.random.default_rng(1).standard_normal((128, code))).astype(np.float32)
        model, ours = minidl_steps(device, code, x)
        theirs = torch_steps(model, code, x, signs)
        plain = None
        for name in ours:
            if code == 256 and name.endswith("exact"):
                continue  # 256 backward passes a step: the estimate is what a large code uses
            a = median_ms(ours[name], args.repeats, lambda: None)
            b = median_ms(theirs[name], args.repeats, lambda: None)
            plain = a if plain is None else plain
            print(f"{code:>4}  {name:<30} {a:9.2f} {b:9.2f} {a / b:6.2f} {a / plain:8.2f}")


if __name__ == "__main__":
    main()
