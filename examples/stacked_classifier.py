"""A stacked autoencoder's encoder with a classifier on top, against the same classifier
trained from scratch.

The encoder (784-256-128, sigmoid) is pretrained layer by layer as denoising AEs
without labels; then a softmax layer goes on top and either the whole network is fine-tuned
with labels, or only the softmax layer is trained on the frozen codes (the lecture's
frozen-feature variant). The scratch network has the same layers and the same training,
from random weights. `--labels N` keeps only N labelled images (pretraining still sees all), where
pretraining helps most.

    python examples/stacked_classifier.py             # a few minutes on 2 CPU cores
    python examples/stacked_classifier.py --labels 1000
"""

import minidl as md
from minidl.experiments import corruptions, figures, run
from minidl.experiments.experiment import Experiment, example
from minidl.experiments.models import Classifier, DenseAutoencoder, pretrain_layerwise, stack_levels
from minidl.experiments.options import non_negative_int, positive_int
from minidl.nn import Sequential
from minidl.nn import functional as F

import numpy as np

SIZES = (784, 256, 128)


def options(parser):
    parser.add_argument("--labels", type=positive_int, default=None, help="labelled training images (default all)")
    parser.add_argument("--pretrain-epochs", type=non_negative_int, default=1, help="epochs per pretrained level")


@example(__doc__, epochs=5, options=options)
def stacked_classifier(exp: Experiment) -> dict:
    args, mnist = exp.args, exp.data
    noise = corruptions.corruption("masking:0.2")

    def train_level(level, ae, inputs):
        def step(x, rng):
            return F.mse_loss(ae(noise(x, rng)), x)

        exp.fit(f"pretrain_level{level}", ae, md.optim.Adam(ae.parameters(), lr=1e-3), step, [inputs],
                epochs=args.pretrain_epochs)  # fmt: skip

    levels = pretrain_layerwise(SIZES, mnist.x_train, train_level, lambda ae, x: exp.evaluate(ae.encode, x),
                                device=exp.device)  # fmt: skip
    labelled = slice(0, args.labels)
    x, y = mnist.x_train[labelled], mnist.y_train[labelled]
    results, curves = [], {}
    for tag, name, encoder, freeze in [
        ("fine_tuned", "pretrained + fine-tuned", stack_levels(levels, device=exp.device).encoder, False),
        ("frozen", "pretrained, frozen codes", stack_levels(levels, device=exp.device).encoder, True),
        ("scratch", "from scratch", DenseAutoencoder(SIZES, device=exp.device).encoder, False),
    ]:
        model = Classifier(Sequential(*encoder), SIZES[-1], freeze=freeze, device=exp.device)

        def step(xb, yb, rng, model=model):
            return F.cross_entropy(model(xb), yb)

        def accuracy(model=model):
            logits = exp.evaluate(model, mnist.x_test)
            return float((logits.argmax(1) == mnist.y_test).mean())

        _, scores = exp.fit(tag, model, md.optim.Adam(model.parameters(), lr=1e-3), step, [x, y], evaluate=accuracy)
        curves[name] = scores
        results.append((name, len(x), scores[-1] if scores else accuracy()))
    exp.table(["classifier", "labelled images", "test accuracy"], results)
    figures.curves(curves, exp.figure("accuracy.png"), "epoch", "test accuracy", title="stacked AE + classifier")
    return exp.finish({"accuracy": results[0][2], "frozen_accuracy": results[1][2], "scratch_accuracy": results[2][2],
                       "labels": len(x),
                       "accuracy_per_epoch": {k: list(np.round(v, 4)) for k, v in curves.items()}})  # fmt: skip


if __name__ == "__main__":
    run(stacked_classifier.main)
