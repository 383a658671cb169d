"""A colourising autoencoder: grey 32x32 patches in, RGB patches out.

Colour data: CIFAR-10 cannot be fetched offline, so the images are the two colour
photographs that matplotlib ships in its package (grace_hopper.jpg and
Minduka_Present_Blue_Pack.png, from matplotlib's sample_data): matplotlib is already a
dependency, so the example needs nothing else. Random 32x32 crops (with flips) of the
left 80% of each image train the model; crops of the right 20% (at least 40 pixels)
test it, so the test patches were never seen. The model is a small conv encoder / transposed-conv decoder
with sigmoid + BCE against the true colours; the baseline is the grey patch itself.

    python examples/colorization.py                   # about a minute on 2 CPU cores
"""

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import image as mpimg

import minidl as md
from minidl import viz
from minidl.cli import run
from minidl.experiment import Experiment, positive_int
from minidl.nn import Conv2d, ConvTranspose2d, ReLU, Sequential
from minidl.nn import functional as F

PATCH, SHOW = 32, 8
IMAGES = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 grey


def load_images() -> list[np.ndarray]:
    """The sample photographs as float32 (3, H, W) in [0, 1]."""
    folder = Path(matplotlib.get_data_path()) / "sample_data"
    images = []
    for name in IMAGES:
        img = mpimg.imread(folder / name)
        img = img.astype(np.float32) / (255 if img.dtype == np.uint8 else 1)
        images.append(np.ascontiguousarray(img[:, :, :3].transpose(2, 0, 1)))
    return images


def crops(images, count: int, rng: np.random.Generator, test: bool) -> np.ndarray:
    """count random PATCH x PATCH crops: from the left 80% of each image, or the rest for test."""
    out = np.empty((count, 3, PATCH, PATCH), dtype=np.float32)
    for k in range(count):
        img = images[k % len(images)]
        _, h, w = img.shape
        split = min(int(0.8 * w), w - PATCH - 8)
        x0 = rng.integers(split, w - PATCH + 1) if test else rng.integers(0, split - PATCH + 1)
        y0 = rng.integers(0, h - PATCH + 1)
        patch = img[:, y0 : y0 + PATCH, x0 : x0 + PATCH]
        out[k] = patch[:, :, ::-1] if rng.random() < 0.5 else patch
    return out


def grey(rgb: np.ndarray) -> np.ndarray:
    return np.einsum("c,nchw->nhw", LUMA, rgb)[:, None].astype(np.float32)


def options(parser):
    parser.add_argument("--patches", type=positive_int, default=20_000, help="training crops (default 20,000)")


def main():
    exp = Experiment.from_command_line(__doc__, epochs=4, extra=options)
    images = load_images()
    count = exp.args.limit or exp.args.patches
    train = crops(images, count, exp.rng(1), test=False)
    test = crops(images, 2000, exp.rng(2), test=True)
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
    exp.table(["colours from", "test MSE (RGB)"], [("grey copied to R, G, B", base_mse), ("colourising AE", mse)])
    viz.image_rows(
        {"grey input": baseline[:SHOW], "colourised": out[:SHOW], "true colour": test[:SHOW]},
        exp.figure("colorization.png"),
        title="held-out patches of matplotlib's sample photographs",
    )
    viz.curves({"train BCE": history}, exp.figure("loss_curves.png"), "epoch", "loss")
    exp.finish({"test_mse": mse, "grey_baseline_mse": base_mse, "images": list(IMAGES)})


if __name__ == "__main__":
    run(main)
