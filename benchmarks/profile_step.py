"""Where one training step of Model C (or D, or P) spends its time, per op, forward and backward.

Every op's forward and backward (and the optimiser's update) is timed by a wrapper around it
while the model trains on one fixed batch; the table lists milliseconds per step, calls per
step and the share of the step, largest first. Time outside the ops (Python glue, the
backward walk) is the remainder.

    python benchmarks/profile_step.py                 # Model C, batch 128, on the cpu
    python benchmarks/profile_step.py --model D --steps 50
"""

import argparse
import collections
import time

import numpy as np

import minidl as md
from minidl.autograd.function import Function
from minidl.experiments.models import ModelC, ModelD, ModelP
from minidl.nn import functional as F

PHASES = ("forward", "backward", "forward_kernel", "backward_kernel")


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def timed(totals, label, method):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds, calls = totals[label]
            totals[label] = (seconds + time.perf_counter() - start, calls + 1)

    return wrapper


def training_step(model_name: str, batch_size: int, device: str):
    """One Adam step of Model C (BCE with logits), D or P (MSE) on a fixed random batch, as a
    callable, and the optimiser it steps."""
    md.manual_seed(0)
    model = {"C": ModelC, "D": ModelD, "P": ModelP}[model_name](device=device)
    loss_fn = F.binary_cross_entropy_with_logits if model_name == "C" else F.mse_loss
    opt = md.optim.Adam(model.parameters())
    x = md.tensor(np.random.default_rng(0).random((batch_size, 1, 28, 28)), dtype=md.float32, device=device)

    def step():
        loss = loss_fn(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, opt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["C", "D", "P"], default="C")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps after 5 warm-up steps (default 20)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    step, opt = training_step(args.model, args.batch_size, args.device)
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    plain = (time.perf_counter() - start) / args.steps

    totals = collections.defaultdict(lambda: (0.0, 0))
    for cls in set(subclasses(Function)):
        for phase in PHASES:
            if phase in vars(cls):
                setattr(cls, phase, timed(totals, f"{cls.__name__}.{phase}", vars(cls)[phase]))
    type(opt).update = timed(totals, f"{type(opt).__name__}.update", type(opt).update)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    measured = (time.perf_counter() - start) / args.steps

    print(f"Model {args.model}, batch {args.batch_size}, {args.device}: {plain * 1e3:.1f} ms per step "
          f"({measured * 1e3:.1f} ms with the timers)")  # fmt: skip
    print(f"{'op':<34} {'ms/step':>8} {'calls':>6} {'share':>6}")
    rows = sorted(totals.items(), key=lambda item: -item[1][0])
    for label, (seconds, calls) in rows:
        per_step = seconds / args.steps
        print(f"{label:<34} {per_step * 1e3:>8.2f} {calls // args.steps:>6} {per_step / measured:>6.1%}")
    rest = measured - sum(seconds for seconds, _ in totals.values()) / args.steps
    print(f"{'(outside the ops)':<34} {rest * 1e3:>8.2f} {'':>6} {rest / measured:>6.1%}")


if __name__ == "__main__":
    main()
