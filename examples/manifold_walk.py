"""From pure noise to the data manifold: start from uniform noise and repeat, with step size
eta (--step-size) and r = g(f(.)) a denoising autoencoder's reconstruction,
(a) the lecture's step along the DAE's vector field, x <- x + eta (r(x) - x) (eta = 1: x <- r(x)),
(b) gradient ascent on -||r(x) - x||^2 with respect to the image x, or
(c) the same ascent with a pull toward one digit, the mean of that digit's training images
    (the ISPR notebook's digit_mean(4) target; --digit, --pull: the energy gains pull·||x - mean||^2).
Each step is a frame. Are the end images plausible digits? A small classifier trained here
says which digit each one is and how sure it is; a walk counts as having moved when the judge's
class of its end differs from that of its start (a walk that never leaves one class went
nowhere the judge can tell, even if that class is --digit), and the walk toward --digit counts
when it changed class to that digit. Each end image's distance to the nearest training digit
says whether it is a copy; real test digits give the reference.

    python examples/manifold_walk.py                   # about a minute on 2 CPU cores
    python examples/manifold_walk.py --steps 60 --step-size 0.05 --digit 7
"""

import minidl as md
from minidl.experiments import corruptions, figures, latent, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.latent import WALKS, class_changed, plausibility
from minidl.experiments.models import DenseAutoencoder
from minidl.experiments.options import non_negative_float, positive_int
from minidl.nn import functional as F

import numpy as np

FRAMES = 10  # frames shown per walk
SHOWN_WALKERS = 2  # walkers drawn per mode


def options(parser):
    parser.add_argument("--steps", type=positive_int, default=30, help="walk steps (default 30)")
    parser.add_argument("--step-size", type=non_negative_float, default=0.1, help="eta of every walk (default 0.1)")
    parser.add_argument("--walkers", type=positive_int, default=8, help="noise images walked at once (default 8)")
    parser.add_argument("--digit", type=int, choices=range(10), default=4, help="the digit walked toward (default 4)")
    parser.add_argument("--pull", type=non_negative_float, default=1.0, help="weight of the pull toward it (1.0)")


@example(__doc__, epochs=3, options=options)
def manifold_walk(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption("gaussian:0.5")
    model = DenseAutoencoder((784, 256, 64), device=exp.device)

    def step(x, rng):
        return F.mse_loss(model(noise(x, rng)), x)

    exp.fit("dae", model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train])
    judge = exp.digit_judge()
    start = md.tensor(exp.rng(30_000).random((args.walkers, 1, 28, 28)).astype(np.float32), device=exp.device)
    mean_digit = mnist.x_train[mnist.y_train == args.digit].mean(axis=0, keepdims=True)
    names = {"reconstruct": "vector field", "gradient": "gradient", "toward": f"toward {args.digit}"}
    walks = {names[mode]: latent.manifold_walk(
                 model, start, args.steps, mode, args.step_size, pull=args.pull,
                 target=md.tensor(mean_digit, device=exp.device) if mode == "toward" else None)
             for mode in WALKS}  # fmt: skip

    def error(frames):
        return [float(((exp.evaluate(model, f) - f) ** 2).mean()) for f in frames]

    errors = {name: error(frames) for name, frames in walks.items()}
    real = mnist.x_test[:1000]
    data_error = float(((exp.evaluate(model, real) - real) ** 2).mean())
    ends = {name: frames[-1] for name, frames in walks.items()} | {"real test digits": real[: args.walkers]}
    judged = {name: plausibility(images, exp.evaluate(judge, images), mnist.x_train) for name, images in ends.items()}
    start_classes = exp.evaluate(judge, start.numpy()).argmax(axis=1)  # every walk starts from the same noise
    rows, metrics = [], {}
    for name, verdict in judged.items():
        flat = ends[name].reshape(len(ends[name]), -1)
        spread = np.sqrt(((flat[:, None] - flat[None]) ** 2).mean(-1))[np.triu_indices(len(flat), 1)]
        classes = " ".join(str(c) for c in verdict["class"])
        walked = name in walks
        changed = float(class_changed(start_classes, verdict["class"]).mean()) if walked else None
        reached = float(class_changed(start_classes, verdict["class"], args.digit).mean()) if walked else None
        rows.append((name, classes, "-" if changed is None else changed, "-" if reached is None else reached,
                     float(verdict["confidence"].mean()), float(verdict["nearest"].mean()),
                     float(spread.mean()) if spread.size else 0.0))  # fmt: skip
        metrics[name] = {"classes": verdict["class"].tolist(), "confidence": verdict["confidence"].tolist(),
                         "nearest_training_distance": verdict["nearest"].tolist(), "changed_class": changed,
                         f"changed_to_{args.digit}": reached}  # fmt: skip
    print(f"the judge's classes of the starting noise: {' '.join(map(str, start_classes))}")
    exp.table(["end images of", "classes (judge)", "changed class", f"changed to {args.digit}", "confidence",
               "RMS to a digit", "RMS between walkers"], rows)  # fmt: skip
    shown = np.unique(np.linspace(0, args.steps, FRAMES).astype(int))
    figure = {f"{name} #{w}": np.stack([frames[s][w] for s in shown]) for name, frames in walks.items()
              for w in range(min(SHOWN_WALKERS, args.walkers))}  # fmt: skip
    titles = [f"step {s}" for s in shown]
    figures.image_rows(figure, exp.figure("manifold_walk.png"), column_titles=titles,
                   title=f"from noise to the data manifold (and toward the mean {args.digit}), eta "
                         f"{args.step_size:g}, DAE trained {args.epochs} epochs")  # fmt: skip
    labels = {name: [f"{c} ({p:.0%})" for c, p in zip(v["class"], v["confidence"])] for name, v in judged.items()}
    figures.image_rows(ends, exp.figure("walk_ends.png"), captions=labels,
                   title=f"where each walker ended after {args.steps} steps (eta {args.step_size:g}, pull "
                         f"{args.pull:g}), under each the judge's digit (confidence)")  # fmt: skip
    figures.curves({f"{m} walk": e for m, e in errors.items()} | {"test digits": [data_error] * (args.steps + 1)},
               exp.figure("walk_error.png"), "step", "reconstruction error ||r(x) - x||^2 / pixels",
               x=list(range(args.steps + 1)), logy=True,
               title=f"how far each walk is from the manifold ({args.walkers} walkers, eta {args.step_size:g}, "
                     f"pull {args.pull:g} toward {args.digit}; DAE trained {args.epochs} epochs)")  # fmt: skip
    print(f"reconstruction error of real test digits: {data_error:.4g}")
    return exp.finish({"final_error": {m: e[-1] for m, e in errors.items()},
                       "start_error": errors[names["reconstruct"]][0],
                       "test_digit_error": data_error, "judged": metrics})  # fmt: skip


if __name__ == "__main__":
    run(manifold_walk.main)
