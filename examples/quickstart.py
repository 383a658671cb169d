"""A two-minute tour of minidl: fit a small autoencoder to synthetic 8×8 "bars" images.

python examples/quickstart.py [--steps 300] [--device cpu|cuda|emu]
"""

import argparse

import minidl as md
from minidl import nn
from minidl.experiments import run
from minidl.experiments.options import non_negative_int, positive_int
from minidl.nn import functional as F

import numpy as np


def bars(n: int, rng: np.random.Generator) -> np.ndarray:
    """n images (n, 1, 8, 8), each with one random horizontal and one vertical bar."""
    images = np.zeros((n, 1, 8, 8), dtype=np.float32)
    images[np.arange(n), 0, rng.integers(0, 8, n), :] = 1
    images[np.arange(n), 0, :, rng.integers(0, 8, n)] = 1
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=positive_int, default=300, help="training steps (default 300)")
    parser.add_argument(
        "--device", choices=md.backend.DEVICES, default=None, help="default: $MINIDL_DEVICE, else cuda if present"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0)
    args = parser.parse_args()
    md.manual_seed(args.seed)
    try:
        device = md.resolve_device(args.device)
    except (md.backend.DeviceError, md.backend.DeviceUnavailable) as e:
        parser.error(str(e))
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1),
        nn.ReLU(),  # 8 -> 4
        nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),  # 4 -> 8
    ).to(device)
    opt = md.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(args.seed)
    for step in range(1, args.steps + 1):
        x = md.tensor(bars(64, rng), device=device)
        loss = F.binary_cross_entropy_with_logits(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    with md.no_grad():
        x = md.tensor(bars(256, rng), device=device)
        mse = F.mse_loss(F.sigmoid(model(x)), x).item()
    print(f"reconstruction MSE on new images: {mse:.4f}")


if __name__ == "__main__":
    run(main)
