"""The lab application: the autoencoders the lab studies and the experiments it runs with them,
built on the framework (minidl) and imported by nothing in it.

options.py      the options every example takes, ExperimentError
training.py     one training step, progress, convergence, the best epoch's weights
run_folder.py   a run's folder: its lock, its manifest, what a Ctrl-C keeps, strict JSON
experiment.py   Experiment (data, fit with checkpoints and --resume, tables, --json), `example`
models.py       the autoencoders (Model C, D, P, dense, linear...), deep ones level by level
penalties.py    sparsity (L1, KL) and contractive penalties
latent.py       PCA, interpolation, manifold walks, how plausible generated digits are
clustering.py   k-means on codes, scored by the Hungarian assignment
corruptions.py  the noises a denoising AE learns to undo
figures.py      the lab's figures as PNG files
notebook.py     running the examples from a notebook
"""

from .. import cli
from .run_folder import kept_message


def run(main) -> None:
    """Run an example's main() as minidl.cli.run does, saying on Ctrl-C what the run kept."""
    cli.run(main, interrupted=kept_message)
