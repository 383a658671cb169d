"""The lab's main job: the convolutional denoising autoencoder (Model C) against the dense DAE
(Model D) on MNIST, on equal terms.

Both models learn to undo the same corruption (default: input + 0.3·N(0, 1), unclipped, as the
lab's first DAE) with the same loss (default MSE; --loss bce for both), each until its
validation MSE stops improving (a split of the training set; --patience epochs with under 1 %
gain, at most --epochs), keeping its best epoch; each with Adam at the learning rate that
converged soonest for it (models.MAIN_JOB: Model C 2e-3, Model D 3e-3; the table and --json say
which). Each output layer starts at the mean image
(models.start_at_mean), so MSE through the sigmoid does not sit on a plateau. Both are
then scored once on the test set under the training corruption, a second corruption neither
saw, and "normalization" read as each image standardised and clipped to [0, 1] (neither saw it
either; examples/normalization.py trains both models on each reading of the word).

    python examples/conv_dae_mnist.py                  # 3 min 26 s on 2 CPU cores (AMD EPYC, 2026-12-07)
    python examples/conv_dae_mnist.py --loss bce --noise gaussian:0.5
"""

from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example, mse, psnr
from minidl.experiments.models import MAIN_JOB
from minidl.experiments.options import corruption_spec, positive_int
from minidl.nn import functional as F

SHOW = 10  # digits in each figure row
VAL_SEED, TEST_SEED = 9_999, 10_000  # the validation and test corruptions' fixed streams

LOSSES = {  # (loss, logits) -> loss(output, clean): one loss, whether the sigmoid is fused into it or not
    ("mse", True): F.sigmoid_mse_loss, ("mse", False): F.mse_loss,
    ("bce", True): F.binary_cross_entropy_with_logits, ("bce", False): F.binary_cross_entropy,
}  # fmt: skip


def options(parser):
    parser.add_argument("--loss", choices=["mse", "bce"], default="mse", help="both models' loss (default mse)")
    parser.add_argument("--noise", type=corruption_spec, default="gaussian:0.3:noclip",
                        help="both models' training corruption, also a test one (default %(default)s)")  # fmt: skip
    parser.add_argument("--other", type=corruption_spec, default="salt_and_pepper:0.2",
                        help="a test corruption neither model saw (default %(default)s)")  # fmt: skip
    parser.add_argument("--patience", type=positive_int, default=2,
                        help="stop when this many epochs improved validation MSE by under 1%% (default 2)")  # fmt: skip


@example(__doc__, epochs=20, options=options)
def conv_dae_mnist(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    mnist.hold_out_validation()
    noise = corruptions.corruption(args.noise)
    tests = {args.noise.replace(":", " "): noise, args.other.replace(":", " "): corruptions.corruption(args.other),
             "normalization clipped": corruptions.corruption("normalization:clipped")}  # fmt: skip
    noisy_test = {name: fn(mnist.x_test, exp.rng(TEST_SEED, i)) for i, (name, fn) in enumerate(tests.items())}
    noisy_val = noise(mnist.x_val, exp.rng(VAL_SEED))
    first = next(iter(tests))

    def train(tag: str) -> dict:
        """One model trained to convergence; what it learnt, epoch by epoch."""
        recipe = MAIN_JOB[tag]
        label, logits = recipe.label, recipe.logits
        model, optimizer = recipe.start(mnist.x_train, exp.device)
        loss, strips = LOSSES[args.loss, logits], []

        def denoise(x):
            return F.sigmoid(model(x)) if logits else model(x)

        def step(x, rng):
            return loss(model(noise(x, rng)), x)

        def validate() -> float:  # and the same test digits after each epoch, for the figure only
            strips.append(exp.evaluate(denoise, noisy_test[first][:SHOW]))
            return mse(exp.evaluate(denoise, noisy_val), mnist.x_val)

        history, val = exp.fit(f"{tag}_{args.loss}", model, optimizer, step, [mnist.x_train], evaluate=validate,
                               patience=args.patience)  # fmt: skip
        fit = exp.fits[f"{tag}_{args.loss}"]
        if strips:  # epochs trained in this process (a resumed run draws those after it)
            done = len(history) - len(strips)
            figures.image_rows(
                {"noisy": noisy_test[first][:SHOW]} | {f"epoch {done + k + 1}": s for k, s in enumerate(strips)},
                exp.figure(f"epochs_{tag}.png"),
                title=f"{label}: test digits ({first}) after each epoch, {args.loss}; best epoch {fit['best_epoch']}",
            )  # fmt: skip
        return {"label": label, "denoise": denoise, "train_loss": history, "val_mse": val} | fit

    models = {tag: train(tag) for tag in MAIN_JOB}
    exp.table(
        ["model", "loss", "train corruption", "Adam lr", "epochs", "best", "converged", "val MSE", "s/epoch"],
        [(m["label"], args.loss, args.noise, MAIN_JOB[tag].lr, m["epochs"], m["best_epoch"],
          "yes" if m["converged"] else "NO", min(m["val_mse"]), exp.seconds_per_epoch.get(f"{tag}_{args.loss}", 0))
         for tag, m in models.items()],
    )  # fmt: skip
    rows, metrics = [], {}
    for name in tests:
        outs = {tag: exp.evaluate(m["denoise"], noisy_test[name]) for tag, m in models.items()}
        scores = {f"{tag}_mse": mse(out, mnist.x_test) for tag, out in outs.items()}
        metrics[name] = {"noisy_mse": mse(noisy_test[name], mnist.x_test)} | scores
        rows.append((name, metrics[name]["noisy_mse"], *scores.values(), *(psnr(v) for v in scores.values())))
        figures.image_rows(
            {"clean": mnist.x_test[:SHOW], "corrupted": noisy_test[name][:SHOW]}
            | {models[tag]["label"]: out[:SHOW] for tag, out in outs.items()},
            exp.figure(f"denoising_{name.split()[0]}.png"),
            title=f"test digits, {name}; both models trained on {args.noise} with {args.loss}",
        )  # fmt: skip
    exp.table(["test corruption", "noisy MSE", "Model C MSE", "Model D MSE", "C PSNR dB", "D PSNR dB"], rows)
    figures.curves(
        {f"{m['label'].split(' (')[0]} {kind}{'' if m['converged'] else ' (not converged)'}": m[key]
         for m in models.values() for kind, key in (("train loss", "train_loss"), ("validation MSE", "val_mse"))},
        exp.figure("loss_curves.png"), "epoch", f"{args.loss} / MSE", logy=True,
        title=f"training loss ({args.loss}) and validation MSE per epoch, both on {args.noise}",
    )  # fmt: skip
    mse_c = metrics[first]["model_c_mse"]
    return exp.finish({
        "test_mse": mse_c, "psnr": psnr(mse_c), "loss": args.loss, "corruptions": metrics,
        "models": {tag: {"loss": args.loss, "train_corruption": args.noise, "lr": MAIN_JOB[tag].lr,
                         "epochs": m["epochs"], "best_epoch": m["best_epoch"], "converged": m["converged"],
                         "val_mse_per_epoch": m["val_mse"], "train_loss_per_epoch": m["train_loss"]}
                   for tag, m in models.items()},
    })  # fmt: skip


if __name__ == "__main__":
    run(conv_dae_mnist.main)
