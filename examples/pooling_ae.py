"""The conv AE of the lectures, with pooling (Model P), beside the lab's strided one (Model C).

Model P encodes by conv + ReLU + 2x2 max-pool twice (28 -> 14 -> 7, a code of 8 x 7 x 7 = 392
units) and decodes by conv + ReLU + nearest 2x upsampling; Model C encodes by stride-2
convolutions (a code of 64 x 7 x 7) and decodes by transposed convolutions. Both learn to
remove Gaussian noise (sigma 0.5, clipped) with sigmoid + BCE, as the main job trains Model C,
and are scored on the noisy test set; the figures show their reconstructions and Model P's
code, channel by channel.

    python examples/pooling_ae.py                    # about 3 minutes on 2 CPU cores (3 epochs)
    python examples/pooling_ae.py --epochs 10 --sigma 0.3
"""

import minidl as md
from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example, psnr
from minidl.experiments.models import ModelC, ModelP
from minidl.experiments.options import non_negative_float
from minidl.nn import functional as F

import numpy as np

SHOW = 10  # digits in the reconstruction figure
CODES = 4  # digits whose code maps are drawn
TEST_SEED = 10_000  # the test noise's fixed stream


def options(parser):
    parser.add_argument(
        "--sigma", type=non_negative_float, default=0.5, help="Gaussian noise of training and test (default 0.5)"
    )


@example(__doc__, epochs=3, options=options)
def pooling_ae(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption(f"gaussian:{args.sigma}")
    noisy_test = noise(mnist.x_test, exp.rng(TEST_SEED))

    def denoise(model):
        return exp.evaluate(lambda x: F.sigmoid(model(x)), noisy_test)

    def test_mse(model):
        return float(((denoise(model) - mnist.x_test) ** 2).mean())

    models = {"Model C (strided conv)": ("model_c", ModelC(device=exp.device)),
              "Model P (max-pool, upsample)": ("model_p", ModelP(device=exp.device))}  # fmt: skip
    rows, curves, outputs, metrics = [], {}, {"clean": mnist.x_test[:SHOW], "noisy": noisy_test[:SHOW]}, {}
    for name, (tag, model) in models.items():

        def step(x, rng, model=model):
            return F.binary_cross_entropy_with_logits(model(noise(x, rng)), x)

        losses, scores = exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train],
                                 evaluate=lambda model=model: test_mse(model))  # fmt: skip
        out = denoise(model)
        mse = float(((out - mnist.x_test) ** 2).mean())
        code = exp.evaluate(model.encode, mnist.x_test[:1])
        parameters = sum(p.numel() for p in model.parameters())
        rows.append((name, parameters, code[0].size, mse, psnr(mse), exp.seconds_per_epoch.get(tag, 0)))
        curves[f"{name.split(' (')[0]} train loss (BCE)"] = losses
        curves[f"{name.split(' (')[0]} test MSE"] = scores
        outputs[name.split(" (")[0]] = out[:SHOW]
        metrics[tag] = {"test_mse": mse, "psnr": psnr(mse), "parameters": parameters, "code_size": int(code[0].size),
                        "test_mse_per_epoch": scores}  # fmt: skip
    noisy_mse = float(((noisy_test - mnist.x_test) ** 2).mean())
    exp.table(["model", "parameters", "code units", f"test MSE (noisy {noisy_mse:.4g})", "PSNR dB", "s/epoch"], rows)
    title = f"test digits with Gaussian noise {args.sigma}, denoised after {args.epochs} epochs"
    figures.image_rows(outputs, exp.figure("pooling_ae.png"), title=title)
    figures.curves(curves, exp.figure("loss_curves.png"), "epoch", "loss / MSE", logy=True,
               title="training loss and noisy-test MSE per epoch")  # fmt: skip
    model_p = models["Model P (max-pool, upsample)"][1]
    codes = exp.evaluate(model_p.encode, mnist.x_test[:CODES])  # (CODES, 8, 7, 7), after ReLU: ≥ 0
    scaled = codes / np.maximum(codes.max(axis=(2, 3), keepdims=True), 1e-12)  # each map to [0, 1]
    scaled = scaled.repeat(4, axis=2).repeat(4, axis=3)  # 7 x 7 drawn as blocks beside the 28 x 28 input
    maps = {f"digit {mnist.y_test[k]}": np.concatenate([mnist.x_test[k : k + 1], scaled[k][:, None]]) for k in
            range(CODES)}  # fmt: skip
    figures.image_rows(maps, exp.figure("model_p_code.png"), column_titles=["input", *[f"ch {c}" for c in range(8)]],
                   title="Model P's code: 8 channels of 7 x 7 (each scaled to its own maximum)")  # fmt: skip
    return exp.finish({"test_mse": metrics["model_p"]["test_mse"], "noisy_mse": noisy_mse, "models": metrics})


if __name__ == "__main__":
    run(pooling_ae.main)
