"""The reverse-mode engine: the backward walk (exercise 2), unbroadcast (exercise 1), and grad.

run_backward sends a gradient (a Tensor) from a root tensor to the leaves in topological order,
asking each node for its inputs' gradients (Function.input_grads, which runs the op's backward).
Tensor.backward runs the walk under no_grad for a first-order backward (the backwards' ops then
record nothing) and with grad mode on for backward(create_graph=True), so that the gradients are
graphs of their own. grad() returns the gradients of outputs with respect to given inputs without
touching any .grad, as torch.autograd.grad.
"""

from __future__ import annotations

from collections.abc import Sequence

from .mode import grad_mode, is_grad_enabled
from .tensor import Tensor, writable_data


def _count_uses(root: Tensor) -> dict[int, int]:
    """For every tensor reachable from root: how many inputs of nodes it is (its uses)."""
    uses: dict[int, int] = {}
    stack, seen = [root], {id(root)}
    while stack:
        t = stack.pop()
        if t._node is None:
            continue
        if t._node.released:
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
                if gx.data.shape != x.data.shape:
                    raise AssertionError(f"{type(node).__name__}.backward gave shape {gx.shape} for {x.shape}")
                if gx.data.dtype != x.data.dtype:  # as PyTorch's engine: a gradient has its input's dtype
                    gx = gx.to(dtype=x.dtype)
                grads[id(x)] = grads[id(x)] + gx if id(x) in grads else gx
            waiting[id(x)] -= 1
            if waiting[id(x)] == 0:
                ready.append(x)
        if not retain_graph:  # free what the node saved and its inputs (activations): a kept loss costs bytes
            node.release()
    ### END SOLUTION


def accumulate(leaf: Tensor, g: Tensor, taken: set[int]) -> None:
    """Add the gradient g into leaf.grad. In a first-order backward g's array becomes the .grad
    without a copy unless it is a view or another leaf holds it already (`taken`: the ids of the
    arrays leaves hold), and is added into the .grad's array after; under create_graph g is added
    by an op, so the sum stays differentiable."""
    if is_grad_enabled():  # create_graph
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    elif leaf.grad is None:
        fresh = g.data.base is None and id(g.data) not in taken
        leaf.grad = Tensor._wrap(g.data if fresh else g.data.copy(), leaf.device)
        taken.add(id(leaf.grad.data))
    else:  # into the .grad's own array, as PyTorch: `g0 = x.grad.numpy()` (cpu) sees the next backward's sum
        writable_data(leaf.grad)[...] += g.data


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
    if len(outputs) == 1:
        root, seed = outputs[0], grad_outputs[0]
    else:  # several outputs: differentiate their weighted sum
        for k, (out, v) in enumerate(zip(outputs, grad_outputs)):
            if v is None and out.numel() != 1:
                raise RuntimeError(f"grad: output {k} has shape {out.shape}: give its grad_outputs (or reduce it)")
            if create_graph and isinstance(v, Tensor) and v.requires_grad:
                raise NotImplementedError(
                    f"grad: with several outputs, grad_outputs {k} requires grad under create_graph: the result "
                    "would not be differentiable with respect to it; call grad() once per output and add them"
                )
        weights = [v.detach() if isinstance(v, Tensor) else v for v in grad_outputs]  # constants of the sum
        with grad_mode(True):  # recorded also inside no_grad(), as the outputs' graphs were
            root = sum((out * v).sum() if v is not None else out.sum() for out, v in zip(outputs, weights))
        seed = None
    # the walk runs with every input made a leaf (so it stops there), and every leaf's .grad kept aside
    ids = {id(t) for t in inputs}
    for t in inputs:
        if t._node is not None and any(id(u) in ids for u in _upstream(t)):
            raise NotImplementedError("grad: an input computed from another input is not supported")
    graph = [root, *_upstream(root)]
    held = {id(t): (t, t._grad) for t in [*graph, *inputs] if t._node is None or id(t) in ids}
    cut = {id(t): (t, t._node) for t in inputs if t._node is not None}
    try:
        for t, _ in held.values():
            t._grad = None
        for t, _ in cut.values():
            t._node = None
        if not root.requires_grad:
            raise RuntimeError("grad: the outputs do not require grad: no input of their graph requires grad")
        # as PyTorch: no work off the paths to the inputs
        root._backward(seed, retain_graph, create_graph, needs=_needs_for(graph, inputs))
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


def _needs_for(graph: list[Tensor], inputs: list[Tensor]) -> dict:
    """For a walk from root (graph: root and every tensor upstream of it) that only wants the gradients
    of `inputs`: each node on a path from an input to root, with its needs_grad narrowed to the tensor
    inputs on such a path, where that drops one (a backward then skips the others' work: the weight
    and bias gradients, when grad() asks for the input's). Whatever a backward still returns for the
    others reaches only leaves whose .grad grad() puts back."""
    consumers: dict[int, list[Tensor]] = {}  # tensor id -> the tensors computed from it
    for t in graph:
        for parent in getattr(t._node, "inputs", ()):
            if isinstance(parent, Tensor):
                consumers.setdefault(id(parent), []).append(t)
    reached, stack = {id(t) for t in inputs}, list(inputs)  # the inputs and everything computed from them
    while stack:
        for t in consumers.get(id(stack.pop()), ()):
            if id(t) not in reached:
                reached.add(id(t))
                stack.append(t)
    narrowed = {}
    for t in graph:
        if t._node is not None and id(t) in reached:
            node = t._node
            parents = [x for x in node.inputs if isinstance(x, Tensor)]
            own = node._needs_grad  # not what an outer walk (a backward calling grad()) narrowed it to
            needs = tuple(need and id(x) in reached for x, need in zip(parents, own, strict=True))
            if needs != own:
                narrowed[node] = needs
    return narrowed


def _upstream(root: Tensor, stop: Tensor | None = None) -> list[Tensor]:
    """The tensors that root was computed from (root excluded), through every recorded node; `stop`, where
    met, is listed but what it was computed from is not walked."""
    found, stack, seen = [], [root], {id(root)}
    while stack:
        t = stack.pop()
        for parent in getattr(t._node, "inputs", ()) if t is not stop else ():
            if isinstance(parent, Tensor) and id(parent) not in seen:
                seen.add(id(parent))
                found.append(parent)
                stack.append(parent)
    return found


def unbroadcast(grad, shape: Sequence[int]):
    """Sum a broadcast gradient back to `shape` (NumPy broadcasting rules)."""
    ### BEGIN SOLUTION exercise 1
    if grad.shape == tuple(shape):  # nothing was broadcast (the common case)
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad
    ### END SOLUTION
