"""What one training step asks of the GPU: host syncs, uploads and kernel launches per step.

Trains Model C (or D) through Experiment.fit on the strict CuPy stand-in of tests/standin
(NumPy underneath, every transfer and launch counted; our kernels run on the CPU emulator,
so a step takes seconds: keep --images small) and prints, for each step, what the device
did between the end of the step before and the end of this one, which includes the progress
bar's reads of the loss when it redraws. With --capture the steps run through
minidl.capture.CapturedStep: a warm-up, a recording, then one graph launch per step.

    python benchmarks/device_traffic.py                  # Model C, 3 steps of batch 4
    python benchmarks/device_traffic.py --capture --images 20
    python benchmarks/device_traffic.py --model D --images 512 --batch-size 128
"""

import argparse
import collections
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "standin"))  # `import cupy` finds the stand-in

import cupy  # noqa: E402
import numpy as np  # noqa: E402

import minidl as md  # noqa: E402
from minidl.experiments import corruptions, training  # noqa: E402
from minidl.experiments.experiment import Experiment  # noqa: E402
from minidl.experiments.models import ModelC, ModelD  # noqa: E402
from minidl.nn import functional as F  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["C", "D"], default="C")
    parser.add_argument("--images", type=int, default=12, help="training images (default 12)")
    parser.add_argument("--batch-size", type=int, default=4, help="default 4")
    parser.add_argument("--capture", action="store_true", help="replay each step from a CUDA graph")
    args = parser.parse_args()
    if args.images < 2 * args.batch_size:
        parser.error("--images must hold at least two batches")

    with tempfile.TemporaryDirectory() as out:
        run = argparse.Namespace(epochs=1, device="cuda", seed=0, out=Path(out), json=None, limit=None,
                                 batch_size=args.batch_size, resume=False, data=None, capture=args.capture)  # fmt: skip
        exp = Experiment(run, "device_traffic")
        model = (ModelC if args.model == "C" else ModelD)(device="cuda")
        noise = corruptions.corruption("gaussian:0.5" if args.model == "C" else "gaussian:0.3:noclip")
        loss_fn = F.binary_cross_entropy_with_logits if args.model == "C" else F.mse_loss
        c = cupy.counters
        marks = [(0, 0, 0, 0, 0, 0)]
        progress_update = training.Progress.update

        def update(progress, loss):  # the end of each step
            marks.append((c.syncs, c.uploads, c.launches, c.kernel_launches, c.graph_launches, len(c.kernels)))
            progress_update(progress, loss)

        training.Progress.update = update
        images = np.random.default_rng(0).random((args.images, 1, 28, 28)).astype(np.float32)
        c.reset()
        exp.fit("model", model, md.optim.Adam(model.parameters()), lambda x, rng: loss_fn(model(noise(x, rng)), x),
                [images])  # fmt: skip
        names = [name for name, *_ in c.kernels]

    print(f"Model {args.model}, batch {args.batch_size}{', captured' if args.capture else ''}, on the CuPy stand-in "
          f"({cupy.__version__} names)")  # fmt: skip
    print(f"{'step':>4}  {'host syncs':>10}  {'uploads':>7}  {'CuPy launches':>13}  {'our kernels':>11}  {'graphs':>6}")
    for i, (start, end) in enumerate(zip(marks, marks[1:]), start=1):
        syncs, uploads, launches, kernels, graphs = (b - a for a, b in zip(start[:5], end[:5]))
        print(f"{i:>4}  {syncs:>10}  {uploads:>7}  {launches:>13}  {kernels:>11}  {graphs:>6}")
    if args.capture:
        print("(a graph launch replays the CuPy launches and our kernels counted beside it: one launch on a GPU)")
    last = collections.Counter(names[marks[-2][5] : marks[-1][5]])
    if last:
        print("our kernels in the last full step: " + ", ".join(f"{n} ×{k}" for n, k in sorted(last.items())))


if __name__ == "__main__":
    main()
