"""A training step recorded once as a CUDA graph and replayed: one launch per step instead of
one per kernel, for a step of many small kernels (Model C issues about a hundred).

    step = CapturedStep(train_step, optimizer)    # train_step(x, rng) -> loss: zero_grad, backward and
    for (x,) in batches:                           # optimizer.step() inside, as Experiment.fit's step
        loss = step(x, rng)

For each set of input shapes (a short last batch is a set of its own):
  1. the first call runs train_step as usual: a warm-up, in which the kernels compile and the
     optimizer makes its state;
  2. the second copies the inputs into static buffers and records train_step on a side stream
     (nothing runs while it records), with a memory pool of its own that lives with the graph;
     then it launches the graph once, which is that step;
  3. later calls copy the inputs into the static buffers and launch the graph again.
A graph replays what it recorded: the same kernels on the same memory with the same numbers.
So everything that changes from step to step must live in device memory: the inputs (copied
in), the parameters and the optimizer's moments (updated in place), Adam's step count and
bias corrections (advanced by a kernel), the random generator's state. Arguments that are not
tensors (a generator) must be the same objects on every call, and the parameters and the
optimizer's state the same arrays (a load_state_dict after recording needs a new
CapturedStep). After each call the parameters' .grad are the gradients of that step; the
returned loss is a copy, safe to keep.
"""

from __future__ import annotations

from collections.abc import Callable

from . import backend
from .autograd.tensor import Tensor
from .optim import Optimizer
from .runtime import profile


class CaptureError(RuntimeError):
    """A step that cannot be recorded as a graph; the message says why and what to do."""


def _state_arrays(optimizer: Optimizer) -> list:
    """The arrays a step updates in place: the parameters, the optimizer's state and counters."""
    arrays = [p.data for p in optimizer.params]
    for state in optimizer.state.values():
        arrays += [v for v in state.values() if hasattr(v, "shape")]
    for counters in getattr(optimizer, "counters", {}).values():
        arrays += list(counters)
    return arrays


def _end_failed_capture(stream) -> None:
    """End a recording that failed. The failure (a host read, say) may have invalidated the capture;
    CUDA then ends it all the same and reports cudaErrorStreamCaptureInvalidated, which says less
    than the failure itself: the caller raises that one."""
    try:
        stream.end_capture()
    except RuntimeError:  # CuPy's CUDARuntimeError is one
        pass


class _Graph:
    """One recorded step: its graph and stream, what it reads and writes, and what must outlive it
    (keep: its memory pool and the generators it draws from, which it reads by address)."""

    def __init__(self, graph, stream, inputs: list[Tensor], loss: Tensor, grads: list, state: list, keep: tuple):
        self.graph, self.stream = graph, stream
        self.inputs, self.loss, self.grads, self.state, self.keep = inputs, loss, grads, state, keep


class CapturedStep:
    """train_step(*inputs) -> loss, recorded as a CUDA graph per set of input shapes and replayed."""

    def __init__(self, train_step: Callable[..., Tensor], optimizer: Optimizer):
        devices = {p.device for p in optimizer.params}
        if devices != {"cuda"}:
            raise CaptureError(
                f"capturing a training step records CUDA graphs: the parameters must be on cuda, they are on "
                f"{sorted(devices)}; train without capture on {', '.join(sorted(devices - {'cuda'}))}"
            )
        if profile.PROFILE:
            raise CaptureError(
                "MINIDL_PROFILE times every launch with events, which a graph would record once and never "
                "read: profile without capture, or capture without MINIDL_PROFILE"
            )
        self.train_step, self.optimizer = train_step, optimizer
        self.graphs: dict[tuple, _Graph] = {}
        self.warmed_up: set[tuple] = set()
        self.others: tuple | None = None  # the arguments that are not tensors, fixed at the first call

    def __call__(self, *args) -> Tensor:
        inputs = [a for a in args if isinstance(a, Tensor)]
        others = tuple(a for a in args if not isinstance(a, Tensor))
        self._check(inputs, others)
        key = tuple((i, t.shape, t.dtype.name) for i, t in enumerate(args) if isinstance(t, Tensor))
        if key not in self.warmed_up:
            self.warmed_up.add(key)
            return self.train_step(*args)
        if key not in self.graphs:
            self.graphs[key] = self._record(args)
        return self._replay(self.graphs[key], inputs)

    def _check(self, inputs: list[Tensor], others: tuple) -> None:
        for i, t in enumerate(inputs):
            if t.device != "cuda" or t.requires_grad:
                raise CaptureError(
                    f"a captured step takes data tensors on cuda; input {i} is on {t.device}"
                    f"{' and requires grad' if t.requires_grad else ''}"
                )
        if self.others is None:
            self.others = others
        elif len(others) != len(self.others) or any(a is not b for a, b in zip(others, self.others)):
            raise CaptureError(
                "the arguments that are not tensors changed since the first call: a graph replays the objects it "
                f"recorded (was {self.others!r}, now {others!r}); pass the same ones, or make a new CapturedStep"
            )

    def _record(self, args) -> _Graph:
        cp = backend.cupy()
        stream, pool = cp.cuda.Stream(non_blocking=False), cp.cuda.MemoryPool()
        static = [Tensor._wrap(a.data.copy(), "cuda") if isinstance(a, Tensor) else a for a in args]
        params = self.optimizer.params
        data_before = [p.data for p in params]
        self.optimizer.zero_grad()  # the recorded backward makes the gradients afresh
        with cp.cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture()
            try:
                loss = self.train_step(*static)
            except Exception as error:
                _end_failed_capture(stream)
                raise CaptureError(
                    f"the step could not be recorded as a graph: {error}\nA captured step must run on the device "
                    "alone: nothing read back to the host (.item(), float(), .numpy()), nothing uploaded"
                ) from error
            graph = stream.end_capture()
        replaced = [i for i, (p, before) in enumerate(zip(params, data_before)) if p.data is not before]
        if replaced:
            for p, before in zip(params, data_before):  # the recording ran nothing: the arrays before hold the model
                p.data = before
            raise CaptureError(
                f"{type(self.optimizer).__name__} replaced parameters {replaced} by new arrays instead of updating "
                "them in place; a graph would read the old arrays on every replay. Capture needs an optimizer "
                "whose update is in place (Adam)"
            )
        if not isinstance(loss, Tensor) or loss.device != "cuda":
            raise CaptureError(f"train_step must return the loss as a tensor on cuda, got {type(loss).__name__}")
        inputs = [t for t in static if isinstance(t, Tensor)]
        grads, state = [p.grad for p in params], _state_arrays(self.optimizer)
        return _Graph(graph, stream, inputs, loss.detach(), grads, state, keep=(pool, backend.live_generators()))

    def _replay(self, recorded: _Graph, inputs: list[Tensor]) -> Tensor:
        now = _state_arrays(self.optimizer)
        if len(now) != len(recorded.state) or any(a is not b for a, b in zip(now, recorded.state)):
            raise CaptureError(
                "the parameters or the optimizer's state are other arrays than when the step was recorded "
                "(load_state_dict, or a model moved?); the graph would update the old ones: make a new CapturedStep"
            )
        with recorded.stream:
            for buffer, t in zip(recorded.inputs, inputs):
                buffer.data[...] = t.data
            recorded.graph.launch(recorded.stream)
            loss = recorded.loss.data.copy()
        for p, grad in zip(self.optimizer.params, recorded.grads):
            p.grad = grad
        return Tensor._wrap(loss, "cuda")
