"""The vector field of a denoising autoencoder: trained on points near a curve in the plane, its
reconstruction r(x) = g(f(x)) maps a point x to one nearer the curve, so the arrows r(x) - x
drawn over a grid point back to the data manifold (the CudaVision and LMU lectures' figure).

The data are points on a curve (a spiral by default) with a little scatter; the DAE
(2 -> 128 -> 128 -> 2, ReLU) learns to undo Gaussian noise of --sigma. The table reports how far
noisy test points lie from the curve before and after one pass through the DAE, and how many
of the grid's arrows point toward the curve.

    python examples/dae_vector_field.py                  # about half a minute on 2 CPU cores
    python examples/dae_vector_field.py --curve circle --sigma 0.2
"""

import minidl as md
from minidl import nn
from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.options import non_negative_float, positive_int
from minidl.nn import functional as F

import numpy as np

GRID = 21  # arrows per side of the grid
SCATTER = 0.02  # how far the data lie from the curve


def curve(name: str, t: np.ndarray) -> np.ndarray:
    """Points (len(t), 2) of the named curve at parameters t in [0, 1), within [-1, 1]²."""
    if name == "circle":
        return np.stack([0.7 * np.cos(2 * np.pi * t), 0.7 * np.sin(2 * np.pi * t)], axis=1)
    if name == "sine":
        return np.stack([1.8 * t - 0.9, 0.5 * np.sin(2 * np.pi * t)], axis=1)
    angle, radius = 3 * np.pi * t + 0.5, 0.15 + 0.75 * t  # a spiral of one and a half turns
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def distance_to(points: np.ndarray, dense_curve: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each point's distance to the curve (sampled densely) and the nearest curve point."""
    d2 = ((points[:, None, :] - dense_curve[None]) ** 2).sum(-1)
    nearest = d2.argmin(axis=1)
    return np.sqrt(d2[np.arange(len(points)), nearest]), dense_curve[nearest]


def options(parser):
    parser.add_argument("--curve", choices=["spiral", "circle", "sine"], default="spiral", help="the data manifold")
    parser.add_argument("--sigma", type=non_negative_float, default=0.1, help="training noise (default 0.1)")
    parser.add_argument("--points", type=positive_int, default=20_000, help="training points (default 20000)")


@example(__doc__, epochs=30, options=options)
def dae_vector_field(exp: Experiment) -> dict:
    args, rng = exp.args, exp.rng(0)
    count = min(args.points, args.limit or args.points)
    data = (curve(args.curve, rng.random(count)) + rng.normal(0, SCATTER, (count, 2))).astype(np.float32)
    dense_curve = curve(args.curve, np.linspace(0, 1, 2000, endpoint=False))
    model = nn.Sequential(nn.Linear(2, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2)).to(
        exp.device
    )

    noise = corruptions.corruption(f"gaussian:{args.sigma}:noclip")

    def step(x, noise_rng):
        return F.mse_loss(model(noise(x, noise_rng)), x)

    losses, _ = exp.fit("dae", model, md.optim.Adam(model.parameters(), lr=1e-3), step, [data])
    test_rng = exp.rng(1)
    clean = curve(args.curve, test_rng.random(2000))
    noisy = (clean + test_rng.normal(0, args.sigma, clean.shape)).astype(np.float32)
    before, _ = distance_to(noisy, dense_curve)
    after, _ = distance_to(exp.evaluate(model, noisy), dense_curve)
    axis = np.linspace(-1, 1, GRID, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    arrows = exp.evaluate(model, grid) - grid
    grid_distance, nearest = distance_to(grid, dense_curve)
    toward = ((arrows * (nearest - grid)).sum(1) > 0)[grid_distance > 2 * SCATTER]  # off the curve itself
    exp.table([f"noisy test points (σ = {args.sigma:g})", "mean distance to the curve"],
              [("before the DAE", float(before.mean())), ("after one pass r(x)", float(after.mean()))])  # fmt: skip
    print(f"grid arrows pointing toward the curve: {toward.mean():.1%} of {toward.size}")
    figures.vector_field(
        grid,
        arrows,
        dense_curve,
        exp.figure("vector_field.png"),
        samples=data[:3000],
        title=f"a DAE's vector field r(x) - x (trained with σ = {args.sigma}), {args.curve}",
    )
    figures.curves({"training loss (MSE)": losses}, exp.figure("loss.png"), "epoch", "MSE", logy=True,
               title="denoising loss per epoch")  # fmt: skip
    return exp.finish({"distance_before": float(before.mean()), "distance_after": float(after.mean()),
                       "toward_fraction": float(toward.mean()),
                       "final_loss": losses[-1] if losses else None})  # fmt: skip


if __name__ == "__main__":
    run(dae_vector_field.main)
