"""Deep autoencoders: one layer, several layers pretrained layer by layer, and the same
stack fine-tuned end to end; each as a plain AE and as a denoising AE, at the ISPR notebook's
configuration.

The notebook's recipe: ReLU code units and a sigmoid output, MSE, Adam at 1e-3, batches of 32;
the one-layer AE (784-128-784) trains 5 epochs, the one-layer DAE 10 on input + 0.4·N(0, 1)
(unclipped, the notebook's GaussianNoise(0.4)), where the notebook reports MSE 0.0023 and 0.0107.
The deep models (784-256-128 by default: code 128 as the one-layer's, so depth and training are
the only differences) pretrain each level for --pretrain-epochs (the notebook's 5); a level above
the first reconstructs the ReLU codes below it through a sigmoid, as the notebook's does, so the
pretrained stack is a poor model until fine-tuning. The fine-tuned copy trains until its
validation MSE stops improving (--patience epochs with under 1 % gain, at most --epochs) on a
validation split of the training set, and keeps its best epoch. The table gives each model's test
MSE on clean and on noisy inputs, its epochs and whether it converged.

Then each of the six interpolates between two test digits of the same class and two of
different classes, decoding (1 - a) f(x1) + a f(x2) for a = 0.0, 0.1, ..., 1.0; are the frames
between plausible digits? A small classifier says how sure it is of each (and whether it names
one of the two ends' classes), and each frame's distance to the nearest training digit says how
far it is from real data; the pixel cross-fade is the baseline.

    python examples/deep_ae.py                       # up to 75 epochs at batch 32 (a one-layer epoch: 3 s quiet)
    python examples/deep_ae.py --sizes 784 512 128 --epochs 5
"""

import minidl as md
from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.latent import class_changed, interpolate_codes, pick_pair, plausibility
from minidl.experiments.models import DenseAutoencoder, pretrain_layerwise, stack_levels
from minidl.experiments.options import non_negative_float, non_negative_int, positive_int
from minidl.nn import functional as F

import numpy as np

SHOW = 8
ALPHAS = np.round(np.linspace(0, 1, 11), 1)
PAIRS = [(3, 3), (4, 9)]  # (class of x1, class of x2): the same class, different classes
VAL_SEED, TEST_SEED = 9_999, 10_000  # the validation and test corruptions' fixed streams

PIXELS = 784  # the input of every model here: a 28 × 28 image
ISPR = {"AE": 0.0023, "DAE": 0.0107}  # the notebook's one-layer MSE after its 5 and 10 epochs


def sizes_problem(args) -> str | None:
    if len(args.sizes) < 2:
        return "--sizes needs an input and a code size"
    if args.sizes[0] != PIXELS:
        return f"--sizes starts with the input, an MNIST image's {PIXELS} pixels, not {args.sizes[0]}"
    return None


def options(parser):
    parser.set_defaults(batch_size=32)  # the notebook's (Keras's default)
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[784, 256, 128],
                        help="the deep models' layer sizes, input first (default 784 256 128)")  # fmt: skip
    parser.add_argument("--units", type=positive_int, default=128, help="the one-layer models' code (default 128)")
    parser.add_argument("--sigma", type=non_negative_float, default=0.4,
                        help="noise of the denoising variants, unclipped (default 0.4)")  # fmt: skip
    parser.add_argument("--one-layer-epochs", type=positive_int, nargs=2, default=[5, 10], metavar=("AE", "DAE"),
                        help="the one-layer AE's and DAE's epochs (default the notebook's 5 10)")  # fmt: skip
    parser.add_argument("--pretrain-epochs", type=non_negative_int, default=5,
                        help="epochs of each pretrained level (default the notebook's 5)")  # fmt: skip
    parser.add_argument("--patience", type=positive_int, default=2,
                        help="fine-tuning stops when this many epochs improved validation MSE by under 1%% "
                        "(default 2); --epochs is its most")  # fmt: skip


