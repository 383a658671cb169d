"""Regularised autoencoders side by side, and how the code size shapes reconstruction.

Part 1 trains a 784-256-784 sigmoid AE five ways: plain, sparse with an L1 penalty on
the code, sparse with KL(rho || mean activation), contractive (the exact Frobenius norm of
the encoder's Jacobian, by its formula for one sigmoid layer), and denoising (Gaussian 0.3);
and two contractive AEs whose encoders have no such formula, a 784-256-256 sigmoid AE and
a sigmoid conv AE (784 code units, Adam at 1e-2), their penalty ‖∂h/∂x‖²_F by double
backward (Hutchinson's estimate, one random-sign draw per step). It reports reconstruction MSE, MSE
on noisy inputs, how sparse the code is, how many units saturate (mean activation above
0.99 on the test set: a contractive penalty is smallest where σ' = 0), and how contractive
each encoder is (‖J‖²_F on 200 test images, Hutchinson with 16 draws, for every model).
Part 2 is the LMU lecture's experiment: a DAE whose inputs get uniform noise added or
subtracted (U(-a, a), clipped; --uniform a), trained at code sizes 1568, 784, 256, 64, 32, 16,
8 (over- to under-complete; a ReLU code: a small sigmoid code sits on a plateau for many
epochs), shown as original / corrupted / denoised rows; then the 64-unit DAE (or the sweep's
size nearest 64) under rising noise (--levels): one DAE trained and tested at each level, beside
the sweep's DAE trained at --uniform and tested at every level.

    python examples/regularized_ae.py                   # a few minutes on 2 CPU cores
    python examples/regularized_ae.py --sizes 256 32 8 --epochs 1
"""

import minidl as md
from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.models import DenseAutoencoder, SigmoidConvAutoencoder
from minidl.experiments.options import non_negative_float, open_fraction, positive_int
from minidl.experiments.penalties import contractive_penalty, jacobian_penalty, kl_sparsity, l1_penalty
from minidl.nn import functional as F

import numpy as np

SHOW = 8
BUDGET = "every model: the same budget of {epochs} epochs (not trained to convergence: none is checked for it)"
SIZES = [1568, 784, 256, 64, 32, 16, 8]


def options(parser):
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=SIZES, help="code sizes of the sweep")
    parser.add_argument("--l1", type=non_negative_float, default=1e-4, help="weight of the L1 code penalty")
    parser.add_argument("--kl", type=non_negative_float, default=1e-2, help="weight of the KL sparsity penalty")
    parser.add_argument("--rho", type=open_fraction, default=0.05, help="target mean activation of the KL penalty")
    parser.add_argument(
        "--contractive", type=non_negative_float, default=1e-2, help="weight of the contractive penalty"
    )
    parser.add_argument("--uniform", type=non_negative_float, default=0.5,
                        help="amplitude a of the sweep's uniform noise U(-a, a) (default 0.5)")  # fmt: skip
    parser.add_argument("--levels", type=non_negative_float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9],
                        help="noise amplitudes a 64-unit DAE is trained and tested at")  # fmt: skip


