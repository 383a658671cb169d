"""Module, Parameter and Sequential: containers of parameters and sub-modules."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from .. import backend, validate
from ..autograd.tensor import Tensor, fresh_array, writable_data


class Parameter(Tensor):
    """A tensor that a Module owns and trains (requires_grad=True)."""

    def __init__(self, data, requires_grad: bool = True, device: str | None = None, dtype=None):
        super().__init__(data, requires_grad=requires_grad, device=device, dtype=dtype)


class Module:
    """Base class of layers and models: assign Parameters and Modules as attributes and
    they are registered, in order, for parameters(), state_dict(), to() and train()/eval()."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name}")
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(
                f"{type(self).__name__}.{name} is a parameter: assign a Parameter (or None), not a "
                f"{type(value).__name__} (it would be neither trained nor saved); to change its values in "
                f"place, write to {name}.data under no_grad()"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- traversal
    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Each parameter once, under the first name it is reached by (a module or a parameter
        used twice, as in tied weights, is trained once, as in PyTorch)."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        mode = validate.boolean(mode, "train's mode")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, device: str | None = None, dtype=None) -> Module:
        """Move (or cast) every parameter in place; returns self."""
        device = backend.resolve_device(device) if device is not None else None
        for p in self.parameters():
            target = device or p.device
            p.data = backend.move(p.data, target)
            if dtype is not None:
                p.data = p.data.astype(dtype)
            p.device = target
            if p.grad is not None:
                p.grad = p.grad.to(target, dtype)
        return self

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """name -> parameter (detached, sharing its data)."""
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy values into the parameters; names missing, unexpected or of another shape are an error."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [
            f"{k}: checkpoint {tuple(np.shape(_values(state[k])))} vs model {own[k].shape}"
            for k in own
            if k in state and tuple(np.shape(_values(state[k]))) != own[k].shape
        ]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if wrong:
            problems.append("shape mismatch " + "; ".join(wrong))
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + ", ".join(problems))
        for k, p in own.items():
            if k in state:  # copied into the parameter, as in PyTorch: training never writes into the source
                writable_data(p)[...] = fresh_array(_values(state[k]), p.dtype, p.device)
                p.mark_changed()

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}({extra}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        return ""


def _values(value):
    return value.data if isinstance(value, Tensor) else value


class Sequential(Module):
    """Modules applied one after another."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Modules, argument {i} is {type(layer).__name__}")
            setattr(self, str(i), layer)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, index):
        layers = list(self._modules.values())
        return Sequential(*layers[index]) if isinstance(index, slice) else layers[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
