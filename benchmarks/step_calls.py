"""Python function calls and seconds per training step of Model C (or D) on the cpu.

The calls are a measure of the Python work per step that the machine's load does not move
(cProfile counts them), so an engine change can be compared with the code before it even on a
busy machine; the seconds are the median and fastest of the timed steps.

    python benchmarks/step_calls.py                     # Model C (BCE with logits), batch 4
    PYTHONPATH=/path/to/other/checkout python benchmarks/step_calls.py --model D
"""

import argparse
import cProfile
import pstats
import time

import numpy as np
from profile_step import training_step

import minidl as md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["C", "D"], default="C")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="profiled and timed steps after 3 warm-up steps")
    args = parser.parse_args()

    step, _ = training_step(args.model, args.batch_size, "cpu")
    for _ in range(3):
        step()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.steps):
        step()
    profile.disable()
    calls = pstats.Stats(profile).total_calls / args.steps
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    print(
        f"minidl at {md.__file__}: Model {args.model}, batch {args.batch_size}: {calls:.0f} Python calls per step; "
        f"{np.median(seconds) * 1e3:.2f} ms median, {min(seconds) * 1e3:.2f} ms fastest"
    )


if __name__ == "__main__":
    main()
