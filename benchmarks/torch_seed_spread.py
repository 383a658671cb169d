"""How far Model C's test MSE moves with the seed alone, in plain PyTorch.

Each seed is a complete PyTorch run as a lab member would write it: torch.manual_seed,
Kaiming-normal (fan-in, ReLU gain) weights and zero biases, a fresh shuffle and fresh
noise from torch every epoch, the last short batch kept, sigmoid + BCE, Adam 1e-3.
The test images and their noise are the same as in train_model_c.py and the main job.

    python benchmarks/torch_seed_spread.py --epochs 1 --seeds 0 1 2 3 4 5 6 7
"""

import argparse

import numpy as np
import torch
from train_model_c import torch_model

from minidl.data import load_mnist
from minidl.experiments import corruptions


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (match the machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    mnist = load_mnist()
    x_train = torch.from_numpy(mnist.x_train)
    x_test_noisy = corruptions.corruption("gaussian:0.5")(mnist.x_test, np.random.default_rng(10_000))
    print("seed  test MSE after each epoch")
    for seed in args.seeds:
        torch.manual_seed(seed)
        net = torch_model("C")
        for layer in net:
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                torch.nn.init.zeros_(layer.bias)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        scores = []
        for _ in range(args.epochs):
            order = torch.randperm(len(x_train))
            for i in range(0, len(x_train), 128):
                clean = x_train[order[i : i + 128]]
                noisy = (clean + 0.5 * torch.randn_like(clean)).clamp(0, 1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(noisy), clean)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                out = torch.sigmoid(net(torch.from_numpy(x_test_noisy))).numpy()
            scores.append(float(((out - mnist.x_test) ** 2).mean()))
        print(f"{seed:4d}  " + "  ".join(f"{s:.5f}" for s in scores), flush=True)


if __name__ == "__main__":
    main()
