"""The conv AE of the lectures, with pooling (Model P), beside the lab's strided one (Model C),
scored as the Keras slides score theirs.

Model P encodes by conv + ReLU + 2x2 max-pool twice (28 -> 14 -> 7, a code of 8 x 7 x 7 = 392
units) and decodes by conv + ReLU + nearest 2x upsampling; Model C encodes by stride-2
convolutions (a code of 64 x 7 x 7) and decodes by transposed convolutions. Three models train
with sigmoid + binary cross-entropy, as the Keras example does: Model P as a plain AE (clean in,
clean out), Model P and Model C as denoising AEs (Gaussian noise sigma 0.5, clipped: the slides'
noise factor 0.5). Each is scored on its own kind of test input by MSE and by pixel accuracy, the
Keras slides' "accuracy" (88 % for the plain conv AE, 92 % for the denoising one, after 50
epochs), in two readings: the rounded prediction equals the rounded target (a pixel counts when
both sit on the same side of 1/2), and Keras's own binary_accuracy, the rounded prediction equal to
the target itself (grey target pixels never count: on MNIST at most the 81.4 % of test pixels that
are exactly 0 or 1). The figures show the reconstructions and Model P's code, channel by channel.

    python examples/pooling_ae.py                    # three models, 3 epochs each (two took 272 s in 2026-12)
    python examples/pooling_ae.py --epochs 50        # the slides' budget
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
KERAS = {"model_p_plain": 0.88, "model_p": 0.92}  # the slides' accuracy of the plain and the denoising conv AE


def options(parser):
    parser.add_argument(
        "--sigma", type=non_negative_float, default=0.5, help="Gaussian noise of training and test (default 0.5)"
    )


def pixel_accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """The fraction of pixels where round(predicted) == round(target): both on the same side of 1/2."""
    return float((np.round(predicted) == np.round(target)).mean())


def keras_accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """Keras's binary_accuracy: the fraction of pixels where round(predicted) == target exactly."""
    return float((np.round(predicted) == target).mean())


@example(__doc__, epochs=3, options=options)
def pooling_ae(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption(f"gaussian:{args.sigma}")
    noisy_test = noise(mnist.x_test, exp.rng(TEST_SEED))
    spec = f"gaussian {args.sigma}, clipped"

    def denoise(model, x):
        return exp.evaluate(lambda t: F.sigmoid(model(t)), x)

    # tag: (name, model, whether it denoises)
    models = {"model_p_plain": ("Model P, plain AE", ModelP(device=exp.device), False),
              "model_p": ("Model P, denoising", ModelP(device=exp.device), True),
              "model_c": ("Model C, denoising (strided)", ModelC(device=exp.device), True)}  # fmt: skip
    rows, curves, metrics = [], {}, {}
    outputs = {"clean": mnist.x_test[:SHOW], "noisy": noisy_test[:SHOW]}
    for tag, (name, model, noisy) in models.items():
        inputs = noisy_test if noisy else mnist.x_test

        def step(x, rng, model=model, noisy=noisy):
            return F.binary_cross_entropy_with_logits(model(noise(x, rng) if noisy else x), x)

        def test_mse(model=model, inputs=inputs):
            return float(((denoise(model, inputs) - mnist.x_test) ** 2).mean())

        losses, scores = exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train],
                                 evaluate=test_mse)  # fmt: skip
        out = denoise(model, inputs)
        mse = float(((out - mnist.x_test) ** 2).mean())
        accuracy, exact = pixel_accuracy(out, mnist.x_test), keras_accuracy(out, mnist.x_test)
        code = exp.evaluate(model.encode, mnist.x_test[:1])
        parameters = sum(p.numel() for p in model.parameters())
        keras = KERAS.get(tag)
        rows.append((name, spec if noisy else "clean", parameters, code[0].size, mse, psnr(mse), accuracy, exact,
                     f"{keras:.0%}" if keras else "", exp.seconds_per_epoch.get(tag, 0)))  # fmt: skip
        short = name.replace(" (strided)", "")
        curves[f"{short}: train loss (BCE)"] = losses
        curves[f"{short}: test MSE"] = scores
        outputs[short] = out[:SHOW]
        metrics[tag] = {"test_mse": mse, "psnr": psnr(mse), "pixel_accuracy": accuracy, "keras_accuracy": exact,
                        "keras_slides_accuracy": keras, "loss": "bce", "train_corruption": spec if noisy else "none",
                        "epochs": len(losses), "parameters": parameters, "code_size": int(code[0].size),
                        "test_mse_per_epoch": scores}  # fmt: skip
    noisy_mse = float(((noisy_test - mnist.x_test) ** 2).mean())
    ceiling = float(np.isin(mnist.x_test, (0.0, 1.0)).mean())
    print(f"pixel accuracy: round(prediction) == round(target); Keras's: round(prediction) == target, at most "
          f"{ceiling:.1%} here (the test pixels that are exactly 0 or 1); sigmoid + BCE, {args.epochs} epochs "
          f"(the slides: 50); noisy input MSE {noisy_mse:.4g}")  # fmt: skip
    exp.table(["model", "test input", "parameters", "code units", "test MSE", "PSNR dB", "pixel accuracy",
               "Keras accuracy", "Keras slides", "s/epoch"], rows)  # fmt: skip
    title = f"test digits: clean, with {spec}, and each model's output (sigmoid + BCE, {args.epochs} epochs)"
    figures.image_rows(outputs, exp.figure("pooling_ae.png"), title=title)
    figures.curves(curves, exp.figure("loss_curves.png"), "epoch", "loss / MSE", logy=True,
               title=f"training loss (BCE) and test MSE per epoch; denoising models on {spec}")  # fmt: skip
    model_p = models["model_p"][1]
    codes = exp.evaluate(model_p.encode, mnist.x_test[:CODES])  # (CODES, 8, 7, 7), after ReLU: ≥ 0
    scaled = codes / np.maximum(codes.max(axis=(2, 3), keepdims=True), 1e-12)  # each map to [0, 1]
    scaled = scaled.repeat(4, axis=2).repeat(4, axis=3)  # 7 x 7 drawn as blocks beside the 28 x 28 input
    maps = {f"digit {mnist.y_test[k]}": np.concatenate([mnist.x_test[k : k + 1], scaled[k][:, None]]) for k in
            range(CODES)}  # fmt: skip
    figures.image_rows(maps, exp.figure("model_p_code.png"), column_titles=["input", *[f"ch {c}" for c in range(8)]],
                   title="the denoising Model P's code: 8 channels of 7 x 7, each scaled to its maximum")  # fmt: skip
    return exp.finish({"test_mse": metrics["model_p"]["test_mse"], "noisy_mse": noisy_mse,
                       "keras_accuracy_ceiling": ceiling, "models": metrics})  # fmt: skip


if __name__ == "__main__":
    run(pooling_ae.main)
