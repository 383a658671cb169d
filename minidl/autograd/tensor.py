"""Tensor: an array (`.data`: NumPy on cpu and emu, CuPy on cuda) that remembers how it was made.

A tensor made by an op from tensors that require gradients keeps the node (a Function,
minidl.autograd.function) that made it; `loss.backward()` hands the graph to the engine
(minidl.autograd.engine), and leaves with requires_grad=True accumulate `.grad`. The methods
and operators of Tensor forward to minidl.ops, one line each, grouped as PyTorch groups them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import backend, validate
from .mode import grad_mode, narrowed_walk

if TYPE_CHECKING:
    from types import ModuleType

    from .function import Function

# minidl.ops, which Tensor's operators and methods call. The ops import Tensor, so Tensor cannot import
# them: minidl.ops binds itself here when it is imported (late binding, as DeZero's setup_variable).
ops: ModuleType = None  # type: ignore[assignment]  (bound before any op can run)


def fresh_array(data, dtype, device: str):
    """A fresh C-contiguous array on `device` (copied once: by the transfer, or else here):
    Python floats become float32, arrays keep their dtype unless dtype is given."""
    if isinstance(data, Tensor):
        data = data.data
    if not hasattr(data, "dtype"):  # Python numbers and (nested) lists, of numbers or of tensors
        values = _values(data)
        data = np.asarray(values)
        if dtype is None and data.dtype == np.float64:
            dtype = np.float32
        if data.dtype.kind in "uO" and _beyond_int64(values):  # NumPy made uint64 or objects of them
            raise OverflowError("a Python int out of int64's range cannot be a tensor element (as in PyTorch)")
    if data.dtype.kind not in "biufc":
        raise TypeError(f"a tensor holds numbers or booleans; got {data.dtype} data ({type(data).__name__})")
    moved = backend.move(data, device)
    return moved.astype(dtype or moved.dtype, order="C", copy=moved is data)


def _values(data):
    """Nested lists and tuples with every Tensor in them replaced by its values (on the host)."""
    if isinstance(data, Tensor):
        return data.numpy()
    if isinstance(data, list | tuple):
        return [_values(d) for d in data]
    if data is None:
        raise TypeError("a tensor holds numbers or booleans; got None")
    return data


def _beyond_int64(values) -> bool:
    """Whether a Python int in (nested lists of) values lies outside [-2⁶³, 2⁶³)."""
    if isinstance(values, list | tuple):
        return any(_beyond_int64(v) for v in values)
    return type(values) is int and not -(2**63) <= values < 2**63


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    data: the array; grad: a Tensor of the same shape, or None; requires_grad: bool;
    device: "cpu" | "cuda" | "emu".
    """

    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__
    _users: list | None = None  # a computed tensor's readers: weak references to the nodes (ops.inplace)

    def __init__(self, data, requires_grad: bool = False, device: str | None = None, dtype=None):
        device = backend.resolve_device(device) if device is not None else _infer_device(data)
        self.data = fresh_array(data, dtype, device)
        self.device = device
        self._grad: Tensor | None = None
        self._counter = [0]  # the version counter: bumped by every in-place write, one list shared by views
        self.requires_grad = bool(requires_grad)
        self._node: Function | None = None
        if self.requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating point tensors can require gradients, got dtype {self.data.dtype}")

    def __getstate__(self) -> dict:
        """What pickle and copy keep: all but the weak references to the ops that read this tensor (a copy
        has no readers yet)."""
        state = dict(self.__dict__)
        state.pop("_users", None)
        return state

    @classmethod
    def _wrap(cls, array, device: str, requires_grad: bool = False) -> Tensor:
        """A Tensor around an existing array, without copying or converting it."""
        t = cls.__new__(cls)
        t.data, t.device, t._grad, t.requires_grad, t._node = array, device, None, requires_grad, None
        t._counter = [0]
        return t

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's storage has had: its own, its base's and its views'
        (a view and its base share one counter, as in PyTorch)."""
        return self._counter[0]

    def mark_changed(self) -> None:
        """Say that data was written in place (an optimiser's step does): a graph that used the old
        values, through this tensor or any view of its storage, refuses to run backward through them,
        as PyTorch's version counter does."""
        self._counter[0] += 1

    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by backward(): None, or a Tensor of this tensor's shape, dtype and device."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"a .grad is a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape or value.dtype != self.dtype or value.device != self.device:
                raise ValueError(
                    f"a .grad must match its tensor: {self.dtype} {self.shape} on {self.device}, got {value.dtype} "
                    f"{value.shape} on {value.device}"
                )
        self._grad = value

    # ------------------------------------------------------------------ facts
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        """The sub-tensors along dim 0, as in PyTorch (a 0-d tensor has none to give: an error, not [])."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self) -> bool:
        """The truth of a one-element tensor; for more (or none) ambiguous, as in PyTorch."""
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor of {self.data.size} elements is ambiguous: use .any() or .all()"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        """np.asarray(tensor): its values as a NumPy array (a host copy for a GPU tensor)."""
        array = self.numpy()
        return array.astype(dtype, copy=False) if dtype is not None else array

    def any(self) -> Tensor:
        return Tensor._wrap(self.data.any(), self.device)

    def all(self) -> Tensor:
        return Tensor._wrap(self.data.all(), self.device)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == backend.HOST else f", device='{self.device}'"
        body = np.array2string(self.numpy(), precision=4, separator=", ", prefix="tensor(")
        return f"tensor({body}{dev}, dtype={self.dtype}{grad})"

    # ------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The values as a host NumPy array."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device: str | None = None, dtype=None) -> Tensor:
        """A copy on another device or with another dtype (self if nothing changes).

        Gradients flow back through the move.
        """
        device = backend.resolve_device(device) if device is not None else self.device
        if device == self.device and (dtype is None or np.dtype(dtype) == self.dtype):
            return self
        from ..ops.shape import to_device

        return to_device(self, device, dtype)

    def cpu(self) -> Tensor:
        return self.to(backend.HOST)

    def cuda(self) -> Tensor:
        return self.to(backend.GPU)

    def float(self) -> Tensor:
        return self.to(dtype=np.float32)

    def double(self) -> Tensor:
        return self.to(dtype=np.float64)

    def detach(self) -> Tensor:
        """The same data and version counter, cut from the graph."""
        t = Tensor._wrap(self.data, self.device)
        t._counter = self._counter
        return t

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Start (or stop) recording the ops on this leaf tensor; a computed tensor's flag is its graph's."""
        flag = validate.boolean(flag, "requires_grad_'s flag")
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        if not self.is_leaf and flag != self.requires_grad:
            raise RuntimeError(
                "requires_grad_ changes only leaf tensors; this one was computed by an op (use .detach() to cut "
                "it from the graph)"
            )
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # --------------------------------------------------------------- backward
    def backward(
        self, gradient: Tensor | None = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) * gradient into the .grad of every leaf that requires it.

        gradient may be omitted only for a tensor with one element (it is then 1).
        Without retain_graph the graph's saved values are freed as it is walked.
        The ops' backwards run under no_grad; create_graph: they record a graph of their own, so the
        .grad they leave can be differentiated again (second derivatives, gradient penalties);
        retain_graph then defaults to True, as in PyTorch.
        """
        self._backward(gradient, retain_graph, create_graph, needs=None)

    def _backward(self, gradient, retain_graph, create_graph, needs: dict | None) -> None:
        """backward(), with the nodes in `needs` reporting those needs_grad for this walk (grad()'s)."""
        create_graph = validate.boolean(create_graph, "create_graph")
        retain_graph = create_graph if retain_graph is None else validate.boolean(retain_graph, "retain_graph")
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input of its graph requires grad")
        xp = backend.array_module(self.device)
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient argument needs a tensor with one element; "
                    f"this one has shape {self.shape}. Pass gradient= of that shape, or reduce it (e.g. .sum())."
                )
            seed = xp.ones_like(self.data)
        else:
            seed = fresh_array(gradient, self.dtype, self.device)  # a copy: leaves may keep it as their .grad
            if tuple(seed.shape) != self.shape:
                raise ValueError(f"gradient has shape {tuple(seed.shape)}, expected {self.shape}")
        keep = create_graph and isinstance(gradient, Tensor) and gradient.dtype == self.dtype
        seed = gradient if keep else Tensor._wrap(seed, self.device)  # kept: differentiable in its turn
        from .engine import run_backward  # the engine works on tensors: it imports this module

        # as PyTorch: backward records only for create_graph, also inside no_grad()
        with grad_mode(create_graph), narrowed_walk(needs):
            run_backward(self, seed, retain_graph)

    # ------------------------------------------------------------- operators
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    # in place, as PyTorch: written into this tensor's array (minidl.ops.inplace); __setitem__ too
    def __iadd__(self, other):
        return ops.in_place(self, ops.add, other, "+=")

    def __isub__(self, other):
        return ops.in_place(self, ops.sub, other, "-=")

    def __imul__(self, other):
        return ops.in_place(self, ops.mul, other, "*=")

    def __itruediv__(self, other):
        return ops.in_place(self, ops.div, other, "/=")

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __matmul__(self, other):  # a tensor or an array; a list is Python's TypeError, as in PyTorch
        return ops.matmul(self, other) if isinstance(other, Tensor) or backend.is_array(other) else NotImplemented

    def __rmatmul__(self, other):
        return ops.matmul(other, self) if isinstance(other, Tensor) or backend.is_array(other) else NotImplemented

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def __setitem__(self, index, value):  # in place, as PyTorch: t[index] = value
        ops.in_place(self, lambda t, v: ops.setitem(t, index, v), value, "t[...] =")

    # comparisons give plain boolean tensors (no gradient)
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self.data, other), self.device)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def __eq__(self, other):  # elementwise, as in PyTorch
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    __hash__ = object.__hash__

    # --------------------------------------------------------------- methods
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def abs(self):
        return ops.abs(self)

    def clamp(self, min=None, max=None):
        return ops.clamp(self, min, max)

    def relu(self):
        return ops.relu(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def tanh(self):
        return ops.tanh(self)

    def sum(self, dim=None, keepdim=False, **kw):
        return ops.sum(self, dim, keepdim, **kw)

    def mean(self, dim=None, keepdim=False, **kw):
        return ops.mean(self, dim, keepdim, **kw)

    def max(self, dim=None, keepdim=False, **kw):
        return ops.max(self, dim, keepdim, **kw)

    def min(self, dim=None, keepdim=False, **kw):
        return ops.min(self, dim, keepdim, **kw)

    def amax(self, dim=None, keepdim=False, **kw):
        return ops.amax(self, dim, keepdim, **kw)

    def amin(self, dim=None, keepdim=False, **kw):
        return ops.amin(self, dim, keepdim, **kw)

    def var(self, dim=None, keepdim=False, correction=1, **kw):
        return ops.var(self, dim, keepdim, correction, **kw)

    def argmax(self, dim=None):
        axis = None if dim is None else validate.dim(dim, self.ndim)
        return Tensor._wrap(self.data.argmax(axis=axis), self.device)

    def reshape(self, *shape):
        return ops.reshape(self, *shape)

    def view(self, *shape):
        return ops.reshape(self, *shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return ops.flatten(self, start_dim, end_dim)

    def permute(self, *dims):
        return ops.permute(self, *dims)

    def transpose(self, dim0: int, dim1: int):
        return ops.transpose(self, dim0, dim1)

    @property
    def T(self):
        return ops.permute(self, *reversed(range(self.ndim)))

    def unsqueeze(self, dim: int):
        return ops.unsqueeze(self, dim)

    def squeeze(self, dim: int | None = None):
        return ops.squeeze(self, dim)


def writable_data(t: Tensor):
    """t.data, made a writable C-contiguous array first if it is not one: what an in-place write
    (an optimiser's step, load_state_dict) writes into, so that detach(), views and a state_dict()
    taken before see it, as in PyTorch."""
    flags = t.data.flags
    if not (getattr(flags, "writeable", True) and flags.c_contiguous):
        t.data = backend.array_module(t.device).array(t.data, order="C", copy=True)
    return t.data


def _infer_device(data) -> str:
    """A tensor keeps its device, a CuPy array is on cuda, anything else goes to the default device."""
    return data.device if isinstance(data, Tensor) else backend.device_for(data)
