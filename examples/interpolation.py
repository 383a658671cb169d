"""Latent interpolation: decode (1 - a) f(x1) + a f(x2) for a = 0, 0.1, ..., 1, between two
digits of the same class and of different classes, beside the plain pixel blend.

A good code moves through digit-like images; the pixel blend only cross-fades.

    python examples/interpolation.py                  # about a minute on 2 CPU cores
"""

import minidl as md
from minidl.experiments import figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.latent import interpolate_codes, pick_pair
from minidl.experiments.models import DenseAutoencoder
from minidl.experiments.options import positive_int
from minidl.nn import functional as F

import numpy as np

ALPHAS = np.round(np.linspace(0, 1, 11), 1)
PAIRS = [(3, 3), (7, 7), (1, 7), (4, 9), (0, 6), (2, 5)]  # (class of x1, class of x2)
MIN_TEST = 100  # MNIST's first 100 test digits hold every class at least twice


def options(parser):
    parser.add_argument("--code", type=positive_int, default=32, help="code size of the autoencoder (default 32)")


def enough_test_digits(args) -> str | None:
    if args.test_limit is not None and args.test_limit < MIN_TEST:
        return f"--test-limit {args.test_limit}: the pairs need two test digits of each class; give at least {MIN_TEST}"
    return None


@example(__doc__, epochs=3, options=options, check=enough_test_digits)
def interpolation(exp: Experiment) -> dict:
    mnist = exp.data
    model = DenseAutoencoder((784, 256, exp.args.code), activation="relu", device=exp.device)
    exp.fit("ae", model, md.optim.Adam(model.parameters(), lr=1e-3), lambda x, rng: F.mse_loss(model(x), x),
            [mnist.x_train])  # fmt: skip
    rng = exp.rng(20_000)
    rows, smoothness = {}, []
    for a, b in PAIRS:
        i, j = pick_pair(mnist.y_test, a, b, rng)
        x1, x2 = (md.tensor(mnist.x_test[k : k + 1], device=exp.device) for k in (i, j))
        strip = interpolate_codes(model, x1, x2, ALPHAS).numpy()
        blend = np.stack([(1 - t) * mnist.x_test[i] + t * mnist.x_test[j] for t in ALPHAS])
        kind = "same class" if a == b else "different"
        rows[f"{a}->{b} code"] = strip
        rows[f"{a}->{b} pixels"] = blend
        steps = np.sqrt(((strip[1:] - strip[:-1]) ** 2).sum(axis=(1, 2, 3)))  # distance between frames
        smoothness.append((f"{a} -> {b}", kind, float(steps.mean()), float(steps.max() / steps.mean())))
    figures.image_rows(rows, exp.figure("interpolation.png"), column_titles=[f"a={t}" for t in ALPHAS],
                   title="decoded code interpolation (code) against pixel blend (pixels)")  # fmt: skip
    exp.table(["pair", "classes", "mean step", "largest step / mean"], smoothness)
    mse = float(((exp.evaluate(model, mnist.x_test) - mnist.x_test) ** 2).mean())
    return exp.finish({"test_mse": mse, "pairs": [{"pair": p, "classes": k, "mean_step": m, "max_over_mean": r}
                                                  for p, k, m, r in smoothness]})  # fmt: skip


if __name__ == "__main__":
    run(interpolation.main)
