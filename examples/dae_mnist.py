"""Model D, the dense denoising autoencoder (784-256-256-784, sigmoid, dropout 0.5),
trained at increasing Gaussian noise levels: how much noise can it learn to remove,
and what does it do to clean digits?

    python examples/dae_mnist.py                       # about a minute on 2 CPU cores
    python examples/dae_mnist.py --levels 0.1 0.3 0.5 0.7 0.9 --epochs 5
"""

import minidl as md
from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example, psnr
from minidl.experiments.models import ModelD
from minidl.experiments.options import non_negative_float
from minidl.nn import functional as F

SHOW = 8


def options(parser):
    parser.add_argument(
        "--levels", type=non_negative_float, nargs="+", default=[0.1, 0.3, 0.5, 0.7], help="noise sigmas"
    )


@example(__doc__, epochs=3, options=options)
def dae_mnist(exp: Experiment) -> dict:
    mnist = exp.data
    rows, figure_rows, histories, metrics = [], {"clean": mnist.x_test[:SHOW]}, {}, {}
    for level in exp.args.levels:
        noise = corruptions.corruption(f"gaussian:{level}:noclip")
        model = ModelD(device=exp.device)

        def step(x, rng, model=model, noise=noise):
            return F.mse_loss(model(noise(x, rng)), x)

        histories[f"sigma {level}"], _ = exp.fit(
            f"model_d_sigma{level}", model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train]
        )
        noisy = noise(mnist.x_test, exp.rng(10_000))
        out = exp.evaluate(model, noisy)
        clean_out = exp.evaluate(model, mnist.x_test)
        mse, noisy_mse = float(((out - mnist.x_test) ** 2).mean()), float(((noisy - mnist.x_test) ** 2).mean())
        clean_mse = float(((clean_out - mnist.x_test) ** 2).mean())
        rows.append((level, noisy_mse, mse, psnr(mse), clean_mse))
        metrics[str(level)] = {"noisy_mse": noisy_mse, "test_mse": mse, "psnr": psnr(mse), "clean_input_mse": clean_mse}
        figure_rows[f"noisy {level}"] = noisy[:SHOW].clip(0, 1)
        figure_rows[f"denoised {level}"] = out[:SHOW]
    exp.table(["noise sigma", "noisy MSE", "denoised MSE", "PSNR dB", "MSE on clean input"], rows)
    settings = f"input + sigma·N(0, 1), unclipped; MSE; {exp.args.epochs} epochs"
    figures.image_rows(figure_rows, exp.figure("denoising_levels.png"),
                   title=f"Model D trained and tested at each noise level ({settings})")  # fmt: skip
    figures.curves(histories, exp.figure("loss_curves.png"), "epoch", "training MSE", logy=True,
               title=f"Model D's training MSE per epoch, one model per noise level ({settings})")  # fmt: skip
    first = metrics[str(exp.args.levels[0])]
    return exp.finish({"test_mse": first["test_mse"], "psnr": first["psnr"], "levels": metrics})


if __name__ == "__main__":
    run(dae_mnist.main)
