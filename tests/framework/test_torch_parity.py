"""The optimisers against PyTorch, where torch is installed. Every op's values and first and second
derivatives are compared with PyTorch's from the op table, in tests/framework/test_ops.py."""

import numpy as np
import pytest

import minidl as md

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[bench]' to compare)")
rng = np.random.default_rng(0)


def test_optimisers_match_pytorch():
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    for ours_cls, theirs_cls, kw in [
        (md.optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (md.optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ]:
        ours, theirs = md.nn.Parameter(w0.copy()), torch.tensor(w0.copy(), requires_grad=True)
        o, t = ours_cls([ours], **kw), theirs_cls([theirs], **kw)
        for g in grads:
            ours.grad, theirs.grad = md.tensor(g), torch.tensor(g)
            o.step()
            t.step()
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
