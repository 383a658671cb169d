"""One training step and what a training run keeps track of: the progress bar (tqdm), where a
checkpoint within an epoch stopped, when a validation loss has converged, the best epoch's weights."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .. import backend
from ..autograd.tensor import Tensor
from ..nn import Module
from ..optim import Optimizer
from .options import ExperimentError


def train_on_batch(step: Callable[..., Tensor], optimizer: Optimizer, *args) -> Tensor:
    """One training step: loss = step(*args), its gradients, the optimizer's update; returns the loss."""
    ### BEGIN SOLUTION exercise 10
    loss = step(*args)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
    ### END SOLUTION


@dataclass
class Within:
    """Where a checkpoint written within an epoch stopped: the batches done, their losses (host
    arrays) and the random generators' states after them (device -> NumPy's bit_generator.state)."""

    batches: int
    losses: list
    generators: dict


def checkpoint_seconds() -> float:
    """Seconds of training between checkpoints within an epoch: $MINIDL_CHECKPOINT_SECONDS, default 180."""
    text = os.environ.get("MINIDL_CHECKPOINT_SECONDS", "180")
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:
        raise ExperimentError(f"MINIDL_CHECKPOINT_SECONDS={text!r}: expected a number of seconds ≥ 0")
    return seconds


def generator_states() -> dict | None:
    """The states of the random generators in use (device -> state), or None where one cannot give its
    state (CuPy's): a checkpoint within an epoch must restore all of them to resume bit for bit."""
    states = {}
    for device, generator in backend.generators_by_device().items():
        state = getattr(getattr(generator, "bit_generator", None), "state", None)
        if not isinstance(state, dict):
            return None
        states[device] = state
    return states


def where_kept(epochs: int, within: Within | None, total: int) -> str:
    """Where a checkpoint is, in words."""
    if within is None:
        return f"after epoch {epochs}"
    return f"in epoch {epochs + 1}, after batch {within.batches} of {total}"


class Progress:
    """One epoch's progress bar: tqdm.auto's (a widget in Jupyter, a bar redrawn in place on a
    terminal), or in a log file or CI, where a redrawn bar would be carriage-return spam, a line
    at every quarter. It keeps each step's loss where it was computed (on a GPU: on the device)
    and reads one back to the host only to show it, at most ten times a second."""

    def __init__(self, total: int, label: str, file=None, live: bool | None = None):
        self.total, self.label, self.start, self.done = total, label, time.perf_counter(), 0
        self.file = sys.stderr if file is None else file
        self.last_shown, self.next_mark = 0.0, 0.25
        self.losses: list = []  # 0-d arrays, on the device of the loss
        live = _live_output(self.file) if live is None else live
        self.bar = tqdm(total=total, desc=label, file=self.file, mininterval=0.1, leave=True) if live else None

    def update(self, loss: Tensor) -> None:
        self.losses.append(loss.data)
        self.done += 1
        now = time.perf_counter()
        if self.bar is not None:
            if now - self.last_shown > 0.1 or self.done == self.total:
                self.bar.set_postfix_str(f"loss {loss.item():.4f}", refresh=False)  # drawn by update()
                self.last_shown = now
            self.bar.update()
            if self.done == self.total:
                self.bar.close()
        elif self.done / self.total >= self.next_mark:
            self.file.write(f"{self.label} {self.done}/{self.total} loss {loss.item():.4f} {now - self.start:.1f}s\n")
            self.file.flush()
            self.next_mark += 0.25

    def resume(self, losses: list) -> None:
        """Take up an epoch after the steps whose losses these are (a checkpoint within the epoch)."""
        self.losses, self.done = list(losses), len(losses)
        if self.bar is not None:
            self.bar.update(self.done)
        self.next_mark = (int(self.done / self.total * 4) + 1) / 4

    def host_losses(self) -> list[np.ndarray]:
        """Every step's loss so far, read back to the host (for a checkpoint)."""
        return [backend.to_numpy(loss) for loss in self.losses]

    def mean_loss(self) -> float:
        """The mean of every step's loss (in float64), read back once."""
        xp = backend.array_module_of(self.losses[0])
        return float(xp.stack(self.losses).astype(xp.float64).mean())


def _live_output(file) -> bool:
    """Whether a bar can be redrawn where the progress goes: a terminal, or a Jupyter kernel's output."""
    kernel = "ipykernel" in sys.modules and file in (sys.stderr, sys.stdout)
    return kernel or (hasattr(file, "isatty") and file.isatty())


def fingerprint(model: Module) -> str:
    """The model's class and parameter names and shapes: what a checkpoint must match."""
    return type(model).__name__ + ";" + ";".join(f"{n}{tuple(p.shape)}" for n, p in model.named_parameters())


CONVERGED = 0.01  # a validation loss has converged when `patience` epochs improved it by less than this fraction


def converged(scores: Sequence[float], patience: int) -> bool:
    """Whether the last `patience` validation losses are all above (1 - CONVERGED) × the best before them."""
    if len(scores) <= patience:
        return False
    return min(scores[-patience:]) > (1 - CONVERGED) * min(scores[:-patience])


class BestWeights:
    """A copy of a model's weights at its best epoch so far (1-based; 0 before any), to go back to."""

    def __init__(self, model: Module):
        self.model, self.state, self.epoch = model, {}, 0

    def keep(self, epoch: int) -> None:
        self.state = {k: v.numpy().copy() for k, v in self.model.state_dict().items()}  # on the host
        self.epoch = epoch

    def restore(self) -> None:
        if self.epoch:
            self.model.load_state_dict(self.state)
