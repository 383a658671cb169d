"""Deep autoencoders: one layer, several layers pretrained layer by layer, and the same
stack fine-tuned end to end; each as a plain AE and as a denoising AE (Gaussian 0.3).

The six rows compare test MSE on clean inputs and on noisy inputs. Every model has the
same code size, so depth and training are the only differences. Then each of the six
interpolates between two test digits of the same class and two of different classes,
decoding (1 - a) f(x1) + a f(x2) for a = 0.0, 0.1, ..., 1.0; are the frames between
plausible digits? A small classifier says how sure it is of each (and whether it names one
of the two ends' classes), and each frame's distance to the nearest training digit says how
far it is from real data; the pixel cross-fade is the baseline.

    python examples/deep_ae.py                       # a few minutes on 2 CPU cores
    python examples/deep_ae.py --sizes 784 512 256 64 --epochs 2
"""

import minidl as md
from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.latent import class_changed, interpolate_codes, pick_pair, plausibility
from minidl.experiments.models import DenseAutoencoder, pretrain_layerwise, stack_levels
from minidl.experiments.options import non_negative_float, positive_int
from minidl.nn import functional as F

import numpy as np

SHOW = 8
ALPHAS = np.round(np.linspace(0, 1, 11), 1)
PAIRS = [(3, 3), (4, 9)]  # (class of x1, class of x2): the same class, different classes

PIXELS = 784  # the input of every model here: a 28 × 28 image


def sizes_problem(args) -> str | None:
    if len(args.sizes) < 2:
        return "--sizes needs an input and a code size"
    if args.sizes[0] != PIXELS:
        return f"--sizes starts with the input, an MNIST image's {PIXELS} pixels, not {args.sizes[0]}"
    return None


def options(parser):
    parser.add_argument(
        "--sizes", type=positive_int, nargs="+", default=[784, 256, 64], help="layer sizes, input first"
    )
    parser.add_argument("--sigma", type=non_negative_float, default=0.3, help="noise of the denoising variants")


@example(__doc__, epochs=2, options=options, check=sizes_problem)
def deep_ae(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption(f"gaussian:{args.sigma}")
    noisy_test = noise(mnist.x_test, exp.rng(10_000))

    def train(tag, model, denoise, inputs):
        def step(x, rng):
            inp = noise(x, rng) if denoise else x
            return F.mse_loss(model(inp), x)

        exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=1e-3), step, [inputs])

    rows, figure, metrics, models = [], {"clean": mnist.x_test[:SHOW]}, {}, {}
    for kind, denoise in [("AE", False), ("DAE", True)]:
        one = DenseAutoencoder((args.sizes[0], args.sizes[-1]), device=exp.device)
        train(f"one_layer_{kind}", one, denoise, mnist.x_train)

        def train_level(level, ae, inputs, kind=kind, denoise=denoise):
            train(f"level{level}_{kind}", ae, denoise, inputs)

        levels = pretrain_layerwise(args.sizes, mnist.x_train, train_level, lambda ae, x: exp.evaluate(ae.encode, x),
                                    device=exp.device)  # fmt: skip
        pretrained = stack_levels(levels, device=exp.device)
        tuned = stack_levels(levels, device=exp.device)
        train(f"fine_tuned_{kind}", tuned, denoise, mnist.x_train)
        for name, model in [
            ("one layer", one),
            ("deep, layer-wise pretrained", pretrained),
            ("deep, fine-tuned", tuned),
        ]:
            out = exp.evaluate(model, mnist.x_test)
            clean = float(((out - mnist.x_test) ** 2).mean())
            noisy = float(((exp.evaluate(model, noisy_test) - mnist.x_test) ** 2).mean())
            rows.append((name, kind, clean, noisy))
            models[f"{name} {kind}"] = model
            metrics[f"{name} {kind}"] = {"test_mse": clean, "noisy_test_mse": noisy}
            figure[f"{name.split(',')[-1].strip()} {kind}"] = out[:SHOW]
    sizes = "-".join(map(str, args.sizes))
    exp.table(["model", "kind", "test MSE (clean input)", f"test MSE (noisy {args.sigma})"], rows)
    figures.image_rows(figure, exp.figure("deep_ae.png"), title=f"reconstructions; deep models {sizes}, one layer "
                   f"{args.sizes[0]}-{args.sizes[-1]}")  # fmt: skip
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
