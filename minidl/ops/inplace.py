"""In-place writes (`t += u`, `-=`, `*=`, `/=`, `t[index] = u`) as PyTorch does them.

The result of `t op u` is written into t's array (so every view of t and the base it is a
view of see it) and t's version counter is bumped (so a graph that saved the old values
refuses to differentiate with the new ones). Where grad mode records and the result needs
a gradient, t becomes that op's output, as PyTorch rebases t's history; the ops that read t
before the write keep its old history (`y = t * 2; t *= 3`: y's gradient does not go through
the 3), except views of t, which share its values and follow it.

Refused as in PyTorch: a leaf that requires grad while grad mode records (write under
no_grad(), as an optimiser's step does), a result that does not fit t's shape (t is not
broadcast) and a result whose dtype t cannot hold (`int_tensor /= 2`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..autograd.engine import _upstream
from ..autograd.mode import is_grad_enabled
from ..autograd.tensor import Tensor, writable_data


def in_place(t: Tensor, op: Callable[[Tensor, object], Tensor], other, symbol: str) -> Tensor:
    """t op= other: op(t, other) written into t's array; returns t (what Python binds to the name).
    `symbol` names the write in messages ("+=", "t[...] =")."""
    base = _base(t)
    if base.requires_grad and base.is_leaf and is_grad_enabled():
        what = "a leaf tensor" if base is t else "a view of a leaf tensor"
        raise RuntimeError(
            f"{symbol} on {what} that requires grad ({base.dtype} {base.shape}) would change it behind autograd's "
            f"back: write it under minidl.no_grad() (as an optimiser step does), or compute a new tensor instead"
        )
    before = t.detach()  # t's array and version counter under another name, holding t's place in the graph
    before.requires_grad, before._node = t.requires_grad, t._node
    result = op(before, before if other is t else other)  # t op= t: both operands the old t
    if result.shape != t.shape:
        raise RuntimeError(
            f"{symbol}: the result has shape {result.shape}, which does not fit the tensor written to, of shape "
            f"{t.shape} (an in-place op broadcasts only its other operand)"
        )
    if not np.can_cast(result.dtype, t.dtype, "same_kind"):
        raise RuntimeError(f"{symbol}: the result is {result.dtype}, which a {t.dtype} tensor cannot hold in place")
    target = t.data if getattr(t.data.flags, "writeable", True) else writable_data(t)  # a view writes its base
    target[...] = result.data
    t.mark_changed()
    if result.requires_grad:  # t is now the op's output: its gradient flows through the op to `before`
        _keep_old_history(t, before, other)
        t._node, t.requires_grad = result._node, True
    return t


def _keep_old_history(t: Tensor, before: Tensor, other) -> None:
    """Each op that read t before this write takes `before` (t's old history) as that input instead, so
    that its gradient does not flow through the write. An op whose output views t's storage (a slice,
    a reshape) stays on t, whose values it shares, and one of t's readers for the next write; unless
    the write's other operand came from it (`t[0] = t[1]`), which would make t its own input."""
    views, feeding = [], None
    for ref in t._users or ():
        node = ref()
        if node is None or node.released:
            continue
        if node.aliases_input:
            feeding = _computed_from(other, t) if feeding is None else feeding  # once, if a view asks
            if id(node) not in feeding:
                views.append(ref)
                continue
        node.inputs = tuple(before if x is t else x for x in node.inputs)
    t._users = views


def _base(t: Tensor) -> Tensor:
    """The tensor whose array t views through recorded view ops (reshape, permute, slicing), or t."""
    while t._node is not None and t._node.makes_view and getattr(t._node, "inputs", ()):
        source = t._node.inputs[0]
        if source._counter is not t._counter:  # that op copied (an index array, a non-contiguous reshape)
            break
        t = source
    return t


def _computed_from(other, t: Tensor) -> set[int]:
    """The ids of the nodes that computed `other`, back to t (t's own history is not walked)."""
    if not isinstance(other, Tensor):
        return set()
    return {id(u._node) for u in [other, *_upstream(other, stop=t)] if u is not t and u._node is not None}
