"""A colourising autoencoder: grey 32x32 images in, RGB out (Atienza's colourisation AE).

With CIFAR-10 (`--data cifar-10-python.tar.gz`, the archive its authors publish; it cannot
be fetched here), it trains on the 50,000 training images and is scored on the 10,000 test
images, as the lecture runs it. Without it, the colour data are the two photographs that
matplotlib ships in its package (matplotlib is already a dependency): random 32x32 crops
(with flips) of one photograph (grace_hopper.jpg) train the model, and crops of the other
(Minduka_Present_Blue_Pack.png), never seen in training, test it. The model is a small conv
encoder / transposed-conv decoder with sigmoid + BCE against the true colours; the baseline
is the grey image copied to the three channels. Test MSE and PSNR of both are reported.

    python examples/colorization.py                   # about a minute on 2 CPU cores
    python examples/colorization.py --data ~/Downloads/cifar-10-python.tar.gz --epochs 10
"""

import numpy as np

import minidl as md
from minidl import data, viz
from minidl.cli import run
from minidl.experiment import Experiment, example, positive_int, psnr
from minidl.nn import Conv2d, ConvTranspose2d, ReLU, Sequential
from minidl.nn import functional as F

PATCH, SHOW = 32, 8
TRAIN_PHOTO, TEST_PHOTO = data.PHOTOGRAPHS
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 grey


def colour_data(exp: Experiment) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and test RGB images (N, 3, 32, 32) and where they come from."""
    if exp.args.data is not None:
        cifar = data.load_cifar10(exp.args.data)
        train, test = cifar.x_train[: exp.args.limit], cifar.x_test[: exp.args.test_limit]
        return train, test, f"CIFAR-10 ({len(train)} training, {len(test)} test images)"
    train = data.random_crops(data.photograph(TRAIN_PHOTO), exp.args.limit or exp.args.patches, PATCH, exp.rng(1))
    test = data.random_crops(data.photograph(TEST_PHOTO), exp.args.test_limit or 2000, PATCH, exp.rng(2))
    return train, test, f"crops of {TRAIN_PHOTO} (training) and of {TEST_PHOTO} (test, never seen)"


def grey(rgb: np.ndarray) -> np.ndarray:
    return np.einsum("c,nchw->nhw", LUMA, rgb)[:, None].astype(np.float32)


def options(parser):
    parser.add_argument("--patches", type=positive_int, default=20_000,
                        help="training crops of the photograph, without --data (default 20,000)")  # fmt: skip


@example(__doc__, epochs=4, options=options)
def colorization(exp: Experiment) -> dict:
    train, test, source = colour_data(exp)
    model = Sequential(
        Conv2d(1, 32, 3, 2, 1, device=exp.device), ReLU(),  # 32 -> 16
        Conv2d(32, 64, 3, 2, 1, device=exp.device), ReLU(),  # 16 -> 8
        Conv2d(64, 64, 3, 1, 1, device=exp.device), ReLU(),
        ConvTranspose2d(64, 32, 3, 2, 1, 1, device=exp.device), ReLU(),  # 8 -> 16
        ConvTranspose2d(32, 3, 3, 2, 1, 1, device=exp.device),  # 16 -> 32, RGB logits
    )  # fmt: skip

    def step(grey_patch, rgb, rng):
        return F.binary_cross_entropy_with_logits(model(grey_patch), rgb)

    history, _ = exp.fit("colorizer", model, md.optim.Adam(model.parameters(), lr=2e-3), step, [grey(train), train])
    out = exp.evaluate(lambda g: F.sigmoid(model(g)), grey(test))
    baseline = np.repeat(grey(test), 3, axis=1)
    mse, base_mse = float(((out - test) ** 2).mean()), float(((baseline - test) ** 2).mean())
    print(f"data: {source}")
    exp.table(["colours from", "test MSE (RGB)", "PSNR dB"],
              [("grey copied to R, G, B", base_mse, psnr(base_mse)), ("colourising AE", mse, psnr(mse))])  # fmt: skip
    viz.image_rows(
        {"grey input": baseline[:SHOW], "colourised": out[:SHOW], "true colour": test[:SHOW]},
        exp.figure("colorization.png"),
        title=f"test images: {source}",
    )
    viz.curves({"train BCE": history}, exp.figure("loss_curves.png"), "epoch", "loss")
    return exp.finish({"test_mse": mse, "psnr": psnr(mse), "grey_baseline_mse": base_mse,
                       "grey_baseline_psnr": psnr(base_mse), "data": source})  # fmt: skip


if __name__ == "__main__":
    run(colorization.main)
