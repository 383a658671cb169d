"""Clustering the codes: k-means (k = 10) on autoencoder codes and on raw pixels, scored
by the accuracy of the best one-to-one map from clusters to digits (Hungarian assignment).

The autoencoder is 784-500-500-2000-10 with ReLU and a linear 10-unit code, trained as
a denoising AE (Gaussian noise 0.2); the k-means (best of 20 starts by distortion, never
by labels) runs on the codes scaled to unit length (their direction clusters better
than their raw values).

    python examples/cluster_codes.py                  # about 4 minutes on 2 CPU cores
"""

import minidl as md
from minidl.experiments import corruptions, figures, run
from minidl.experiments.clustering import cluster_accuracy, cluster_digits, kmeans
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.models import Autoencoder
from minidl.experiments.options import positive_int
from minidl.nn import Flatten, Linear, ReLU, Sequential, Sigmoid, Unflatten
from minidl.nn import functional as F

import numpy as np

SHOW = 10


class ClusteringAE(Autoencoder):
    """784-500-500-2000-code, ReLU, linear code; the decoder mirrors it with a sigmoid output."""

    def __init__(self, code: int, device=None):
        super().__init__()
        sizes = [784, 500, 500, 2000, code]
        enc = [Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            enc += [Linear(a, b, device=device)] + ([ReLU()] if i < len(sizes) - 2 else [])
        back = sizes[::-1]
        dec = []
        for i, (a, b) in enumerate(zip(back[:-1], back[1:])):
            dec += [Linear(a, b, device=device), ReLU() if i < len(back) - 2 else Sigmoid()]
        self.encoder, self.decoder = Sequential(*enc), Sequential(*dec, Unflatten(1, (1, 28, 28)))


CLUSTERS = 10  # one per digit


def options(parser):
    parser.add_argument("--code", type=positive_int, default=10, help="code size (default 10)")
    parser.add_argument(
        "--points", type=positive_int, default=10_000, help="test images to cluster (default all 10,000)"
    )


def too_few_points(args) -> str | None:
    for option, count in (("--points", args.points), ("--test-limit", args.test_limit)):
        if count is not None and count < CLUSTERS:
            return f"{option} {count}: k-means finds {CLUSTERS} clusters, so it needs at least {CLUSTERS} points"
    return None


@example(__doc__, epochs=10, options=options, check=too_few_points)
def cluster_codes(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption("gaussian:0.2")
    model = ClusteringAE(args.code, device=exp.device)

    def step(x, rng):
        return F.mse_loss(model(noise(x, rng)), x)

    exp.fit("ae", model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train])
    x, y = mnist.x_test[: args.points], mnist.y_test[: args.points]
    codes = exp.evaluate(model.encode, x)
    codes = codes / (np.linalg.norm(codes, axis=1, keepdims=True) + 1e-12)
    results, assignments = [], {}
    for name, points in [("autoencoder codes", codes), ("raw pixels", x.reshape(len(x), -1))]:
        clusters = kmeans(points, CLUSTERS, seed=args.seed, restarts=20)
        assignments[name] = clusters
        results.append((name, points.shape[1], cluster_accuracy(y, clusters)))
    exp.table(["k-means on", "dims", "cluster accuracy"], results)
    counts, digit_of = cluster_digits(y, assignments["autoencoder codes"])
    order = np.argsort(digit_of)  # clusters in the order of the digits they stand for
    purity = counts.max(axis=1) / np.maximum(counts.sum(axis=1), 1)  # the share of its most common digit
    common = counts.argmax(axis=1)
    names = {c: f"cluster {c} → {digit_of[c]}, purity {purity[c]:.0%}" + ("" if common[c] == digit_of[c] else
             f" (of {common[c]}s)") for c in order}  # fmt: skip
    figures.confusion(counts[order], exp.figure("confusion.png"), [names[c] for c in order], "true digit",
                  "k-means cluster of the code (its digit by the Hungarian assignment)",
                  title=f"test digits per cluster: accuracy {results[0][2]:.1%} on the diagonal")  # fmt: skip
    rows = {names[c]: x[np.flatnonzero(assignments["autoencoder codes"] == c)[:SHOW]] for c in order}
    figures.image_rows(rows, exp.figure("clusters.png"), title="test digits by k-means cluster of their code")
    return exp.finish({"code_accuracy": results[0][2], "pixel_accuracy": results[1][2],
                       "clusters": [{"cluster": int(c), "digit": int(digit_of[c]), "purity": float(purity[c]),
                                     "size": int(counts[c].sum())} for c in order]})  # fmt: skip


if __name__ == "__main__":
    run(cluster_codes.main)
