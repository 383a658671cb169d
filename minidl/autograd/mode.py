"""Grad mode: whether ops record the graph, per thread (as PyTorch's), and the blocks and decorators
that set it (no_grad, enable_grad); and what this thread's backward walk asks of the nodes
(narrowed_walk: grad() wants the gradients on the paths to its inputs only)."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable


class _GradMode(threading.local):
    enabled = True  # each thread starts with gradients on, as in PyTorch


_grad_mode = _GradMode()


class _Walk(threading.local):
    needs = None  # this thread's backward walk: {node: its needs_grad narrowed for the walk}, or None


_walk = _Walk()


class narrowed_walk:
    """Inside the with block, a node in `needs` ({node: needs_grad}) reports those needs_grad instead of its
    own (Function.needs_grad); needs=None: every node its own. Each walk sets its own, so a backward() or
    grad() that a backward calls sees its walk's, and the outer walk's are back after it."""

    def __init__(self, needs: dict | None) -> None:
        self.needs = needs

    def __enter__(self) -> None:
        self.previous, _walk.needs = _walk.needs, self.needs

    def __exit__(self, *exc) -> None:
        _walk.needs = self.previous


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
