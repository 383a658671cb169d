"""Encoder-decoder segmentation with skip connections (CS8004's application, scored by mIoU).

Each image is an MNIST digit (white strokes) pasted at a random place onto a 32x32 grey crop
of a photograph; the task is to mark the digit's pixels. The network is a small U-Net: a conv
encoder (32 -> 16 -> 8), a transposed-conv decoder (8 -> 16 -> 32) whose every stage sees
the encoder's feature map of its size, joined by `concat` (the skips); it is trained beside
the same network without the skips. 20,000 training images (or --limit); training backgrounds come from one photograph
(grace_hopper.jpg), test backgrounds from the other (Minduka_Present_Blue_Pack.png); the test
digits are MNIST's test set. Scored by the IoU of the digit and of the background, and their
mean (mIoU), beside the baseline that calls every pixel background (mIoU about 0.45).

    python examples/segmentation.py                  # about 3 minutes on 2 CPU cores
    python examples/segmentation.py --epochs 5 --limit 20000
"""

import minidl as md
from minidl import data, nn
from minidl.experiments import figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.nn import functional as F

import numpy as np

SIZE, SHOW = 32, 8
TRAIN = 20_000  # training images unless --limit says otherwise


class SegmentationNet(nn.Module):
    """(N, 1, 32, 32) images -> (N, 1, 32, 32) logits of "digit". With skips, each decoder stage
    concatenates the encoder's feature map of the same size to its input (a U-Net)."""

    def __init__(self, skips: bool, device: str | None = None):
        super().__init__()
        self.skips, wide = skips, 2 if skips else 1
        self.enc1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, device=device), nn.ReLU())  # 32
        self.enc2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1, device=device), nn.ReLU())  # 16
        self.enc3 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1, device=device), nn.ReLU())  # 8
        self.up2 = nn.Sequential(nn.ConvTranspose2d(32, 16, 3, 2, 1, 1, device=device), nn.ReLU())  # 8 -> 16
        self.dec2 = nn.Sequential(nn.Conv2d(16 * wide, 16, 3, padding=1, device=device), nn.ReLU())
        self.up1 = nn.Sequential(nn.ConvTranspose2d(16, 8, 3, 2, 1, 1, device=device), nn.ReLU())  # 16 -> 32
        self.dec1 = nn.Sequential(nn.Conv2d(8 * wide, 8, 3, padding=1, device=device), nn.ReLU())
        self.out = nn.Conv2d(8, 1, 1, device=device)

    def join(self, decoded: md.Tensor, encoded: md.Tensor) -> md.Tensor:
        return md.concat([decoded, encoded], 1) if self.skips else decoded

    def forward(self, x: md.Tensor) -> md.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d2 = self.dec2(self.join(self.up2(self.enc3(e2)), e2))
        d1 = self.dec1(self.join(self.up1(d2), e1))
        return self.out(d1)


def pasted(digits: np.ndarray, photo: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Digits (N, 1, 28, 28) pasted at random places onto grey 32x32 crops of a photograph:
    the images (N, 1, 32, 32) and the digits' masks (stroke intensity > 0.5), as float32."""
    grey = photo.mean(axis=0, keepdims=True)
    images = data.random_crops(grey, len(digits), SIZE, rng) * 0.8  # a little darker than the strokes
    masks = np.zeros_like(images)
    for k, digit in enumerate(digits):
        y, x = rng.integers(0, SIZE - 28 + 1, size=2)
        window = images[k, :, y : y + 28, x : x + 28]
        window[...] = window * (1 - digit) + digit  # white strokes over the texture
        masks[k, :, y : y + 28, x : x + 28] = digit > 0.5
    return images, masks


def iou(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Intersection over union of the digit (True) and of the background (False)."""
    scores = []
    for value in (True, False):
        p, t = predicted == value, truth == value
        scores.append(float((p & t).sum() / max((p | t).sum(), 1)))
    return scores[0], scores[1]


@example(__doc__, epochs=3)
def segmentation(exp: Experiment) -> dict:
    mnist = exp.data
    train_photo, test_photo = (data.photograph(name) for name in data.PHOTOGRAPHS)
    x_train, m_train = pasted(mnist.x_train[: exp.args.limit or TRAIN], train_photo, exp.rng(1))
    x_test, m_test = pasted(mnist.x_test, test_photo, exp.rng(2))
    truth = m_test > 0.5
    rows, figure, metrics = [], {"input": x_test[:SHOW], "truth": m_test[:SHOW]}, {}
    for tag, name, skips in (("unet", "with skips (U-Net)", True), ("plain", "without skips", False)):
        model = SegmentationNet(skips, device=exp.device)

        def step(x, mask, rng, model=model):
            return F.binary_cross_entropy_with_logits(model(x), mask)

        def miou(model=model):
            return float(np.mean(iou(exp.evaluate(model, x_test) > 0, truth)))

        _, per_epoch = exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=1e-3), step, [x_train, m_train],
                               evaluate=miou)  # fmt: skip
        predicted = exp.evaluate(model, x_test) > 0  # logit > 0: probability > 1/2
        digit, background = iou(predicted, truth)
        parameters = sum(p.numel() for p in model.parameters())
        rows.append((name, parameters, digit, background, (digit + background) / 2, exp.seconds_per_epoch.get(tag, 0)))
        metrics[tag] = {"iou_digit": digit, "iou_background": background, "miou": (digit + background) / 2,
                        "miou_per_epoch": per_epoch}  # fmt: skip
        figure[name] = predicted[:SHOW].astype(np.float32)
    digit, background = iou(np.zeros_like(truth), truth)  # the baseline: every pixel called background
    rows.append(("all background (baseline)", 0, digit, background, (digit + background) / 2, ""))
    exp.table(["network", "parameters", "IoU digit", "IoU background", "mIoU", "s/epoch"], rows)
    title = (f"test digits on an unseen texture ({data.PHOTOGRAPHS[1]}): the digit's pixels, true and predicted "
             f"(BCE, {exp.args.epochs} epochs)")  # fmt: skip
    figures.image_rows(figure, exp.figure("segmentation.png"), title=title)
    return exp.finish({"miou": metrics["unet"]["miou"], "plain_miou": metrics["plain"]["miou"],
                       "all_background_miou": (digit + background) / 2, "networks": metrics})  # fmt: skip


if __name__ == "__main__":
    run(segmentation.main)
