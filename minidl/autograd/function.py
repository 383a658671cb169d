"""Function: one node of the graph, an op's forward and backward side by side.

The path of a tensor through an op:
  forward   Function.apply(x, ...) unwraps the tensors, runs forward on their arrays (or
            forward_kernel, the op's kernel path, where runs_as_kernel says so) and wraps the
            result; while grad mode is on (per thread, as PyTorch's) the result keeps the node.
  backward  the engine hands the node the output's gradient, a Tensor, and backward returns its
            inputs' gradients, written once in differentiable minidl ops on tensors. A first-order
            backward runs them under no_grad (nothing is recorded: thin wrappers around array
            code); backward(create_graph=True) records them, so the gradient is itself a graph
            that can be differentiated again (second derivatives come from the ops' own backwards).
"""

from __future__ import annotations

import weakref

from .. import backend
from ..runtime import runs_as_kernel
from .mode import _grad_mode, _walk
from .tensor import Tensor


class Function:
    """One node of the graph: forward on arrays, backward on tensors.

    A subclass implements
        forward(*arrays, **options) -> array: the array path, written once for NumPy and CuPy
            through `self.xp`; an op with CUDA kernels adds forward_kernel (same signature), which
            calls minidl.runtime.launch. apply() picks one, by asking minidl.runtime.runs_as_kernel
            (the device and the dtypes): no op ever names a device.
        backward(grad_output: Tensor) -> one Tensor (or None) per tensor input, built from
            differentiable minidl ops on tensors: the inputs (self.inputs), the output (self.output,
            for ops that declare saves_output) and what forward kept (self.saved). A gradient that
            needs kernels or special array code is an op of its own (a Function with its own
            forward, forward_kernel and backward: conv2d's weight gradient, max-pool's scatter), so
            every backward stays one function and second derivatives come from the ops' backwards.
            A backward may call a primitive's apply directly (its inputs are known to be good).
    `self.needs_grad[i]` says whether tensor input i wants a gradient (a backward may return None
    for the others and skip their work); during a grad() walk, whether it leads to a requested
    input. An op whose backward reads its inputs' values (saves_inputs, the default) records their
    versions; backward refuses if one was written in place since (Tensor.mark_changed). Ops whose
    backward needs only shapes say saves_inputs = False.
    What backward needs from forward besides inputs and output (masks, indices) forward declares
    with one call, save_for_backward(*arrays), and backward reads back as self.saved (constant
    tensors); options (shapes, strides) are plain attributes. After backward the engine calls
    release(), which drops exactly the saved values, the inputs and the output, so a kept loss
    keeps the graph's structure, not its activations.
    """

    saves_inputs = True
    saves_output = False
    makes_view = False
    saved: tuple = ()
    released = False  # release() has dropped what backward needs
    aliases_input = False  # its output views its first input's storage (a view op that made no copy)

    inputs: tuple[Tensor, ...]
    device: str
    _needs_grad: tuple[bool, ...]  # whether each tensor input required grad when the op ran
    uses_kernels: bool

    @classmethod
    def apply(cls, *args, **options) -> Tensor:
        tensors = [a for a in args if isinstance(a, Tensor)]
        if len(tensors) == len(args):
            arrays = [t.data for t in tensors]
        else:  # an array operand is a constant tensor, so that backward sees it
            args, tensors = _with_constants(cls, args, tensors)
            arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        device = tensors[0].device
        for t in tensors:
            if t.device != device:
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on the same device, got {device} and {t.device}; "
                    f"move them with .to(device) first"
                )
        fn = cls()
        fn.device = device
        fn.uses_kernels = cls.forward_kernel is not Function.forward_kernel and runs_as_kernel(
            device, (t.data.dtype for t in tensors)
        )
        forward = fn.forward_kernel if fn.uses_kernels else fn.forward
        out = Tensor._wrap(forward(*arrays, **options), device)
        if cls.makes_view and fn.xp.may_share_memory(out.data, tensors[0].data):
            out._counter = tensors[0]._counter  # a view: one version counter with its base, as PyTorch's
            fn.aliases_input = True
        if _grad_mode.enabled:
            needs_grad = tuple([t.requires_grad for t in tensors])
            if True in needs_grad:
                out.requires_grad, out._node = True, fn
                fn.inputs, fn._needs_grad = args, needs_grad
                reader = None  # who read a computed tensor: a later in-place write to it keeps their history
                for t in tensors:
                    if t._node is not None:
                        reader = reader or weakref.ref(fn)
                        if t._users is None:
                            t._users = [reader]
                        else:
                            t._users.append(reader)
                            if len(t._users) >= 64 and not len(t._users) & (len(t._users) - 1):  # a tensor kept
                                t._users = [r for r in t._users if r() is not None]  # and read for long
                if cls.saves_inputs:
                    fn.versions = [t._counter[0] for t in tensors]
                if cls.saves_output:  # kept weakly (no cycle): whoever runs backward holds the output
                    fn.output_counter, fn._output = out._counter, weakref.ref(out)
        return out

    @property
    def needs_grad(self) -> tuple[bool, ...]:
        """Whether each tensor input wants a gradient: it required grad when the op ran and, in a grad()
        walk, it leads to one of the requested inputs (mode.narrowed_walk)."""
        narrowed = _walk.needs
        return self._needs_grad if narrowed is None else narrowed.get(self, self._needs_grad)

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def forward_kernel(self, *arrays, **options):
        """The kernel path of forward (ops without kernels do not define it)."""
        raise NotImplementedError

    def backward(self, grad_output: Tensor) -> tuple | Tensor | None:
        raise NotImplementedError

    def save_for_backward(self, *values) -> None:
        """Keep what backward needs besides the inputs and the output (masks, indices): the one place
        a node keeps them; backward reads them back as self.saved, arrays as constant tensors."""
        self.saved = tuple([Tensor._wrap(v, self.device) if hasattr(v, "dtype") else v for v in values])

    @property
    def output(self) -> Tensor:
        """The tensor forward returned (ops with saves_output), for their backward."""
        return self._output()

    def constant(self, array) -> Tensor:
        """An array that backward computes (a mask, a share) as a constant tensor on this op's device."""
        return Tensor._wrap(array, self.device)

    def release(self) -> None:
        """Drop the saved values, the inputs and the output (after backward, without retain_graph); options stay."""
        self.saved, self.inputs, self._output, self.released = (), (), None, True

    def input_grads(self, grad_output: Tensor) -> tuple:
        """The input gradients (backward's, always as a tuple), once the inputs are checked unchanged."""
        self.check_versions()
        grads = self.backward(grad_output)
        grads = grads if type(grads) is tuple else (grads,)
        for k, g in enumerate(grads):
            if g is not None and type(g) is not Tensor:
                raise TypeError(
                    f"{type(self).__name__}.backward returned a {type(g).__name__} for input {k}: a backward "
                    "returns tensors (or None), built by minidl ops from self.inputs, self.saved and the gradient"
                )
        return grads

    def check_versions(self) -> None:
        """Refuse to differentiate with values that were written in place after this op used them."""
        versions = getattr(self, "versions", ())
        if versions:
            tensors = [t for t in self.inputs if isinstance(t, Tensor)]
            for k, (t, seen) in enumerate(zip(tensors, versions)):
                if t._counter[0] != seen and self.reads_value_of(k):
                    raise RuntimeError(
                        f"a tensor that {type(self).__name__} needs for its gradient was changed in place after "
                        f"the op used it: its input {k} ({t.dtype} {t.shape}) is at version {t._version}, the op "
                        f"saw version {seen} (an optimiser's step and += write in place). Run backward() before "
                        "the write, or compute the loss again after it."
                    )
        if self.saves_output and getattr(self, "output_counter", (0,))[0]:
            raise RuntimeError(
                f"the output of {type(self).__name__}, which it needs for its gradient, was changed in place after "
                "the op made it (e.g. by +=): write to a copy instead (y = y + 1, not y += 1)"
            )

    def reads_value_of(self, k: int) -> bool:
        """Whether backward reads the value of tensor input k (so a write to it since forward matters):
        yes, unless an op knows better (a product reads a factor only for the other's gradient)."""
        return True

    @property
    def xp(self):
        return backend.array_module(self.device)


def _with_constants(cls: type, args: tuple, tensors: list) -> tuple[tuple, list]:
    """apply's arguments with every array made a constant tensor on the tensors' device (other values,
    such as a clamp's bound, stay as they are), and the tensors among them."""
    if not tensors:
        raise TypeError(
            f"{cls.__name__} takes tensors, got {', '.join(type(a).__name__ for a in args) or 'nothing'}: "
            "make an array a tensor first (minidl.tensor(array))"
        )
    device = tensors[0].device
    args = tuple(Tensor(a, device=device) if backend.is_array(a) else a for a in args)
    return args, [a for a in args if isinstance(a, Tensor)]
