"""Optimisers with PyTorch's update rules.

SGD:  g ← g + λp;  b ← g (first step) or μb + g;  g ← g + μb (Nesterov) or b;  p ← p - ηg
Adam: g ← g + λp;  m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;
      p ← p - η/(1-β₁ᵗ) · m / (sqrt(v)/sqrt(1-β₂ᵗ) + ε)
Where a parameter runs as a kernel (minidl.runtime.runs_as_kernel: a kernel device and a
float32 or float64 parameter), Adam's step is one fused kernel per parameter (kernels/adam.cu),
after one launch that advances every parameter's step count t and bias corrections on the
device: no number of a step is computed on the host, so a captured step (minidl/capture.py)
replays right. Any other parameter takes the array path, as an op would.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable

import numpy as np

from . import backend
from .autograd.tensor import Tensor, fresh_array, writable_data
from .runtime import launch, runs_as_kernel
from .validate import boolean, real


class Optimizer:
    def __init__(self, params: Iterable[Tensor], **defaults) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: parameter {i} is not a Tensor that requires grad")
        first_place = {}
        for i, p in enumerate(self.params):
            if first_place.setdefault(id(p), i) != i:
                raise ValueError(
                    f"{type(self).__name__}: parameters {first_place[id(p)]} and {i} are the same tensor; "
                    "it would be stepped twice"
                )
        self.defaults = defaults
        self.state: dict[int, dict] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        stepped = [i for i, p in enumerate(self.params) if p.grad is not None]
        for i in stepped:
            p, g = self.params[i], self.params[i].grad
            if g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
                raise ValueError(
                    f"{type(self).__name__}: parameter {i} is {p.dtype} {p.shape} on {p.device}, its gradient "
                    f"{g.dtype} {g.shape} on {g.device}; they must agree"
                )
        self.begin_step(stepped)
        for i in stepped:
            p = self.params[i]
            target = writable_data(p)  # updated in place on every device: detach() and views see the step
            self.update(i, p, p.grad.data)
            if p.data is not target:  # an update that assigned p.data (a student's): write it in, as a kernel does
                target[...] = p.data
                p.data = target
            p.mark_changed()

    def begin_step(self, stepped: list[int]) -> None:
        """What an optimizer does once per step before its updates (stepped: the parameters' indices)."""

    def update(self, index: int, p: Tensor, grad) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """{'state': {index: {name: array or number}}, 'param_groups': [hyper-parameters]} as PyTorch, and a
        snapshot: its arrays are copies, as its step counts are numbers, so a later step changes nothing in
        it and loading it rolls the optimiser back (PyTorch's shares the optimiser's tensors, counts
        included: copy.deepcopy of it is this)."""
        state = {i: {k: v if isinstance(v, int) else v.copy() for k, v in s.items()} for i, s in self.state.items()}
        return {"state": state, "param_groups": [dict(self.defaults)]}

    # what a parameter's state holds: its names, each an array of the parameter's shape or a step count
    STATE: dict[str, str] = {}

    @staticmethod
    def hyperparameters(**group) -> dict:
        """The hyper-parameters checked (a clear error for a wrong one) and made plain Python values."""
        raise NotImplementedError

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what state_dict() gave, also after a round trip through minidl.save/load
        (string keys, NumPy arrays for numbers). Everything is checked against this optimiser and its
        parameters (indices, names, shapes, dtypes, hyper-parameters) before any of it is taken."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict takes {{'state': ..., 'param_groups': ...}}, got {got}")
        groups = state_dict["param_groups"]
        if isinstance(groups, dict) and list(groups) == ["0"]:  # how files saved before lists came back held it
            groups = [groups["0"]]
        group = groups[0] if isinstance(groups, list | tuple) and len(groups) == 1 else None
        if not isinstance(group, dict) or set(group) != set(self.defaults):
            raise ValueError(f"{name}: param_groups must be one group of {sorted(self.defaults)}, got {groups!r}")
        group = self.hyperparameters(**{k: _plain(v) for k, v in group.items()})
        if not isinstance(state_dict["state"], dict):
            raise ValueError(f"{name}: 'state' must be a dict of parameter index -> state, got {state_dict['state']!r}")
        state = {}
        for key, entries in state_dict["state"].items():
            i = _index(key, len(self.params), name)
            state[i] = self._restored(i, entries)
        self.state = state
        self.defaults.update(group)

    def _restored(self, i: int, entries) -> dict:
        """Parameter i's saved state, checked: arrays of its shape become fresh C-contiguous arrays of its
        dtype on its device (the kernels update them in place); a step count becomes an int."""
        name, p = type(self).__name__, self.params[i]
        if not isinstance(entries, dict) or set(entries) != set(self.STATE):
            got = sorted(entries) if isinstance(entries, dict) else type(entries).__name__
            raise ValueError(f"{name}: the state of parameter {i} must hold {sorted(self.STATE)}, got {got}")
        restored = {}
        for key, value in entries.items():
            if self.STATE[key] == "count":
                count = value.item() if getattr(value, "size", 0) == 1 else value
                if isinstance(count, bool) or not isinstance(count, numbers.Real) or count < 0 or count % 1:
                    raise ValueError(f"{name}: parameter {i}'s {key} must be a whole number ≥ 0, got {value!r}")
                restored[key] = int(count)
                continue
            shape, dtype = tuple(getattr(value, "shape", ())), getattr(value, "dtype", None)
            if shape != p.shape or dtype is None or dtype.kind not in "fiu":
                raise ValueError(
                    f"{name}: parameter {i}'s {key} must be an array of its shape {p.shape} (numbers), got "
                    f"{dtype or type(value).__name__} {shape}: a state of another model?"
                )
            restored[key] = fresh_array(value, p.dtype, p.device)
        return restored


