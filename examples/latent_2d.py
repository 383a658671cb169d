"""A two-unit code: every test digit as a point in the plane, coloured by class, and the
decoded images of a grid over that plane (what the decoder thinks lives where).

    python examples/latent_2d.py                      # about a minute on 2 CPU cores
"""

import minidl as md
from minidl.experiments import figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.models import DenseAutoencoder
from minidl.nn import functional as F

import numpy as np
from scipy.spatial import cKDTree

GRID = 15
NEIGHBOURS = 5  # the k of the k-nearest-neighbour vote in the code plane


def enough_neighbours(args) -> str | None:
    if args.limit is not None and args.limit < NEIGHBOURS:
        return (
            f"--limit {args.limit}: the {NEIGHBOURS}-nearest-neighbour vote needs at least {NEIGHBOURS} training images"
        )
    return None


@example(__doc__, epochs=5, check=enough_neighbours)
def latent_2d(exp: Experiment) -> dict:
    mnist = exp.data
    model = DenseAutoencoder((784, 256, 64, 2), device=exp.device)
    exp.fit("ae2d", model, md.optim.Adam(model.parameters(), lr=2e-3), lambda x, rng: F.mse_loss(model(x), x),
            [mnist.x_train])  # fmt: skip
    test_codes = exp.evaluate(model.encode, mnist.x_test)
    train_codes = exp.evaluate(model.encode, mnist.x_train[:20_000])
    figures.scatter_codes(
        test_codes,
        mnist.y_test,
        exp.figure("latent_2d.png"),
        title=f"2-D codes of the test digits (784-256-64-2 AE, MSE, {exp.args.epochs} epochs)",
    )
    lo, hi = np.percentile(test_codes, 1, axis=0), np.percentile(test_codes, 99, axis=0)
    a, b = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(hi[1], lo[1], GRID))
    plane = np.stack([a.ravel(), b.ravel()], 1).astype(np.float32)
    decoded = exp.evaluate(model.decode, plane).reshape(GRID, GRID, 1, 28, 28)
    figures.image_grid(decoded, exp.figure("decoded_grid.png"), xs=a[0], ys=b[:, 0], xlabel="code 1", ylabel="code 2",
                   title=f"decoder over the code plane (784-256-64-2 AE, MSE, {exp.args.epochs} epochs)")  # fmt: skip
    _, nearest = cKDTree(train_codes).query(test_codes, k=NEIGHBOURS)
    votes = mnist.y_train[: len(train_codes)][nearest]
    predicted = np.array([np.bincount(v, minlength=10).argmax() for v in votes])
    accuracy = float((predicted == mnist.y_test).mean())
    mse = float(((exp.evaluate(model, mnist.x_test) - mnist.x_test) ** 2).mean())
    per_class = [(k, float((predicted[mnist.y_test == k] == k).mean())) for k in range(10)]
    exp.table(["digit", "5-NN accuracy in the 2-D code"], per_class)
    print(f"overall 5-NN accuracy {accuracy:.3f}, test reconstruction MSE {mse:.4f}")
    return exp.finish({"test_mse": mse, "knn_accuracy": accuracy})


if __name__ == "__main__":
    run(latent_2d.main)
