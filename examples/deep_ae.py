"""Deep autoencoders: one layer, several layers pretrained layer by layer, and the same
stack fine-tuned end to end; each as a plain AE and as a denoising AE (Gaussian 0.3).

The six rows compare test MSE on clean inputs and on noisy inputs. Every model has the
same code size, so depth and training are the only differences.

    python examples/deep_ae.py                       # a few minutes on 2 CPU cores
    python examples/deep_ae.py --sizes 784 512 256 64 --epochs 2
"""

import minidl as md
from minidl import corruptions, viz
from minidl.autoencoders import DenseAutoencoder, pretrain_layerwise, stack
from minidl.cli import run
from minidl.experiment import Experiment, non_negative_float, positive_int
from minidl.nn import functional as F

SHOW = 8

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


def main():
    exp = Experiment.from_command_line(
        __doc__,
        epochs=2,
        extra=options,
        check=sizes_problem,
    )
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption(f"gaussian:{args.sigma}")
    noisy_test = noise(mnist.x_test, exp.rng(10_000))

    def train(tag, model, denoise, inputs):
        def step(x, rng):
            inp = noise(x, rng) if denoise else x
            return F.mse_loss(model(inp), x)

        exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=1e-3), step, [inputs])

    rows, figure, metrics = [], {"clean": mnist.x_test[:SHOW]}, {}
    for kind, denoise in [("AE", False), ("DAE", True)]:
        one = DenseAutoencoder((args.sizes[0], args.sizes[-1]), device=exp.device)
        train(f"one_layer_{kind}", one, denoise, mnist.x_train)

        def train_level(level, ae, inputs, kind=kind, denoise=denoise):
            train(f"level{level}_{kind}", ae, denoise, inputs)

        levels = pretrain_layerwise(args.sizes, mnist.x_train, train_level, lambda ae, x: exp.evaluate(ae.encode, x),
                                    device=exp.device)  # fmt: skip
        pretrained = stack(levels, device=exp.device)
        tuned = stack(levels, device=exp.device)
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
            metrics[f"{name} {kind}"] = {"test_mse": clean, "noisy_test_mse": noisy}
            figure[f"{name.split(',')[-1].strip()} {kind}"] = out[:SHOW]
    sizes = "-".join(map(str, args.sizes))
    exp.table(["model", "kind", "test MSE (clean input)", f"test MSE (noisy {args.sigma})"], rows)
    viz.image_rows(figure, exp.figure("deep_ae.png"), title=f"reconstructions; deep models {sizes}, one layer "
                   f"{args.sizes[0]}-{args.sizes[-1]}")  # fmt: skip
    exp.finish({"test_mse": metrics["deep, fine-tuned AE"]["test_mse"], "rows": metrics})


if __name__ == "__main__":
    run(main)
