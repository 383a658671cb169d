"""From pure noise to the data manifold: start from uniform noise and repeat
(a) reconstruction, x <- g(f(x)), or
(b) gradient ascent on -||g(f(x)) - x||^2 with respect to the image x,
with a denoising autoencoder. Each step is a frame; the reconstruction error shows how
close the walk is to images the model considers typical.

    python examples/manifold_walk.py                   # about a minute on 2 CPU cores
    python examples/manifold_walk.py --steps 60 --step-size 0.05
"""

import numpy as np

import minidl as md
from minidl import corruptions, viz
from minidl.autoencoders import DenseAutoencoder, manifold_walk
from minidl.cli import run
from minidl.experiment import Experiment, non_negative_float, positive_int
from minidl.nn import functional as F

FRAMES = 10  # frames shown per walk


def options(parser):
    parser.add_argument("--steps", type=positive_int, default=30, help="walk steps (default 30)")
    parser.add_argument("--step-size", type=non_negative_float, default=0.1, help="gradient step size (default 0.1)")
    parser.add_argument("--walkers", type=positive_int, default=4, help="noise images walked at once")


def main():
    exp = Experiment.from_command_line(__doc__, epochs=3, extra=options)
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption("gaussian:0.5")
    model = DenseAutoencoder((784, 256, 64), device=exp.device)

    def step(x, rng):
        return F.mse_loss(model(noise(x, rng)), x)

    exp.fit("dae", model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train])
    start = exp.rng(30_000).random((args.walkers, 1, 28, 28)).astype(np.float32)
    walks = {mode: manifold_walk(model, md.tensor(start, device=exp.device), args.steps, mode, args.step_size)
             for mode in ("reconstruct", "gradient")}  # fmt: skip

    def error(frames):
        return [float(((exp.evaluate(model, f) - f) ** 2).mean()) for f in frames]

    errors = {mode: error(frames) for mode, frames in walks.items()}
    data_error = float(((exp.evaluate(model, mnist.x_test[:1000]) - mnist.x_test[:1000]) ** 2).mean())
    shown = np.unique(np.linspace(0, args.steps, FRAMES).astype(int))
    rows = {f"{mode} #{w}": np.stack([walks[mode][s][w] for s in shown]) for mode in walks
            for w in range(min(2, args.walkers))}  # fmt: skip
    viz.image_rows(rows, exp.figure("manifold_walk.png"), column_titles=[f"step {s}" for s in shown],
                   title="walking from noise to the data manifold")  # fmt: skip
    viz.curves({f"{m} walk": e for m, e in errors.items()} | {"test digits": [data_error] * (args.steps + 1)},
               exp.figure("walk_error.png"), "step", "reconstruction error ||r(x) - x||^2 / pixels",
               x=list(range(args.steps + 1)), logy=True)  # fmt: skip
    exp.table(["step", *[f"{m} error" for m in errors]],
              [(s, *(errors[m][s] for m in errors)) for s in shown])  # fmt: skip
    print(f"reconstruction error of real test digits: {data_error:.4g}")
    exp.finish({"final_error": {m: e[-1] for m, e in errors.items()}, "start_error": errors["reconstruct"][0],
                "test_digit_error": data_error})  # fmt: skip


if __name__ == "__main__":
    run(main)