def _index(key, count: int, name: str) -> int:
    """A state's parameter index (an int, or its text after minidl.save/load) in [0, count)."""
    index = key if isinstance(key, numbers.Integral) and not isinstance(key, bool) else None
    if isinstance(key, str) and key.isdigit():
        index = int(key)
    if index is None or not 0 <= index < count:
        raise ValueError(f"{name}: the state names parameter {key!r}; the parameters are 0 to {count - 1}")
    return int(index)


def _plain(value):
    """A hyper-parameter as a Python number, bool or tuple."""
    if isinstance(value, np.ndarray):
        return tuple(value.tolist()) if value.ndim else value.item()
    return value


class SGD(Optimizer):
    STATE = {"momentum_buffer": "array"}

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        group = self.hyperparameters(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
        super().__init__(params, **group)

    @staticmethod
    def hyperparameters(lr, momentum, nesterov, weight_decay) -> dict:
        lr, momentum = real(lr, "SGD: lr", 0), real(momentum, "SGD: momentum", 0)
        weight_decay = real(weight_decay, "SGD: weight_decay", 0)
        nesterov = boolean(nesterov, "SGD: nesterov")
        if nesterov and momentum == 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        return dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)

    def update(self, index, p, grad):
        d = self.defaults
        if d["weight_decay"]:
            grad = grad + d["weight_decay"] * p.data
        if d["momentum"]:
            state = self.state.setdefault(index, {})
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:  # in place, as the parameter: a captured step (minidl/capture.py) replays it
                buf *= d["momentum"]
                buf += grad
            grad = grad + d["momentum"] * buf if d["nesterov"] else buf
        p.data -= d["lr"] * grad


