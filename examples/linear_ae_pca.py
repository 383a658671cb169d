"""Autoencoders small enough to check by hand or by linear algebra.

1. CS8004's worked example: X = [1, -1, 0], a 3-2-3 ReLU autoencoder with the slide's weights,
   computed with minidl and checked against the hand result z = [0, 2], x̂ = [0, 2, 0],
   squared error ‖X - x̂‖² = 10. The encoder is z = ReLU(Wᵀ X + b), W 3×2 (inputs × units).
   The slide writes the decoder the same way, "Wᵀ X + b", with W = [[2, 0], [0, 1], [0, 0]]
   (3×2) and b of 3 entries: Wᵀ is 2×3 and cannot take the 2-unit code, nor give 3 outputs.
   We read the decoder's W as printed outputs × inputs: x̂ = ReLU(W z + b), the one reading in
   which the shapes fit (and what PyTorch's Linear(2, 3).weight, 3×2, computes).
2. A linear autoencoder (784-k-784, no activation, MSE): the lecture says it "works same as
   PCA". Its decoder's columns should span the subspace of the first k principal components;
   the principal angles between the two subspaces (scipy.linalg.subspace_angles) say how far
   it is, and its test MSE is set beside PCA's (the least any rank-k linear map can reach).
3. An overcomplete linear autoencoder (code larger than the input): nothing stops it from
   copying, W_d W_e = I on the digits' span, so it reconstructs test digits far better than PCA
   while compressing nothing. The copy holds only where training reached: pixels black in every
   training image (the border) never move their random initial encoder weights, and directions
   the digits barely use are barely trained, so uniform noise comes out as amplified garbage
   (the table's last column).

Both networks train with Adam on a validation split of the training set until its MSE stops
improving (--patience epochs with under 1 % gain, at most --epochs; the overcomplete one at most
3 epochs: it is copying after one, and its MSE falls on toward 0 without stopping), keeping
the best epoch.

    python examples/linear_ae_pca.py                  # a few minutes on 2 CPU cores
    python examples/linear_ae_pca.py --code 32 --overcomplete 1024
"""

import minidl as md
from minidl.experiments import figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.latent import pca
from minidl.experiments.models import LinearAutoencoder
from minidl.experiments.options import non_negative_float, positive_int
from minidl.nn import functional as F

import numpy as np
from scipy.linalg import subspace_angles

SHOW = 10  # images per figure row
OVERCOMPLETE_EPOCHS = 3  # its copying shows within an epoch; its MSE then falls on toward 0 for many more
NOISE_SEED = 10_000  # the uniform-noise images' fixed stream

