"""Tensor, Function and the reverse-mode engine.

A Tensor holds an array (`.data`: NumPy on cpu/emu, CuPy on cuda) and, when it was
made by an op from tensors that require gradients, the Function node that made it.
`loss.backward()` walks those nodes in reverse topological order (iteratively, so a
chain of any length works) and each node turns the gradient of its output into
gradients of its inputs. Leaves with requires_grad=True accumulate them in `.grad`.
"""

from __future__ import annotations

import contextlib
import numbers
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from .. import backend, validate
from ..runtime import runs_as_kernel


class _GradMode(threading.local):
    enabled = True  # each thread starts with gradients on, as in PyTorch


_grad_mode = _GradMode()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block ops record no graph (in this thread only: grad mode is per thread)."""
    previous, _grad_mode.enabled = _grad_mode.enabled, False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Inside this block ops record graphs again, also within a no_grad() block (this thread only)."""
    previous, _grad_mode.enabled = _grad_mode.enabled, True
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


def fresh_array(data, dtype, device: str):
    """A fresh C-contiguous array on `device` (copied once: by the transfer, or else here):
    Python floats become float32, arrays keep their dtype unless dtype is given."""
    if isinstance(data, Tensor):
        data = data.data
    if not hasattr(data, "dtype"):  # Python numbers and (nested) lists, of numbers or of tensors
        data = np.asarray(_values(data))
        if dtype is None and data.dtype == np.float64:
            dtype = np.float32
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


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    data: the array; grad: a Tensor of the same shape, or None; requires_grad: bool;
    device: "cpu" | "cuda" | "emu".
    """

    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, device: str | None = None, dtype=None):
        device = backend.resolve_device(device) if device is not None else _infer_device(data)
        self.data = fresh_array(data, dtype, device)
        self.device = device
        self._grad: Tensor | None = None
        self._version = 0  # bumped by every in-place write of data (mark_changed)
        self.requires_grad = bool(requires_grad)
        self._node: Function | None = None
        if self.requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating point tensors can require gradients, got dtype {self.data.dtype}")

    @classmethod
    def _wrap(cls, array, device: str, requires_grad: bool = False) -> Tensor:
        """A Tensor around an existing array, without copying or converting it."""
        t = cls.__new__(cls)
        t.data, t.device, t._grad, t.requires_grad, t._node = array, device, None, requires_grad, None
        t._version = 0
        return t

    def mark_changed(self) -> None:
        """Say that data was written in place (an optimiser's step does): a graph that used the old
        values refuses to run backward through them, as PyTorch's version counter does."""
        self._version += 1

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
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data, self.device)

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
        create_graph: the gradients are computed by ops that record a graph of their own, so the
        .grad they leave can be differentiated again (second derivatives, gradient penalties);
        retain_graph then defaults to True, as in PyTorch.
        """
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
        if create_graph:  # the gradients are tensors, built by recorded ops
            keep = isinstance(gradient, Tensor) and gradient.dtype == self.dtype  # differentiable in its turn
            seed = gradient if keep else Tensor._wrap(seed, self.device)
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

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

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


def _is_array(value) -> bool:
    return hasattr(value, "__array_interface__") or hasattr(value, "__cuda_array_interface__")


def _infer_device(data) -> str:
    """A tensor keeps its device, a CuPy array is on cuda, anything else goes to the default device."""
    return data.device if isinstance(data, Tensor) else backend.device_for(data)


class Function:
    """One node of the graph: forward on arrays, backward from output gradient to input gradients.

    Subclasses implement the array path, written once for NumPy and CuPy through `self.xp`:
        forward(*arrays, **options) -> array
        backward(grad_output) -> one gradient (array or None) per tensor input.
    An op with CUDA kernels adds the kernel path, forward_kernel (and backward_kernel
    where the backward launches kernels too), which calls minidl.runtime.launch.
    apply() picks the path once, by asking minidl.runtime.runs_as_kernel (the device and
    the dtypes): no op ever names a device.
    `self.needs_grad[i]` says whether tensor input i wants a gradient (a backward may
    return None for the others and skip their work). An op whose backward reads its inputs'
    values (saves_inputs, the default) records their versions; backward refuses if one was
    written in place since (Tensor.mark_changed). Ops whose backward needs only shapes say
    saves_inputs = False.
    """

    saves_inputs = True

    inputs: tuple[Tensor, ...]
    device: str
    needs_grad: tuple[bool, ...]
    uses_kernels: bool

    @classmethod
    def apply(cls, *args, **options) -> Tensor:
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not tensors:
            raise TypeError(
                f"{cls.__name__} takes tensors, got {', '.join(type(a).__name__ for a in args) or 'nothing'}: "
                "make an array a tensor first (minidl.tensor(array))"
            )
        device = tensors[0].device
        if any(_is_array(a) for a in args):  # an array operand is a constant tensor, so that backward sees it
            args = tuple(Tensor(a, device=device) if _is_array(a) else a for a in args)
            tensors = [a for a in args if isinstance(a, Tensor)]
        for t in tensors[1:]:
            if t.device != device:
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on the same device, got {device} and {t.device}; "
                    f"move them with .to(device) first"
                )
        fn = cls()
        fn.device = device
        fn.uses_kernels = cls.forward_kernel is not Function.forward_kernel and runs_as_kernel(
            device, (t.dtype for t in tensors)
        )
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        forward = fn.forward_kernel if fn.uses_kernels else fn.forward
        out = Tensor._wrap(forward(*arrays, **options), device)
        if _grad_mode.enabled and any(t.requires_grad for t in tensors):
            out.requires_grad = True
            out._node = fn
            fn.inputs = tuple(args)
            fn.needs_grad = tuple(t.requires_grad for t in tensors)
            if cls.saves_inputs:
                fn.versions = tuple(t._version for t in tensors)
        return out

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad_output) -> tuple | object:
        raise NotImplementedError

    def forward_kernel(self, *arrays, **options):
        """The kernel path of forward (ops without kernels do not define it)."""
        raise NotImplementedError

    def backward_kernel(self, grad_output) -> tuple | object:
        """The kernel path of backward; by default the array path, which serves both."""
        return self.backward(grad_output)

    def backward_graph(self, grad_output: Tensor) -> tuple | object:
        """The input gradients built from differentiable ops on tensors (self.inputs, grad_output), for
        backward(create_graph=True): a graph that can be differentiated again."""
        raise NotImplementedError(
            f"{type(self).__name__} has no second derivative: backward(create_graph=True) and "
            "minidl.autograd.grad(..., create_graph=True) cannot differentiate through it"
        )

    def input_grads(self, grad_output) -> tuple:
        """The input gradients through the path that forward took (arrays), or, for a tensor
        grad_output (create_graph), through backward_graph; always as a tuple."""
        self.check_versions()
        if isinstance(grad_output, Tensor):
            grads = self.backward_graph(grad_output)
        else:
            grads = self.backward_kernel(grad_output) if self.uses_kernels else self.backward(grad_output)
        return grads if isinstance(grads, tuple) else (grads,)

    def check_versions(self) -> None:
        """Refuse to differentiate with values that were written in place after this op used them."""
        tensors = [t for t in getattr(self, "inputs", ()) if isinstance(t, Tensor)]
        for k, (t, seen) in enumerate(zip(tensors, getattr(self, "versions", ()))):
            if t._version != seen:
                raise RuntimeError(
                    f"a tensor that {type(self).__name__} needs for its gradient was changed in place after the "
                    f"op used it: its input {k} ({t.dtype} {t.shape}) is at version {t._version}, the op saw "
                    f"version {seen} (an optimiser's step writes its parameters in place). Run backward() before "
                    "the step, or compute the loss again after it."
                )

    @property
    def xp(self):
        return backend.array_module(self.device)


def _count_uses(root: Tensor) -> dict[int, int]:
    """For every tensor reachable from root: how many inputs of nodes it is (its uses)."""
    uses: dict[int, int] = {}
    stack, seen = [root], {id(root)}
    while stack:
        t = stack.pop()
        if t._node is None:
            continue
        if getattr(t._node, "released", False):
            raise RuntimeError(
                "trying to backward through the graph a second time: its saved values were freed. "
                "Call the first backward() with retain_graph=True if you need to."
            )
        for parent in t._node.inputs:
            if isinstance(parent, Tensor) and parent.requires_grad:
                uses[id(parent)] = uses.get(id(parent), 0) + 1
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append(parent)
    return uses


def run_backward(root: Tensor, seed, retain_graph: bool) -> None:
    """Send gradients from root to the leaves. A tensor is processed only once every use of
    it has sent its gradient (Kahn's topological order), so each gradient is complete.
    A leaf takes its first gradient as it is, without a copy, unless that array is a view
    or was already given to another leaf. Every gradient has its tensor's dtype (an op that
    promoted float32 to float64 sends float32 back)."""
    ### BEGIN SOLUTION exercise 2
    waiting = _count_uses(root)
    grads = {id(root): seed}
    taken: set[int] = set()  # arrays that leaves hold as their .grad
    ready = [root]
    while ready:
        t = ready.pop()
        g = grads.pop(id(t), None)
        node = t._node
        if node is None:  # a leaf: accumulate
            if g is not None:
                accumulate(t, g, taken)
            continue
        tensor_inputs = [x for x in node.inputs if isinstance(x, Tensor)]
        in_grads = node.input_grads(g) if g is not None else (None,) * len(tensor_inputs)
        for x, gx in zip(tensor_inputs, in_grads, strict=True):
            if not x.requires_grad:
                continue
            if gx is not None:
                if tuple(gx.shape) != x.shape:
                    raise AssertionError(f"{type(node).__name__}.backward gave shape {tuple(gx.shape)} for {x.shape}")
                if gx.dtype != x.dtype:  # as PyTorch's engine: a gradient has its input's dtype
                    gx = as_dtype(gx, x.dtype)
                grads[id(x)] = grads[id(x)] + gx if id(x) in grads else gx
            waiting[id(x)] -= 1
            if waiting[id(x)] == 0:
                ready.append(x)
        if not retain_graph:  # free what the node saved and its inputs (activations): a kept loss costs bytes
            node.__dict__.clear()
            node.inputs, node.released = (), True
    ### END SOLUTION


def accumulate(leaf: Tensor, g, taken: set[int]) -> None:
    """Add the gradient g into leaf.grad. An array g (a first-order backward) is kept as the .grad
    without a copy unless it is a view or another leaf holds it already (`taken`: the ids of the
    arrays leaves hold); a tensor g (create_graph) is added by an op, so the sum stays differentiable."""
    if isinstance(g, Tensor):
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    elif leaf.grad is None:
        fresh = g.base is None and id(g) not in taken
        leaf.grad = Tensor._wrap(g if fresh else g.copy(), leaf.device)
        taken.add(id(leaf.grad.data))
    else:
        leaf.grad.data = leaf.grad.data + g


def as_dtype(g, dtype):
    """A gradient in another dtype: an array's astype, a tensor's (create_graph) recorded .to(dtype=)."""
    return g.to(dtype=dtype) if isinstance(g, Tensor) else g.astype(dtype)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of outputs (a tensor or a sequence) with respect to inputs (a tensor or a
    sequence), as PyTorch's torch.autograd.grad: returned, not accumulated into any .grad.
    grad_outputs: the vector of each output (may be omitted for one-element outputs);
    create_graph: the gradients are differentiable (retain_graph then defaults to True);
    allow_unused: an input the outputs do not depend on gives None instead of an error."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs and {len(grad_outputs)} grad_outputs")
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {k} is not a tensor that requires grad")
    root = outputs[0] if len(outputs) == 1 else None
    if root is None:  # several outputs: differentiate their weighted sum
        total = None
        for out, v in zip(outputs, grad_outputs):
            term = (out * v).sum() if v is not None else out.sum()
            total = term if total is None else total + term
        outputs, grad_outputs, root = [total], [None], total
    # the walk runs with every input made a leaf (so it stops there), and every leaf's .grad kept aside
    ids = {id(t) for t in inputs}
    for t in inputs:
        if t._node is not None and any(id(u) in ids for u in _upstream(t)):
            raise NotImplementedError("grad: an input computed from another input is not supported")
    held = {id(t): (t, t._grad) for t in _upstream(root) if t._node is None}
    cut = {id(t): (t, t._node) for t in inputs if t._node is not None}
    try:
        for t, _ in list(held.values()):
            t._grad = None
        for t in inputs:
            t._grad, t._node = None, None
            held.setdefault(id(t), (t, None))
        if not root.requires_grad:
            raise RuntimeError("grad: the outputs do not require grad: no input of their graph requires grad")
        root.backward(grad_outputs[0], retain_graph=retain_graph, create_graph=create_graph)
        found = tuple(t._grad for t in inputs)
    finally:
        for t, node in cut.values():
            t._node = node
        for t, before in held.values():
            t._grad = before
    for k, g in enumerate(found):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {k} was not used to compute the outputs (allow_unused=True gives None)")
    return found


def _upstream(root: Tensor) -> list[Tensor]:
    """The tensors that root was computed from (root excluded), through every recorded node."""
    found, stack, seen = [], [root], {id(root)}
    while stack:
        for parent in getattr(stack.pop()._node, "inputs", ()):
            if isinstance(parent, Tensor) and id(parent) not in seen:
                seen.add(id(parent))
                found.append(parent)
                stack.append(parent)
    return found


def unbroadcast(grad, shape: Sequence[int]):
    """Sum a broadcast gradient back to `shape` (NumPy broadcasting rules)."""
    ### BEGIN SOLUTION exercise 1
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad
    ### END SOLUTION


def as_tensor(value, like: Tensor) -> Tensor:
    """A Python number or array as a constant tensor on like's device, in like's float dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number):  # made on the device (a fill, not an upload)
        if like.dtype.kind == "f" or (like.dtype.kind in "iu" and isinstance(value, numbers.Integral)):
            dtype = like.dtype  # as PyTorch: a Python number takes the tensor's dtype within its kind
        else:
            dtype = np.float32 if isinstance(value, float) else np.result_type(value)
        return Tensor._wrap(backend.array_module(like.device).full((), value, dtype=dtype), like.device)
    return Tensor(value, device=like.device)


from .. import ops  # noqa: E402  (ops needs Tensor and Function defined above)
