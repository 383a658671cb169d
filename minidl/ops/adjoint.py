"""Second derivatives of the ops that are linear in their input: upsample, avg_pool2d, and
max_pool2d once its argmax is fixed.

For such an op y = A x, backward is g ↦ Aᵀ g, itself linear in g; so backward(create_graph=True)
records Aᵀ g as an op of its own, Adjoint, whose gradient is A again. The linear op says how to
apply A once more: `again(array)` on arrays (the forward's own path: its kernel or NumPy/CuPy),
and `reapply(tensor)`, recorded. (For max-pool, A gathers each window's argmax: MaxGather.)
"""

from __future__ import annotations

from ..autograd.function import Function


class Adjoint(Function):
    """g -> Aᵀ g, the input gradient of `node` (a linear op) as an op: (node's output shape) -> (its input's)."""

    saves_inputs = False  # linear in g: its backward needs only the node

    def forward(self, g, node):
        self.save_for_backward(node)
        return node.input_grads(g)[0]

    def backward(self, gg):
        return self.saved[0].again(gg)

    def backward_graph(self, gg):
        return self.saved[0].reapply(gg)


class MaxGather(Function):
    """x -> the value of x at each window's argmax of a max-pool `node` (the argmax held fixed): the
    max-pool as a linear map, whose gradient is the max-pool's backward."""

    saves_inputs = False

    def forward(self, x, node):
        self.save_for_backward(node)
        return node.again(x)

    def backward(self, g):
        return self.saved[0].input_grads(g)[0]

    def backward_graph(self, g):
        return Adjoint.apply(g, node=self.saved[0])
