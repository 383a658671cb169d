"""gradcheck itself: it names the wrong element and refuses float32. Every op's derivatives are
checked from the op table, in tests/framework/test_ops.py."""

import pytest
from conftest import leaf

import minidl as md


def test_gradcheck_reports_the_wrong_element():
    class Wrong(md.Function):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * 3  # should be 2x

    with pytest.raises(md.GradcheckError, match=r"input 0 .* at element \(0,\)"):
        md.gradcheck(lambda x: Wrong.apply(x), [leaf([1.0, 2.0])])


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        md.gradcheck(lambda x: x * 2, [md.tensor([1.0], requires_grad=True)])
