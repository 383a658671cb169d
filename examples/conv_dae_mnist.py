"""The lab's main job: the convolutional denoising autoencoder (Model C) on MNIST.

Model C learns to remove additive Gaussian noise (sigma 0.5, clipped); it is scored on
the test set corrupted with that noise, with a second corruption it never saw, and with
"normalization" (each image standardised and clipped to [0, 1], minidl.corruptions), and
compared with the dense DAE (Model D) trained for as many epochs. The default loss is
sigmoid + BCE; `--loss mse` trains with sigmoid + MSE, which can sit on a plateau for
an epoch or two (watch test MSE per epoch in loss_curves.png).

    python examples/conv_dae_mnist.py                 # about 2 minutes on 2 CPU cores (5 epochs)
    python examples/conv_dae_mnist.py --loss mse --epochs 5
"""

import minidl as md
from minidl import corruptions, viz
from minidl.autoencoders import ModelC, ModelD
from minidl.cli import run
from minidl.experiment import Experiment, corruption_spec, example, non_negative_float, psnr
from minidl.nn import functional as F

SHOW = 10  # digits in each figure row
TEST_SEED = 10_000  # the test corruption's fixed stream


def options(parser):
    parser.add_argument("--loss", choices=["bce", "mse"], default="bce", help="sigmoid + BCE (default) or + MSE")
    parser.add_argument(
        "--sigma", type=non_negative_float, default=0.5, help="Gaussian noise of training and test (default 0.5)"
    )
    parser.add_argument(
        "--other",
        type=corruption_spec,
        default="salt_and_pepper:0.2",
        help="second test corruption (default %(default)s)",
    )


@example(__doc__, epochs=5, options=options)
def conv_dae_mnist(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    train_noise = corruptions.corruption(f"gaussian:{args.sigma}")
    tests = {f"gaussian {args.sigma}": train_noise, args.other.replace(":", " "): corruptions.corruption(args.other),
             "normalization": corruptions.corruption("normalization")}  # fmt: skip
    noisy_test = {name: noise(mnist.x_test, exp.rng(TEST_SEED, i)) for i, (name, noise) in enumerate(tests.items())}

    def denoise_mse(model, name, logits):
        out = exp.evaluate(lambda x: F.sigmoid(model(x)) if logits else model(x), noisy_test[name])
        return float(((out - mnist.x_test) ** 2).mean()), out

    # Model C: conv encoder, transposed-conv decoder, sigmoid fused into the loss
    model_c = ModelC(device=exp.device)
    loss_fn = F.binary_cross_entropy_with_logits if args.loss == "bce" else F.sigmoid_mse_loss

    def step_c(x, rng):
        noisy = train_noise(x, rng)
        return loss_fn(model_c(noisy), x)

    first_test = next(iter(tests))
    losses_c, test_c = exp.fit(
        f"model_c_{args.loss}", model_c, md.optim.Adam(model_c.parameters(), lr=1e-3), step_c, [mnist.x_train],
        evaluate=lambda: denoise_mse(model_c, first_test, logits=True)[0],
    )  # fmt: skip

    # Model D: the dense DAE, Gaussian noise 0.3 (unclipped) in training, MSE, as long
    model_d = ModelD(device=exp.device)
    noise_d = corruptions.corruption("gaussian:0.3:noclip")

    def step_d(x, rng):
        return F.mse_loss(model_d(noise_d(x, rng)), x)

    losses_d, test_d = exp.fit(
        "model_d", model_d, md.optim.Adam(model_d.parameters(), lr=1e-3), step_d, [mnist.x_train],
        evaluate=lambda: denoise_mse(model_d, first_test, logits=False)[0],
    )  # fmt: skip

    rows, metrics = [], {}
    for name in tests:
        noisy_mse = float(((noisy_test[name] - mnist.x_test) ** 2).mean())
        mse_c, out_c = denoise_mse(model_c, name, logits=True)
        mse_d, out_d = denoise_mse(model_d, name, logits=False)
        rows += [
            (
                "Model C (conv)",
                name,
                noisy_mse,
                mse_c,
                psnr(mse_c),
                exp.seconds_per_epoch.get(f"model_c_{args.loss}", 0),
            ),
            ("Model D (dense)", name, noisy_mse, mse_d, psnr(mse_d), exp.seconds_per_epoch.get("model_d", 0)),
        ]
        metrics[name] = {"noisy_mse": noisy_mse, "model_c_mse": mse_c, "model_d_mse": mse_d}
        viz.image_rows(
            {"clean": mnist.x_test[:SHOW], "corrupted": noisy_test[name][:SHOW], "Model C": out_c[:SHOW],
             "Model D": out_d[:SHOW]},
            exp.figure(f"denoising_{name.split()[0]}.png"),
            title=f"test digits, {name}; Model C ({args.loss}) and Model D after {args.epochs} epochs",
        )  # fmt: skip
    exp.table(["model", "test corruption", "noisy MSE", "denoised MSE", "PSNR dB", "s/epoch"], rows)
    viz.curves(
        {f"Model C train loss ({args.loss})": losses_c, "Model C test MSE": test_c,
         "Model D train loss (mse)": losses_d, "Model D test MSE": test_d},
        exp.figure("loss_curves.png"), "epoch", "loss / MSE", logy=True,
        title=f"training loss and test MSE ({first_test}) per epoch",
    )  # fmt: skip
    mse_c = metrics[first_test]["model_c_mse"]
    return exp.finish({
        "test_mse": mse_c, "psnr": psnr(mse_c), "seconds_per_epoch": exp.seconds_per_epoch.get(f"model_c_{args.loss}"),
        "test_mse_per_epoch": test_c, "model_d_test_mse_per_epoch": test_d, "corruptions": metrics,
        "loss": args.loss,
    })  # fmt: skip


if __name__ == "__main__":
    run(conv_dae_mnist.main)
