"""A colourising autoencoder: grey 32x32 images in, colour out (Atienza's colourisation AE).

The model predicts colour in YUV (ITU-R BT.601): the grey image is Y, the luma, and the model
predicts only the two chroma channels U, V from it; R, G, B are then Y plus a fixed mix of U
and V. Zero chroma is exactly the grey image copied to R, G and B, the baseline, and the
model starts there (its last layer starts at zero), so what it learns is what colour adds.
It is a small conv encoder / transposed-conv decoder trained on MSE in RGB.

With CIFAR-10 (`--data cifar-10-python.tar.gz`, the archive its authors publish; it cannot
be fetched here), it trains on the 50,000 training images and is scored on the 10,000 test
images, as the lecture runs it. Without it, the colour data are the two photographs that
matplotlib ships (grace_hopper.jpg, Minduka_Present_Blue_Pack.png): random 32x32 crops (with
flips) of the left three quarters of each train the model, crops of the right quarter of each,
never seen in training, test it. (Trained on one photograph and tested on the other, it
cannot beat grey: their colours differ, Grace Hopper's reds against the pack's blues; measured
2026-12-07, 2 epochs on 5,000 crops: 0.091 RGB MSE against grey's 0.065.) Test MSE and PSNR of
the model and of the grey baseline are reported.

    python examples/colorization.py                   # about a minute on 2 CPU cores
    python examples/colorization.py --data ~/Downloads/cifar-10-python.tar.gz --epochs 10
"""

import minidl as md
from minidl import data
from minidl.experiments import figures, run
from minidl.experiments.experiment import Experiment, example, psnr
from minidl.experiments.options import positive_int
from minidl.nn import Conv2d, ConvTranspose2d, ReLU, Sequential, init
from minidl.nn import functional as F

import numpy as np

PATCH, SHOW = 32, 8
# ITU-R BT.601 YUV: Y (luma, the grey image) and two chroma channels U, V; rows map R, G, B to Y, U, V
YUV = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
FROM_YUV = np.linalg.inv(YUV)  # columns: what Y, U and V each add to R, G, B (Y's column is all ones)


def colour_data(exp: Experiment) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and test RGB images (N, 3, 32, 32) and where they come from."""
    if exp.args.data is not None:
        cifar = data.load_cifar10(exp.args.data)
        train, test = cifar.x_train[: exp.args.limit], cifar.x_test[: exp.args.test_limit]
        return train, test, f"CIFAR-10 ({len(train)} training, {len(test)} test images)"
    counts = (exp.args.limit or exp.args.patches, exp.args.test_limit or 2000)
    train, test = [], []
    for k, photo in enumerate(data.PHOTOGRAPHS):  # half the crops from each photograph
        image = data.photograph(photo)
        edge = image.shape[2] - image.shape[2] // 4  # the right quarter is the test region
        train.append(data.random_crops(image[:, :, :edge], (counts[0] + 1 - k) // 2, PATCH, exp.rng(1, k)))
        test.append(data.random_crops(image[:, :, edge:], (counts[1] + 1 - k) // 2, PATCH, exp.rng(2, k)))
    return (
        np.concatenate(train),
        np.concatenate(test),
        f"crops of {' and '.join(data.PHOTOGRAPHS)}: left 3/4 train, right 1/4 test",
    )


def yuv(rgb: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) RGB -> (N, 3, H, W) Y, U, V."""
    return np.einsum("dc,nchw->ndhw", YUV, rgb).astype(np.float32)


def rgb(luma, chroma):
    """Y (N, 1, H, W) and U, V (N, 2, H, W), arrays or tensors -> (N, 3, H, W) RGB; zero chroma is grey."""
    mix = FROM_YUV[:, 1:, None, None].astype(np.float32)  # (3, 2, 1, 1): a 1x1 convolution
    if isinstance(chroma, np.ndarray):
        return luma + np.einsum("dc,nchw->ndhw", mix[:, :, 0, 0], chroma)
    return luma + F.conv2d(chroma, md.tensor(mix, device=chroma.device))


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
        ConvTranspose2d(32, 2, 3, 2, 1, 1, device=exp.device),  # 16 -> 32: U, V
    )  # fmt: skip
    init.zeros_(model[-1].weight)  # the untrained model predicts zero chroma: the grey baseline
    init.zeros_(model[-1].bias)
    train_luma, test_luma = yuv(train)[:, :1], yuv(test)[:, :1]

    def step(luma, colour, rng):
        return F.mse_loss(rgb(luma, model(luma)), colour)

    history, _ = exp.fit("colorizer", model, md.optim.Adam(model.parameters(), lr=2e-3), step, [train_luma, train])
    out = np.clip(rgb(test_luma, exp.evaluate(model, test_luma)), 0, 1)
    baseline = np.repeat(test_luma, 3, axis=1)
    shown = np.linspace(0, len(test) - 1, SHOW).astype(int)  # spread over the test set: both photographs
    mse, base_mse = float(((out - test) ** 2).mean()), float(((baseline - test) ** 2).mean())
    print(f"data: {source}")
    exp.table(["colours from", "test MSE (RGB)", "PSNR dB"],
              [("grey copied to R, G, B (zero chroma)", base_mse, psnr(base_mse)),
               ("colourising AE (predicted chroma)", mse, psnr(mse))])  # fmt: skip
    figures.image_rows(
        {"grey input": baseline[shown], "colourised": out[shown], "true colour": test[shown]},
        exp.figure("colorization.png"),
        title=f"test images, colourised after {exp.args.epochs} epochs (U, V from Y, RGB MSE): {source}",
    )
    figures.curves({"train MSE (RGB)": history}, exp.figure("loss_curves.png"), "epoch", "loss",
               title=f"colourising AE: training MSE per epoch ({source})")  # fmt: skip
    return exp.finish({"test_mse": mse, "psnr": psnr(mse), "grey_baseline_mse": base_mse,
                       "grey_baseline_psnr": psnr(base_mse), "data": source})  # fmt: skip


if __name__ == "__main__":
    run(colorization.main)
