"""Function: one node of the graph, an op's forward and backward side by side, and grad mode.

An op subclasses Function and implements forward on arrays and backward from the output's
gradient to its inputs' (arrays), and backward_graph, the same maths on tensors, for
backward(create_graph=True). Function.apply runs forward through the op's array path or its
kernel path and records the node when grad mode is on (per thread, as PyTorch's).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable

from .. import backend
from ..runtime import runs_as_kernel
from .tensor import Tensor


class _GradMode(threading.local):
    enabled = True  # each thread starts with gradients on, as in PyTorch


_grad_mode = _GradMode()


class grad_mode:
    """This thread's grad mode set to `enabled` inside a with block, or around every call of a
    decorated function; a decorated generator function has it around each step of its body (as
    PyTorch's _DecoratorContextManager), not only while the generator is made."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        self.previous, _grad_mode.enabled = _grad_mode.enabled, self.enabled

    def __exit__(self, *exc) -> None:
        _grad_mode.enabled = self.previous

    def __call__(self, func: Callable) -> Callable:
        enabled = self.enabled  # each call takes a block of its own (calls may nest or interleave)
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def generator(*args, **kwargs):
                gen = func(*args, **kwargs)
                try:
                    with grad_mode(enabled):
                        response = gen.send(None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            with grad_mode(enabled):
                                gen.close()
                            raise
                        except BaseException as error:  # thrown in by the caller: on into the body
                            with grad_mode(enabled):
                                response = gen.throw(error)
                        else:
                            with grad_mode(enabled):
                                response = gen.send(request)
                except StopIteration as stop:
                    return stop.value

            return generator

        @functools.wraps(func)
        def call(*args, **kwargs):
            with grad_mode(enabled):
                return func(*args, **kwargs)

        return call


def no_grad() -> grad_mode:
    """Inside this block (or a function it decorates) ops record no graph, in this thread only."""
    return grad_mode(False)


def enable_grad() -> grad_mode:
    """Inside this block (or a function it decorates) ops record graphs again, also within no_grad()."""
    return grad_mode(True)


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


def is_array(value) -> bool:
    """A NumPy or CuPy array (an operand that ops take as a constant tensor)."""
    return hasattr(value, "__array_interface__") or hasattr(value, "__cuda_array_interface__")


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
    What backward needs from forward (arrays: inputs, outputs, masks, indices) it declares with
    one call, save_for_backward(...), and reads back as self.saved; options (shapes, strides)
    are plain attributes. After backward the engine calls release(), which drops exactly the
    saved values and the inputs, so a kept loss keeps the graph's structure, not its activations.
    """

    saves_inputs = True
    saves_output = False
    makes_view = False
    saved: tuple = ()

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
        if any(is_array(a) for a in args):  # an array operand is a constant tensor, so that backward sees it
            args = tuple(Tensor(a, device=device) if is_array(a) else a for a in args)
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
        if cls.makes_view and fn.xp.may_share_memory(out.data, arrays[0]):
            out._counter = tensors[0]._counter  # a view: one version counter with its base, as PyTorch's
        if _grad_mode.enabled and any(t.requires_grad for t in tensors):
            out.requires_grad = True
            out._node = fn
            fn.inputs = tuple(args)
            fn.needs_grad = tuple(t.requires_grad for t in tensors)
            if cls.saves_inputs:
                fn.versions = tuple(t._counter[0] for t in tensors)
            if cls.saves_output:
                fn.output_counter = out._counter  # at version 0, as the output is new
        return out

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def save_for_backward(self, *values) -> None:
        """Keep what backward needs (arrays, or the node of another op): the one place a node keeps them."""
        self.saved = values

    def release(self) -> None:
        """Drop the saved values and the inputs (after backward, without retain_graph); options stay."""
        self.saved, self.inputs, self.released = (), (), True

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
            if t._counter[0] != seen and self.reads_value_of(k):
                raise RuntimeError(
                    f"a tensor that {type(self).__name__} needs for its gradient was changed in place after the "
                    f"op used it: its input {k} ({t.dtype} {t.shape}) is at version {t._version}, the op saw "
                    f"version {seen} (an optimiser's step and += write in place). Run backward() before the "
                    "write, or compute the loss again after it."
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
