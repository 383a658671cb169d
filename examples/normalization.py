"""Images "corrupted by normalization" (CudaVision assignment 6), in each reading of the words, with
Model C (conv) and Model D (dense) trained to undo each.

The assignment asks to "reconstruct images from corrupted images by normalization" and to compare
the conv AE with the DAE, but does not say which normalisation. The readings a reader can take
(corruptions.READINGS, spec 'normalization:READING'):

- standardize: (x - mean) / std over each image's pixels, unclipped;
- clipped: the same, clipped back to [0, 1] (the lab's earlier guess: it barely changes a digit);
- dataset: (x - 0.1307) / 0.3081, MNIST's pixel mean and std, the same for every image;
- l2: x / ||x||_2 per image, a faint copy.

Most likely 'standardize': the assignment is written for TensorFlow in 2016 (tf.pack, an
output_shape for conv2d_transpose), whose image normalisation was tf.image.per_image_whitening,
today per_image_standardization: (x - mean) / std per image, unclipped. It is a corruption in the
assignment's sense (each image changed by its own statistics, so no fixed rescaling undoes it),
where the dataset constants are a preprocessing that one affine map undoes, clipping is a guess
the assignment does not state, and tf.nn.l2_normalize is a vector operation, not an image one.

For each reading both models (the main job's, with its loss MSE, learning rates and output layer
started at the mean image) learn to map the normalised image back to the clean one, on the
training set less its validation split (as the main job; --limit for fewer) until their validation
MSE stops improving (--patience, at most --epochs), and are scored on the normalised test set.

    python examples/normalization.py                 # 8 models, at most 20 epochs each: 21 min on 2 CPU cores
    python examples/normalization.py --readings standardize --limit 12000
"""

from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example, mse
from minidl.experiments.models import MAIN_JOB
from minidl.experiments.options import positive_int
from minidl.nn import functional as F

import numpy as np

SHOW = 8


def options(parser):
    parser.add_argument("--readings", nargs="+", choices=list(corruptions.READINGS), default=list(corruptions.READINGS),
                        help="the readings of 'normalization' to train and test on (default all)")  # fmt: skip
    parser.add_argument("--patience", type=positive_int, default=2,
                        help="stop when this many epochs improved validation MSE by under 1%% (default 2)")  # fmt: skip


def drawn(x: np.ndarray) -> np.ndarray:
    """Each image rescaled to [0, 1] by its own minimum and maximum, to be drawn whatever its range."""
    low, high = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
    return (x - low) / np.maximum(high - low, 1e-12)


@example(__doc__, epochs=20, options=options)
def normalization(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    mnist.hold_out_validation()
    x_train = mnist.x_train

    rows, results, figure = [], {}, {"clean": mnist.x_test[:SHOW]}
    for reading in args.readings:
        corrupt = corruptions.corruption(f"normalization:{reading}")
        test, val = corrupt(mnist.x_test, None), corrupt(mnist.x_val, None)
        figure[f"{reading} (drawn rescaled)"] = drawn(test[:SHOW])
        results[reading] = {"description": corruptions.READINGS[reading], "noisy_mse": mse(test, mnist.x_test),
                            "input_range": [float(test.min()), float(test.max())]}  # fmt: skip
        for tag, recipe in MAIN_JOB.items():
            label, logits = recipe.label, recipe.logits
            model, optimizer = recipe.start(x_train, exp.device)

            def denoise(x, model=model, logits=logits):
                return F.sigmoid(model(x)) if logits else model(x)

            def step(x, rng, model=model, logits=logits, corrupt=corrupt):
                out = model(corrupt(x, rng))
                return F.sigmoid_mse_loss(out, x) if logits else F.mse_loss(out, x)

            def validate(denoise=denoise, val=val) -> float:
                return mse(exp.evaluate(denoise, val), mnist.x_val)

            name = f"{tag}_{reading}"
            history, scores = exp.fit(name, model, optimizer, step, [x_train], evaluate=validate,
                                      patience=args.patience)  # fmt: skip
            out = exp.evaluate(denoise, test)
            fit = exp.fits[name]
            results[reading][tag] = {"test_mse": mse(out, mnist.x_test), "loss": "mse",
                                     "train_corruption": f"normalization:{reading}", "val_mse_per_epoch": scores,
                                     } | fit  # fmt: skip
            figure[f"{label.split(' (')[0]}, {reading}"] = out[:SHOW]
        c, d = results[reading]["model_c"], results[reading]["model_d"]
        low, high = results[reading]["input_range"]
        rows.append((reading, f"{low:.2f} .. {high:.2f}", results[reading]["noisy_mse"], c["test_mse"], d["test_mse"],
                     f"{c['epochs']} ({c['best_epoch']})", f"{d['epochs']} ({d['best_epoch']})",
                     "/".join("yes" if m["converged"] else "NO" for m in (c, d))))  # fmt: skip
    print(f"each model trained and tested on one reading of 'normalization' (MSE, {len(x_train)} training "
          f"images, at most {args.epochs} epochs, patience {args.patience}); "
          f"most likely: {corruptions.MOST_LIKELY}")  # fmt: skip
    exp.table(["reading", "input range", "input MSE", "Model C MSE", "Model D MSE", "C epochs (best)",
               "D epochs (best)", "converged C/D"], rows)  # fmt: skip
    for reading in args.readings:
        print(f"  {reading}: {corruptions.READINGS[reading]}")
    figures.image_rows(figure, exp.figure("normalization.png"),
                       title=f"test digits normalised ({', '.join(args.readings)}; inputs drawn rescaled to their own "
                       f"range), and Model C and D trained on each (MSE, at most {args.epochs} epochs)")  # fmt: skip
    first = results.get(corruptions.MOST_LIKELY, results[args.readings[0]])
    return exp.finish({"test_mse": first["model_c"]["test_mse"], "most_likely": corruptions.MOST_LIKELY,
                       "readings": results})  # fmt: skip


if __name__ == "__main__":
    run(normalization.main)
