"""The exercises: number, title, sheet, where each can be graded, and its check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import checks
from .student import Student


@dataclass(frozen=True)
class Exercise:
    number: int
    slug: str  # the sheet is docs/exercises/<number:02>-<slug>.md
    title: str
    devices: tuple[str, ...]  # where it can be graded; the first is the default
    check: Callable[[Student], None]  # raises CheckFailed (grading.py) at the first wrong case
    points: int = 2  # what a pass is worth on Gradescope and GitHub Classroom (grades.csv counts passes)

    @property
    def sheet(self) -> str:
        return f"docs/exercises/{self.number:02d}-{self.slug}.md"

    @property
    def stub_message(self) -> str:
        """What the student copy's stub says when it runs."""
        return f"Exercise {self.number} not implemented: {self.title}, see {self.sheet}"


KERNEL = ("emu", "cuda")
EXERCISES = (
    Exercise(1, "unbroadcast", "the gradient of a broadcasting op (unbroadcast)", ("cpu",), checks.check_unbroadcast),
    Exercise(2, "backward-walk", "the backward walk in topological order", ("cpu",), checks.check_backward_walk),
    Exercise(3, "conv2d-im2col", "conv2d forward by im2col", ("cpu",), checks.check_conv_im2col),
    Exercise(
        4,
        "conv2d-gradients",
        "conv2d's input and weight gradients, conv_transpose2d as the adjoint",
        ("cpu",),
        checks.check_conv_gradients,
    ),
    Exercise(5, "max-pool-kernel", "the max-pool kernels, forward and backward", KERNEL, checks.check_max_pool_kernel),
    Exercise(
        6,
        "sigmoid-loss-kernel",
        "the fused sigmoid + loss kernel and its block reduction",
        KERNEL,
        checks.check_sigmoid_loss_kernel,
    ),
    Exercise(7, "adam", "Adam's update in Python", ("cpu",), checks.check_adam),
    Exercise(8, "adam-kernel", "Adam's update as a kernel", KERNEL, checks.check_adam_kernel),
    Exercise(9, "corruptions", "Gaussian and salt-and-pepper corruptions", ("cpu",), checks.check_corruptions),
    Exercise(10, "training-loop", "the denoising training loop", ("cpu",), checks.check_training_loop),
    Exercise(
        11,
        "contractive-penalty",
        "the contractive penalty (the encoder's Jacobian)",
        ("cpu",),
        checks.check_contractive_penalty,
    ),
    Exercise(
        12, "clustering", "k-means on codes, scored with the Hungarian assignment", ("cpu",), checks.check_clustering
    ),
)


def exercise(number: int) -> Exercise:
    for e in EXERCISES:
        if e.number == number:
            return e
    raise ValueError(f"there is no exercise {number}; the exercises are 1 to {len(EXERCISES)}")


def stubs() -> dict[int, tuple[str, str]]:
    """For solutions.write_copy: each exercise's stub message and sheet."""
    return {e.number: (e.stub_message, e.sheet) for e in EXERCISES}