@example(__doc__, epochs=20, options=options, check=sizes_problem)
def deep_ae(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    mnist.hold_out_validation()
    spec = f"gaussian:{args.sigma}:noclip"
    noise = corruptions.corruption(spec)
    noisy_test, noisy_val = noise(mnist.x_test, exp.rng(TEST_SEED)), noise(mnist.x_val, exp.rng(VAL_SEED))

    def mse(model, x) -> float:
        return float(((exp.evaluate(model, x) - mnist.x_test[: len(x)]) ** 2).mean())

    def train(tag, model, denoise, inputs, epochs, patience=None) -> dict:
        """Train (denoising or not); with patience, stopped on the validation MSE. What happened."""

        def step(x, rng):
            return F.mse_loss(model(noise(x, rng) if denoise else x), x)

        def validate() -> float:
            return float(((exp.evaluate(model, noisy_val if denoise else mnist.x_val) - mnist.x_val) ** 2).mean())

        history, _ = exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=1e-3), step, [inputs], epochs=epochs,
                             evaluate=validate if patience else None, patience=patience)  # fmt: skip
        return exp.fits.get(tag, {"epochs": len(history), "best_epoch": None, "converged": None})

    rows, figure, metrics, models = [], {"clean": mnist.x_test[:SHOW]}, {}, {}
    for k, (kind, denoise) in enumerate([("AE", False), ("DAE", True)]):
        one = DenseAutoencoder((PIXELS, args.units), activation="relu", device=exp.device)
        fits = {"one layer": train(f"one_layer_{kind}", one, denoise, mnist.x_train, args.one_layer_epochs[k],
                                   patience=args.patience)}  # fmt: skip

        def train_level(level, ae, inputs, kind=kind, denoise=denoise):
            train(f"level{level}_{kind}", ae, denoise, inputs, args.pretrain_epochs)

        levels = pretrain_layerwise(args.sizes, mnist.x_train, train_level, lambda ae, x: exp.evaluate(ae.encode, x),
                                    activation="relu", device=exp.device)  # fmt: skip
        pretrained = stack_levels(levels, device=exp.device)
        tuned = stack_levels(levels, device=exp.device)
        fits["deep, layer-wise pretrained"] = {"epochs": args.pretrain_epochs, "best_epoch": None, "converged": None}
        fits["deep, fine-tuned"] = train(f"fine_tuned_{kind}", tuned, denoise, mnist.x_train, args.epochs,
                                         patience=args.patience)  # fmt: skip
        for name, model in [
            ("one layer", one),
            ("deep, layer-wise pretrained", pretrained),
            ("deep, fine-tuned", tuned),
        ]:
            clean, noisy = mse(model, mnist.x_test), mse(model, noisy_test)
            fit = fits[name]
            reference = ISPR[kind] if name == "one layer" else None
            ratio = (noisy if denoise else clean) / reference if reference else None
            converged = {True: "yes", False: "no", None: "-"}[fit["converged"]]
            rows.append((name, kind, clean, noisy, fit["epochs"], converged, reference or "", ratio or ""))
            models[f"{name} {kind}"] = model
            metrics[f"{name} {kind}"] = {
                "test_mse": clean, "noisy_test_mse": noisy, "loss": "mse",
                "train_corruption": spec if denoise else "none", "ispr_notebook_mse": reference,
                "ratio_to_ispr": ratio} | fit  # fmt: skip
            figure[f"{name.split(',')[-1].strip()} {kind}"] = exp.evaluate(model, mnist.x_test[:SHOW])
    sizes = "-".join(map(str, args.sizes))
    print(f"the one-layer rows beside the ISPR notebook's MSE (AE: clean input, DAE: noisy {args.sigma}); "
          f"fine-tuning stops on validation MSE (patience {args.patience}, at most {args.epochs} epochs)")  # fmt: skip
    exp.table(["model", "kind", "test MSE (clean input)", f"test MSE (noisy {args.sigma})", "epochs", "converged",
               "ISPR notebook", "ratio"], rows)  # fmt: skip
    figures.image_rows(figure, exp.figure("deep_ae.png"), title=f"clean test digits reconstructed; MSE, DAEs on "
                       f"{spec}; one layer {PIXELS}-{args.units}, deep {sizes}")  # fmt: skip
    interpolation = interpolate_all(exp, models)
    return exp.finish({"test_mse": metrics["deep, fine-tuned AE"]["test_mse"], "rows": metrics,
                       "interpolation": interpolation})  # fmt: skip


def interpolate_all(exp: Experiment, models: dict) -> list[dict]:
    """Every model's interpolation strips between the PAIRS, judged frame by frame; a figure and a table."""
    mnist, rng = exp.data, exp.rng(20_000)
    judge = exp.digit_judge()
    ends = [pick_pair(mnist.y_test, a, b, rng) for a, b in PAIRS]
    strips, rows, records = {}, [], []
    for (a, b), (i, j) in zip(PAIRS, ends):
        x1, x2 = mnist.x_test[i], mnist.x_test[j]
        candidates = {name: interpolate_codes(model, *(md.tensor(x[None], device=exp.device) for x in (x1, x2)), ALPHAS
                                        ).numpy() for name, model in models.items()}  # fmt: skip
        candidates["pixel cross-fade"] = np.stack([(1 - t) * x1 + t * x2 for t in ALPHAS]).astype(np.float32)
        for name, strip in candidates.items():
            inner = strip[1:-1]  # the frames between the two ends
            verdict = plausibility(inner, exp.evaluate(judge, inner), mnist.x_train)
            ends_class = exp.evaluate(judge, strip[[0, -1]]).argmax(axis=1)
            # between two classes the strip must go from a to b: one that never leaves a class names no end
            moved = a == b or bool(ends_class[0] == a and class_changed(ends_class[:1], ends_class[1:], b)[0])
            named = float(np.isin(verdict["class"], (a, b)).mean()) if moved else 0.0
            confidence, nearest = float(verdict["confidence"].mean()), float(verdict["nearest"].mean())
            rows.append((name, f"{a} -> {b}", confidence, "yes" if moved else "no", named, nearest))
            records.append({"model": name, "pair": f"{a}->{b}", "mean_confidence": confidence, "goes_a_to_b": moved,
                            "named_an_end": named, "nearest_training_rms": nearest})  # fmt: skip
            strips[f"{name}, {a}->{b}"] = strip
    print("the frames a = 0.1 … 0.9: the judge's mean confidence, whether the strip goes from the first digit\n"
          "to the second (its ends judged; a strip between two classes that never leaves one names no end),\n"
          "the fraction of frames named as either end's digit, and their mean RMS distance to the nearest\n"
          "training digit")  # fmt: skip
    exp.table(["interpolation by", "pair", "confidence", "goes a -> b", "named an end", "RMS to a digit"], rows)
    figures.image_rows(strips, exp.figure("interpolation.png"), column_titles=[f"a={t}" for t in ALPHAS],
                   title="decoded (1 - a) f(x1) + a f(x2) of the six models, and the pixel cross-fade")  # fmt: skip
    return records


if __name__ == "__main__":
    run(deep_ae.main)