# CS8004's worked example: the input, the encoder's W (inputs × units), the decoder's W (outputs × units)
X = [1.0, -1.0, 0.0]
ENCODER_W = [[1.0, 2.0], [1.0, 0.0], [-1.0, 0.0]]
DECODER_W = [[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
HAND = {"code": [0.0, 2.0], "reconstruction": [0.0, 2.0, 0.0], "squared_error": 10.0}  # the slide, by hand


def options(parser):
    parser.add_argument("--code", type=positive_int, default=16, help="the linear AE's code size k (default 16)")
    parser.add_argument("--overcomplete", type=positive_int, default=1024,
                        help="the overcomplete AE's code size, above 784 (default 1024)")  # fmt: skip
    parser.add_argument("--lr", type=non_negative_float, default=5e-3, help="Adam's learning rate (default 5e-3)")
    parser.add_argument("--patience", type=positive_int, default=2,
                        help="stop when this many epochs improved validation MSE by under 1%% (default 2)")  # fmt: skip


def worked_example(device: str) -> dict:
    """The slide's 3-2-3 ReLU AE on X: the code z, the reconstruction x̂ and ‖X - x̂‖², with minidl."""
    x = md.tensor([X], device=device)  # (1, 3)
    z = F.relu(F.linear(x, md.tensor(ENCODER_W, device=device).T))  # Linear's weight is units × inputs: Wᵀ
    x_hat = F.relu(F.linear(z, md.tensor(DECODER_W, device=device)))  # x̂ = ReLU(W z): W is outputs × units
    error = ((x_hat - x) ** 2).sum()
    return {"code": z.numpy()[0].tolist(), "reconstruction": x_hat.numpy()[0].tolist(),
            "squared_error": float(error.item())}  # fmt: skip


@example(__doc__, epochs=20, options=options)
def linear_ae_pca(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    mnist.hold_out_validation()

    computed = worked_example(exp.device)
    exp.table(["worked example", "minidl", "by hand"], [(k, str(computed[k]), str(HAND[k])) for k in HAND])

    mean, basis = pca(mnist.x_train, args.code)

    def project(x):  # PCA's reconstruction: the mean plus the projection onto the k components
        return ((x.reshape(len(x), -1) - mean) @ basis @ basis.T + mean).reshape(x.shape)

    def mse(a, b):
        return float(((a.reshape(len(a), -1) - b.reshape(len(b), -1)) ** 2).mean())

    noise = exp.rng(NOISE_SEED).random(mnist.x_test.shape, dtype=np.float32)  # uniform noise images
    pca_label = f"PCA, {args.code} components"
    outputs = {"test digits": mnist.x_test[:SHOW], pca_label: project(mnist.x_test[:SHOW])}
    noise_outputs = {"uniform noise": noise[:SHOW], f"{pca_label}, of the noise": project(noise[:SHOW])}
    pca_mse, pca_noise = mse(project(mnist.x_test), mnist.x_test), mse(project(noise), noise)
    rows = [(pca_label, "-", "-", "-", pca_mse, pca_noise)]
    curves, models, trained = {}, {}, {}
    networks = {"linear": (args.code, f"linear AE, code {args.code}", args.epochs),
                "overcomplete": (args.overcomplete, f"overcomplete linear AE, code {args.overcomplete}",
                                 min(args.epochs, OVERCOMPLETE_EPOCHS))}  # fmt: skip
    for tag, (code, label, epochs) in networks.items():
        model = trained[tag] = LinearAutoencoder(784, code, device=exp.device)

        def step(x, rng, model=model):
            return F.mse_loss(model(x), x)

        def validate(model=model):
            return mse(exp.evaluate(model, mnist.x_val), mnist.x_val)

        _, scores = exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=args.lr), step, [mnist.x_train],
                            epochs, evaluate=validate, patience=args.patience)  # fmt: skip
        fit = exp.fits[tag]
        test_mse, noise_mse = (
            mse(exp.evaluate(model, mnist.x_test), mnist.x_test),
            mse(exp.evaluate(model, noise), noise),
        )
        outputs[label] = exp.evaluate(model, mnist.x_test[:SHOW])
        noise_outputs[f"{label}, of the noise"] = exp.evaluate(model, noise[:SHOW])
        curves[f"{label}"] = scores
        rows.append((label, fit["epochs"], fit["best_epoch"], "yes" if fit["converged"] else "NO", test_mse, noise_mse))
        models[tag] = {"code_size": code, "loss": "mse", "train_corruption": "none", "test_mse": test_mse,
                       "noise_mse": noise_mse, "val_mse_per_epoch": scores, **fit}  # fmt: skip
    columns = trained["linear"].decoder[0].weight.numpy().astype(np.float64)  # (784, k): spans the AE's outputs
    angles = np.sort(np.degrees(subspace_angles(columns, basis)))
    models["linear"]["principal_angles_deg"] = angles.tolist()
    exp.table(["model", "epochs", "best epoch", "converged", "test MSE", "MSE on uniform noise"], rows)
    print(f"principal angles between the linear AE's decoder and PCA's {args.code} components: smallest "
          f"{angles[0]:.2f}°, median {np.median(angles):.2f}°, largest {angles[-1]:.2f}°")  # fmt: skip

    settings = f"MSE, Adam lr {args.lr:g}, best of at most {args.epochs} epochs"
    figures.image_rows(outputs | noise_outputs, exp.figure("reconstructions.png"),
                   title=f"test digits and uniform noise through PCA and linear AEs ({settings})")  # fmt: skip
    figures.curves({f"linear AE (code {args.code}) vs PCA": angles}, exp.figure("principal_angles.png"),
               "principal angle, smallest first", "degrees", x=np.arange(1, len(angles) + 1),
               title=f"the linear AE's decoder subspace against PCA's, k {args.code} ({settings})")  # fmt: skip
    longest = max(len(s) for s in curves.values())
    curves[f"{pca_label} (the least a rank-{args.code} map reaches)"] = [
        mse(project(mnist.x_val), mnist.x_val)
    ] * longest
    figures.curves(curves, exp.figure("loss_curves.png"), "epoch", "validation MSE", logy=True,
               title=f"validation MSE per epoch (clean input, {settings}, patience {args.patience})")  # fmt: skip
    return exp.finish({"worked_example": computed | {"by_hand": HAND}, "pca_test_mse": pca_mse,
                       "pca_noise_mse": pca_noise, "models": models})  # fmt: skip


if __name__ == "__main__":
    run(linear_ae_pca.main)
