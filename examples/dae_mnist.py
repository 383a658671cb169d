"""Model D, the dense denoising autoencoder (784-256-256-784, sigmoid, dropout 0.5),
trained at increasing Gaussian noise levels: how much noise can it learn to remove,
and what does it do to clean digits?

One Model D per level, each with the main job's recipe (MSE, the output layer started at the
mean image, Adam at models.MAIN_JOB's rate) until its validation MSE stops improving (a split of
the training set; --patience epochs with under 1 % gain, at most --epochs), keeping its best
epoch; the table and --json give each level's epochs and whether it converged.

    python examples/dae_mnist.py                       # 4 levels, at most 20 epochs each
    python examples/dae_mnist.py --levels 0.1 0.3 0.5 0.7 0.9 --epochs 30
"""

from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example, mse, psnr
from minidl.experiments.models import MAIN_JOB
from minidl.experiments.options import non_negative_float, positive_int
from minidl.nn import functional as F

SHOW = 8


def options(parser):
    parser.add_argument(
        "--levels", type=non_negative_float, nargs="+", default=[0.1, 0.3, 0.5, 0.7], help="noise sigmas"
    )
    parser.add_argument("--patience", type=positive_int, default=2,
                        help="stop when this many epochs improved validation MSE by under 1%% (default 2)")  # fmt: skip


@example(__doc__, epochs=20, options=options)
def dae_mnist(exp: Experiment) -> dict:
    mnist, recipe = exp.data, MAIN_JOB["model_d"]
    mnist.hold_out_validation()
    rows, figure_rows, histories, metrics = [], {"clean": mnist.x_test[:SHOW]}, {}, {}
    for level in exp.args.levels:
        noise = corruptions.corruption(f"gaussian:{level}:noclip")
        model, optimizer = recipe.start(mnist.x_train, exp.device)
        noisy_val = noise(mnist.x_val, exp.rng(9_999))

        def step(x, rng, model=model, noise=noise):
            return F.mse_loss(model(noise(x, rng)), x)

        def validate(model=model, noisy_val=noisy_val) -> float:
            return mse(exp.evaluate(model, noisy_val), mnist.x_val)

        tag = f"model_d_sigma{level}"
        histories[f"sigma {level}"], _ = exp.fit(tag, model, optimizer, step, [mnist.x_train], evaluate=validate,
                                                 patience=exp.args.patience)  # fmt: skip
        fit = exp.fits[tag]
        noisy = noise(mnist.x_test, exp.rng(10_000))
        out = exp.evaluate(model, noisy)
        clean_out = exp.evaluate(model, mnist.x_test)
        test_mse, noisy_mse, clean_mse = (mse(y, mnist.x_test) for y in (out, noisy, clean_out))
        rows.append((level, noisy_mse, test_mse, psnr(test_mse), clean_mse, fit["epochs"], fit["best_epoch"],
                     "yes" if fit["converged"] else "NO"))  # fmt: skip
        metrics[str(level)] = {"noisy_mse": noisy_mse, "test_mse": test_mse, "psnr": psnr(test_mse),
                               "clean_input_mse": clean_mse, "loss": "mse", "lr": recipe.lr,
                               "train_corruption": f"gaussian:{level}:noclip"} | fit  # fmt: skip
        figure_rows[f"noisy {level}"] = noisy[:SHOW].clip(0, 1)
        figure_rows[f"denoised {level}"] = out[:SHOW]
    exp.table(["noise sigma", "noisy MSE", "denoised MSE", "PSNR dB", "MSE on clean input", "epochs", "best",
               "converged"], rows)  # fmt: skip
    settings = f"input + sigma·N(0, 1), unclipped; MSE; until converged, at most {exp.args.epochs} epochs"
    figures.image_rows(figure_rows, exp.figure("denoising_levels.png"),
                   title=f"Model D trained and tested at each noise level ({settings})")  # fmt: skip
    figures.curves(histories, exp.figure("loss_curves.png"), "epoch", "training MSE", logy=True,
               title=f"Model D's training MSE per epoch, one model per noise level ({settings})")  # fmt: skip
    first = metrics[str(exp.args.levels[0])]
    return exp.finish({"test_mse": first["test_mse"], "psnr": first["psnr"], "levels": metrics})


if __name__ == "__main__":
    run(dae_mnist.main)
