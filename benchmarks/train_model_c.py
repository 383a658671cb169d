"""Model C (and D, and P) training, minidl beside PyTorch doing identical work in the same run.

Both frameworks start from the same initial weights and see the same batches in the
same order with the same noise; the script reports seconds per epoch, test MSE and
PSNR after each epoch, and peak memory, with the ratios minidl / PyTorch.

    python benchmarks/train_model_c.py --epochs 3 [--model C|D|P] [--loss bce|mse] [--device cpu|cuda]
    python benchmarks/train_model_c.py --framework minidl     # one framework alone: its own peak memory
    python benchmarks/train_model_c.py --device cuda --capture # minidl's steps replayed from CUDA graphs
    python benchmarks/train_model_c.py --recipe lab --epochs 12   # the main job's Model C, both frameworks

--recipe speed (the default) is benchmarks/README.md's speed recipe: Models C and P on Gaussian 0.5
clipped, Model D on 0.3 unclipped, BCE unless --loss mse. --recipe lab is the main job's
(examples/conv_dae_mnist.py): input + 0.3·N(0, 1) unclipped, MSE, the output layer started at the
mean image (start_at_mean, copied into PyTorch with the other weights), Adam at the main job's
learning rate for the model (models.MAIN_JOB), trained on the training set less the main job's
validation split, for a fixed --epochs (the main job's Model C stops after 12); the last line gives
both final test MSEs and their ratio, whose target is at most 1.1.
"""

import argparse
import functools
import resource
import time

import numpy as np
import torch
from peer import float32_peer

import minidl as md
from minidl.capture import CapturedStep
from minidl.data import batches, load_mnist
from minidl.experiments import corruptions
from minidl.experiments.models import MAIN_JOB, ModelC, ModelD, ModelP, start_at_mean
from minidl.experiments.training import train_on_batch
from minidl.nn import functional as F


def torch_model(name: str) -> torch.nn.Module:
    T = torch.nn
    if name == "C":
        return T.Sequential(
            T.Conv2d(1, 16, 3, 2, 1), T.ReLU(), T.Conv2d(16, 32, 3, 2, 1), T.ReLU(),
            T.Conv2d(32, 64, 3, 1, 1), T.ReLU(),
            T.ConvTranspose2d(64, 32, 3, 1, 1), T.ReLU(), T.ConvTranspose2d(32, 16, 3, 2, 1, 1), T.ReLU(),
            T.ConvTranspose2d(16, 1, 3, 2, 1, 1),
        )  # fmt: skip
    if name == "P":
        return T.Sequential(
            T.Conv2d(1, 16, 3, 1, 1), T.ReLU(), T.MaxPool2d(2), T.Conv2d(16, 8, 3, 1, 1), T.ReLU(), T.MaxPool2d(2),
            T.Conv2d(8, 8, 3, 1, 1), T.ReLU(), T.Upsample(scale_factor=2), T.Conv2d(8, 16, 3, 1, 1), T.ReLU(),
            T.Upsample(scale_factor=2), T.Conv2d(16, 1, 3, 1, 1),
        )  # fmt: skip
    return T.Sequential(
        T.Flatten(), T.Linear(784, 256), T.Sigmoid(), T.Dropout(0.5), T.Linear(256, 256), T.Sigmoid(), T.Dropout(0.5),
        T.Linear(256, 784), T.Sigmoid(), T.Unflatten(1, (1, 28, 28)),
    )  # fmt: skip


LAB_TARGET = 1.1  # the main job's Model C: minidl's final test MSE at most this times PyTorch's