class Adam(Optimizer):
    STATE = {"step": "count", "exp_avg": "array", "exp_avg_sq": "array"}

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, **self.hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        # on a kernel device: every parameter's step count t (P,) and (step_size, bias2_sqrt) (P, 2);
        # while they exist they, not state[i]["step"], hold t
        self.counters: dict[str, tuple] = {}
        self.placement = self.placements()  # where each parameter was when the counters were made

    @staticmethod
    def hyperparameters(lr, betas, eps, weight_decay) -> dict:
        lr, eps, weight_decay = (
            real(lr, "Adam: lr", 0),
            real(eps, "Adam: eps", 0),
            real(weight_decay, "Adam: weight_decay", 0),
        )
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair, got {betas!r}")
        betas = tuple(real(b, "Adam: betas", 0, 1) for b in betas)
        if max(betas) == 1:
            raise ValueError(f"Adam: betas must be smaller than 1, got {betas}")
        return dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def placements(self) -> list[tuple[str, bool, np.dtype]]:
        return [(p.device, self.on_kernels(p), p.dtype) for p in self.params]

    def follow_parameters(self) -> None:
        """After parameters moved or changed dtype (Module.to) since the counters were made: their step
        counts come back into state (the counters are made again where they are now) and their moments
        follow them (device and dtype), so a move neither restarts Adam's bias corrections nor loses
        its moments."""
        now = self.placements()
        if now == self.placement:
            return
        for i, step in self.device_counts().items():
            if i in self.state:
                self.state[i]["step"] = step
        self.counters.clear()
        for i, state in self.state.items():
            p = self.params[i]
            for name in ("exp_avg", "exp_avg_sq"):
                moment = state.get(name)
                if moment is not None and (
                    moment.dtype != p.dtype or backend.array_module_of(moment) is not backend.array_module(p.device)
                ):
                    state[name] = fresh_array(moment, p.dtype, p.device)
        self.placement = now

    def begin_step(self, stepped):
        """On each kernel device, advance the stepped parameters' t and bias corrections: one launch
        per run of consecutive indices (one in all, when every parameter has a gradient)."""
        self.follow_parameters()
        beta1, beta2 = self.defaults["betas"]
        on_kernels = [i for i in stepped if self.on_kernels(self.params[i])]
        # runs: consecutive indices on one device (i - its position is constant along a run)
        for (device, _), run in itertools.groupby(
            enumerate(on_kernels), key=lambda at: (self.params[at[1]].device, at[1] - at[0])
        ):
            indices = [i for _, i in run]
            steps, schedule = self.counters_on(device)
            launch("adam_schedule", steps, schedule, first=indices[0], count=len(indices), lr=self.defaults["lr"],
                   beta1=beta1, beta2=beta2, threads=len(indices))  # fmt: skip

    @staticmethod
    def on_kernels(p: Tensor) -> bool:
        """Whether p's updates run as adam.cu's kernels (else as the array path)."""
        return runs_as_kernel(p.device, (p.dtype,))

    def counters_on(self, device: str) -> tuple:
        """The step counts and schedule on `device`, made at its first step from state[i]["step"]."""
        if device not in self.counters:
            xp = backend.array_module(device)
            on_device = [i for i, p in enumerate(self.params) if p.device == device and self.on_kernels(p)]
            counts = np.zeros(len(self.params), np.int64)
            counts[on_device] = [int(self.state.get(i, {}).pop("step", 0)) for i in on_device]
            steps = backend.move(counts, device) if counts.any() else xp.zeros(len(counts), np.int64)  # no upload
            self.counters[device] = (steps, xp.zeros((len(counts), 2)))
        return self.counters[device]

    def update(self, index, p, grad):
        d = self.defaults
        beta1, beta2 = d["betas"]
        state = self.state.get(index)
        if state is None:  # created once; C-contiguous, as the kernel updates it in place
            xp = backend.array_module(p.device)
            zeros = (xp.zeros(p.shape, p.dtype) for _ in range(2))
            state = self.state[index] = dict(zip(("exp_avg", "exp_avg_sq"), zeros))
        if self.on_kernels(p):
            schedule = self.counters[p.device][1][index]  # (step_size, bias2_sqrt), written by begin_step
            launch("adam_update", p.data, grad, state["exp_avg"], state["exp_avg_sq"], schedule, count=p.data.size,
                   beta1=beta1, beta2=beta2, eps=d["eps"], weight_decay=d["weight_decay"],
                   threads=p.data.size)  # fmt: skip
            return
        state["step"] = t = state.get("step", 0) + 1
        step_size, bias2_sqrt = d["lr"] / (1 - beta1**t), math.sqrt(1 - beta2**t)
        ### BEGIN SOLUTION exercise 7
        if d["weight_decay"]:
            grad = grad + d["weight_decay"] * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]  # updated in place, as the kernel does
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        denom = (v**0.5) / bias2_sqrt + d["eps"]
        p.data -= step_size * m / denom
        ### END SOLUTION

    def device_counts(self) -> dict[int, int]:
        """The step count of each parameter whose count a device's counters hold, read back to the host."""
        counts = {}
        for device, (steps, _) in self.counters.items():
            on_device = backend.to_numpy(steps)
            counts |= {i: int(on_device[i]) for i, placed in enumerate(self.placement) if placed[:2] == (device, True)}
        return counts

    def state_dict(self) -> dict:
        """As Optimizer.state_dict, with each parameter's step count read back from its device."""
        saved = super().state_dict()
        counts = self.device_counts()
        for i, state in saved["state"].items():
            if i in counts:
                state["step"] = counts[i]
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.counters.clear()  # made again from the loaded step counts at the next step