@example(__doc__, epochs=2, options=options)
def regularized_ae(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption("gaussian:0.3")
    noisy_test = noise(mnist.x_test, exp.rng(10_000))

    def penalty(kind, model, x, code):
        if kind == "sparse L1":
            return args.l1 * l1_penalty(code)
        if kind == "sparse KL":
            return args.kl * kl_sparsity(code, args.rho)
        if kind == "contractive":
            first = model.linears()[0][0]
            return args.contractive * contractive_penalty(x, first.weight, first.bias)
        if kind.startswith("contractive, "):  # no formula: by double backward
            return args.contractive * jacobian_penalty(model.encode, x, samples=1)
        return 0.0

    models = {"contractive, 2 layers": lambda: DenseAutoencoder((784, 256, 256), device=exp.device),
              "contractive, conv": lambda: SigmoidConvAutoencoder(device=exp.device)}  # fmt: skip
    rates = {"contractive, conv": 1e-2}  # at 1e-3 the sigmoid conv AE learns next to nothing in 2 epochs
    rows, figure, activity, metrics = [], {"clean": mnist.x_test[:SHOW]}, {}, {}
    for kind in ["plain", "sparse L1", "sparse KL", "contractive", *models, "denoising"]:
        model = models.get(kind, lambda: DenseAutoencoder((784, 256), device=exp.device))()

        def step(x, rng, kind=kind, model=model):
            inp = noise(x, rng) if kind == "denoising" else x
            code = model.encode(inp)
            return F.mse_loss(model.decode(code), x) + penalty(kind, model, inp, code)

        name = kind.replace(", ", "_").replace(" ", "_")
        exp.fit(name, model, md.optim.Adam(model.parameters(), lr=rates.get(kind, 1e-3)), step, [mnist.x_train])
        out = exp.evaluate(model, mnist.x_test)
        codes = exp.evaluate(model.encode, mnist.x_test).reshape(len(mnist.x_test), -1)
        md.manual_seed(10_000)  # the same random signs for every model
        jac = jacobian_penalty(model.encode, md.tensor(mnist.x_test[:200], device=exp.device), samples=16).item()
        mse = float(((out - mnist.x_test) ** 2).mean())
        noisy_mse = float(((exp.evaluate(model, noisy_test) - mnist.x_test) ** 2).mean())
        per_unit = codes.mean(0)
        dead, saturated = float((per_unit < 0.1).mean()), float((per_unit > 0.99).mean())
        rows.append((kind, mse, noisy_mse, float(codes.mean()), dead, saturated, jac))
        metrics[kind] = {"test_mse": mse, "noisy_test_mse": noisy_mse, "mean_activation": float(codes.mean()),
                         "dead_fraction": dead, "saturated_fraction": saturated, "code_units": codes.shape[1],
                         "jacobian_frobenius_sq": jac, "loss": "mse" if kind in ("plain", "denoising") else
                         f"mse + {kind.split(',')[0]} penalty", "train_corruption": "gaussian:0.3" if kind ==
                         "denoising" else "none", "epochs": args.epochs, "converged": None}  # fmt: skip
        figure[kind] = out[:SHOW]
        activity[f"{kind} ({saturated:.0%} of {codes.shape[1]} units > 0.99)"] = np.sort(per_unit)[::-1]
    print(f"{BUDGET.format(epochs=args.epochs)}; the denoising AE trained on Gaussian 0.3, the others on clean "
          "digits; the loss MSE, plus each regulariser's penalty")  # fmt: skip
    exp.table(["model", "test MSE", "MSE, noisy input", "mean code", "units < 0.1", "units > 0.99", "||J||_F^2"],
              rows)  # fmt: skip
    figures.image_rows(figure, exp.figure("regularized.png"), title="reconstructions of clean test digits")
    figures.curves({k: (np.linspace(0, 1, len(v)), v) for k, v in activity.items()}, exp.figure("code_activity.png"),
               "units, sorted (fraction of the code)", "mean activation on the test set",
               title=f"how sparse is each code, how many units saturate? ({exp.args.epochs} epochs each)")  # fmt: skip

    uniform = corruptions.corruption(f"uniform:{args.uniform}")
    noisy_sweep = uniform(mnist.x_test, exp.rng(10_001))
    sweep_rows, sweep, models = [], {}, {}
    sweep_figure = {"original": mnist.x_test[:SHOW], "corrupted": noisy_sweep[:SHOW]}
    for size in args.sizes:
        model = models[size] = DenseAutoencoder((784, size), activation="relu", device=exp.device)

        def step(x, rng, model=model):
            return F.mse_loss(model(uniform(x, rng)), x)

        exp.fit(f"code{size}", model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train])
        out = exp.evaluate(model, noisy_sweep)
        sweep[size] = float(((out - mnist.x_test) ** 2).mean())
        sweep_rows.append((size, "over" if size > 784 else "under" if size < 784 else "complete", sweep[size]))
        sweep_figure[f"code {size}"] = out[:SHOW]
    noisy_mse = float(((noisy_sweep - mnist.x_test) ** 2).mean())
    print(f"{BUDGET.format(epochs=args.epochs)}; each DAE trained on uniform noise {args.uniform} with MSE")
    exp.table(["code size", "", f"denoised MSE (uniform {args.uniform}: noisy {noisy_mse:.4f})"], sweep_rows)
    figures.curves({"denoised test MSE": list(sweep.values())}, exp.figure("code_size_sweep.png"), "code size",
               "test MSE", x=list(sweep), logx=True, logy=True,
               title=f"DAE, uniform noise {args.uniform}: denoising error against code size")  # fmt: skip
    figures.image_rows(sweep_figure, exp.figure("code_size_reconstructions.png"),
                   title=f"uniform noise {args.uniform}: original, corrupted, denoised by code size")  # fmt: skip

    size = min(args.sizes, key=lambda n: abs(n - 64))  # the lecture's 64-unit DAE under rising noise
    rising, rows, rising_figure = {}, [], {"original": mnist.x_test[:SHOW]}
    fixed_key, settings = f"denoised_mse_trained_at_{args.uniform}", f"MSE, {args.epochs} epochs each"
    for k, level in enumerate(args.levels):
        corrupt = corruptions.corruption(f"uniform:{level}")
        model = DenseAutoencoder((784, size), activation="relu", device=exp.device)  # retrained at this level

        def step(x, rng, model=model, corrupt=corrupt):
            return F.mse_loss(model(corrupt(x, rng)), x)

        exp.fit(f"code{size}_noise{level}", model, md.optim.Adam(model.parameters(), lr=1e-3), step, [mnist.x_train])
        noisy = corrupt(mnist.x_test, exp.rng(10_002, k))
        out, fixed = exp.evaluate(model, noisy), exp.evaluate(models[size], noisy)
        rising[level] = {name: float(((y - mnist.x_test) ** 2).mean()) for name, y in
                         [("noisy_mse", noisy), ("denoised_mse", out), (fixed_key, fixed)]}  # fmt: skip
        rows.append((level, *rising[level].values()))
        rising_figure[f"noise {level}"], rising_figure[f"denoised {level}"] = noisy[:SHOW], out[:SHOW]
    exp.table([f"uniform noise (code {size})", "noisy MSE", "denoised MSE (trained at this noise)",
               f"denoised MSE (trained at {args.uniform})"], rows)  # fmt: skip
    figures.image_rows(rising_figure, exp.figure("rising_noise.png"),
                   title=f"{size}-unit DAEs, one trained at each uniform noise level ({settings})")  # fmt: skip
    lines = {"noisy input": "noisy_mse", "DAE trained at this noise": "denoised_mse",
             f"DAE trained at {args.uniform}": fixed_key}  # fmt: skip
    figures.curves({name: [r[key] for r in rising.values()] for name, key in lines.items()},
               exp.figure("rising_noise_mse.png"), "uniform noise amplitude a", "test MSE", x=list(rising), logy=True,
               title=f"{size}-unit DAEs under rising uniform noise ({settings})")  # fmt: skip
    return exp.finish({"test_mse": metrics["plain"]["test_mse"], "regularized": metrics, "code_size_sweep": sweep,
                       "rising_noise": {"code": size, "levels": {str(k): v for k, v in rising.items()}}})  # fmt: skip


if __name__ == "__main__":
    run(regularized_ae.main)