def copy_weights(ours: md.nn.Module, theirs: torch.nn.Module) -> None:
    ours_params = list(ours.parameters())
    theirs_params = list(theirs.parameters())
    assert [p.shape for p in ours_params] == [tuple(p.shape) for p in theirs_params]
    with torch.no_grad():
        for a, b in zip(ours_params, theirs_params):
            b.copy_(torch.from_numpy(a.numpy()))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--model", choices=["C", "D", "P"], default="C")
    p.add_argument("--recipe", choices=["speed", "lab"], default="speed",
                   help="speed: benchmarks/README.md's; lab: the main job's (default speed)")  # fmt: skip
    p.add_argument("--loss", choices=["bce", "mse"], default=None, help="default: bce (speed), mse (lab)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=None, help="train on the first LIMIT images")
    p.add_argument("--test-limit", type=int, default=None, help="score on the first TEST_LIMIT test images")
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (match the machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--framework", choices=["both", "minidl", "torch"], default="both",
                   help="run one framework alone to read its own peak memory")  # fmt: skip
    p.add_argument("--capture", action="store_true", help="minidl replays each step from a CUDA graph (cuda only)")
    args = p.parse_args()
    if args.capture and args.device != "cuda":
        p.error("--capture records CUDA graphs: it needs --device cuda")
    lab = args.recipe == "lab"
    args.loss = args.loss or ("mse" if lab else "bce")
    run_ours, run_theirs = args.framework in ("both", "minidl"), args.framework in ("both", "torch")
    torch.set_num_threads(args.threads)
    md.manual_seed(args.seed)
    mnist = load_mnist()
    if lab:
        mnist.hold_out_validation()  # the main job trains on the rest
    x_train = mnist.x_train[: args.limit]
    spec = "gaussian:0.5" if args.model in ("C", "P") and not lab else "gaussian:0.3:noclip"
    noise = corruptions.corruption(spec)
    x_test = mnist.x_test[: args.test_limit]
    x_test_noisy = noise(x_test, np.random.default_rng(10_000))

    ours = {"C": ModelC, "D": ModelD, "P": ModelP}[args.model](device=args.device)
    recipe = MAIN_JOB.get(f"model_{args.model.lower()}") if lab else None
    if lab and recipe is None:
        p.error("--recipe lab is the main job's: Model C or D")
    if recipe:
        start_at_mean(recipe.output_layer(ours), x_train)
    lr = recipe.lr if recipe else 1e-3
    theirs = torch_model(args.model).to("cuda" if args.device == "cuda" and run_theirs else "cpu")
    copy_weights(ours, theirs)
    opt_ours = md.optim.Adam(ours.parameters(), lr=lr)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=lr)
    tdev = next(theirs.parameters()).device
    logits = args.model in ("C", "P")  # the conv models end in logits, the sigmoid fused into the loss

    def loss_ours(out, x):
        if not logits:
            return F.mse_loss(out, x)
        return F.binary_cross_entropy_with_logits(out, x) if args.loss == "bce" else F.sigmoid_mse_loss(out, x)

    def loss_theirs(out, x):
        T = torch.nn.functional
        if not logits:
            return T.mse_loss(out, x)
        return T.binary_cross_entropy_with_logits(out, x) if args.loss == "bce" else T.mse_loss(torch.sigmoid(out), x)

    def test_mse_ours():
        ours.eval()
        with md.no_grad():
            outs = [
                (F.sigmoid(ours(x)) if logits else ours(x)).numpy()
                for (x,) in batches(x_test_noisy, batch_size=1000, shuffle=False, device=args.device)
            ]
        ours.train()
        return float(((np.concatenate(outs) - x_test) ** 2).mean())

    def test_mse_theirs():
        theirs.eval()
        with torch.no_grad():
            out = theirs(torch.from_numpy(x_test_noisy).to(tdev))
            out = torch.sigmoid(out) if logits else out
        theirs.train()
        return float(((out.cpu().numpy() - x_test) ** 2).mean())

    train_ours = functools.partial(train_on_batch, lambda noisy, clean: loss_ours(ours(noisy), clean), opt_ours)
    if args.capture:
        train_ours = CapturedStep(train_ours, opt_ours)

    loss_name = args.loss if logits else "mse"
    peer = f", {float32_peer(torch)}" if args.device == "cuda" and run_theirs else ""
    print(f"Model {args.model}, recipe {args.recipe}: loss {loss_name}, noise {spec}"
          f"{', output layer at the mean image' if lab else ''}, Adam {lr:g}, device {args.device}"
          f"{', minidl captured' if args.capture else ''}, {len(x_train)} images, batch 128{peer}")  # fmt: skip
    print("epoch  minidl s  torch s  ratio  minidl test MSE  torch test MSE  minidl PSNR  torch PSNR")
    for epoch in range(args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(len(x_train))
        noisy_batches = [
            (x_train[order[i : i + 128]], noise(x_train[order[i : i + 128]], rng)) for i in range(0, len(x_train), 128)
        ]
        t_ours = t_theirs = a = b = float("nan")
        if run_ours:
            md.manual_seed(epoch)
            start = time.perf_counter()
            for clean, noisy in noisy_batches:
                loss = train_ours(md.tensor(noisy, device=args.device), md.tensor(clean, device=args.device))
            loss.item()
            t_ours, a = time.perf_counter() - start, test_mse_ours()
        if run_theirs:
            torch.manual_seed(epoch)
            start = time.perf_counter()
            for clean, noisy in noisy_batches:
                loss = loss_theirs(theirs(torch.from_numpy(noisy).to(tdev)), torch.from_numpy(clean).to(tdev))
                opt_theirs.zero_grad()
                loss.backward()
                opt_theirs.step()
            loss.item()
            t_theirs, b = time.perf_counter() - start, test_mse_theirs()
        print(
            f"{epoch + 1:5d}  {t_ours:8.2f}  {t_theirs:7.2f}  {t_ours / t_theirs:5.2f}  {a:15.5f}  {b:14.5f}  "
            f"{10 * np.log10(1 / a):11.2f}  {10 * np.log10(1 / b):10.2f}"
        )
    if run_ours and run_theirs and args.epochs:
        verdict = f" (the lab's target: at most {LAB_TARGET})" if lab else ""
        print(f"final test MSE after {args.epochs} epochs: minidl {a:.5f}, PyTorch {b:.5f}, "
              f"minidl / PyTorch {a / b:.3f}{verdict}")  # fmt: skip
    print(f"peak host RSS of this process ({args.framework}): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
