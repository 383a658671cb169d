"""A lab sheet's kernel in the student's process: it runs the sheet's cells and answers for their values.

The grader (sheet_grading.py) sends the cells it runs here one by one (the student's solution
cells and the teacher's ordinary cells; never a test cell), then asks for the names a test cell
reads. A value crosses as data (wire.py: NumPy arrays, numbers, strings, lists, dicts; a Tensor
as its NumPy array); anything else (a function, a model) stays here and crosses as a handle,
("<object>", number, type name), which the grader calls or reads attributes of through
these probes. An argument the grader sends as ("<tensor>", array, requires_grad) becomes a
Tensor on the sheet's device.
"""

from __future__ import annotations

import os

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor

HANDLE, TENSOR = "<object>", "<tensor>"
_namespace: dict = {"__name__": "__main__"}
_objects: list = []


def encode(value):
    """value as the grader receives it: data as it is, a Tensor as a NumPy array, anything else a handle."""
    if isinstance(value, Tensor):
        return backend.to_numpy(value.data)
    if value is None or isinstance(value, bool | int | float | str | np.ndarray | np.generic):
        return value
    if isinstance(value, list | tuple):
        return type(value)(encode(v) for v in value)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: encode(v) for k, v in value.items()}
    _objects.append(value)
    return (HANDLE, len(_objects) - 1, type(value).__name__)


def tagged(value, tag: str) -> bool:
    """Whether value is a (tag, ..., ...) triple: a handle or a tensor as the wire carries them."""
    return isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str) and value[0] == tag


def decode(value, device: str):
    """What the grader sent, with handles and tensors made objects again."""
    if tagged(value, HANDLE):
        return _objects[value[1]]
    if tagged(value, TENSOR):
        return Tensor(value[1], requires_grad=bool(value[2]), device=device, dtype=value[1].dtype)
    if isinstance(value, list | tuple):
        return type(value)(decode(v, device) for v in value)
    if isinstance(value, dict):
        return {k: decode(v, device) for k, v in value.items()}
    return value


def sheet_run(device: str, source: str, name: str) -> str:
    """Run one cell's source in the sheet's namespace; "" if it ran, else the error it raised, in a line."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures are drawn, never shown
    try:
        exec(compile(source, name, "exec"), _namespace)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return ""


def sheet_get(device: str, name: str):
    """The value of a name the notebook defined."""
    if name not in _namespace:
        raise NameError(f"name {name!r} is not defined by your notebook (did a cell above fail?)")
    return encode(_namespace[name])


def sheet_attr(device: str, handle, attribute: str):
    return encode(getattr(decode(handle, device), attribute))


def sheet_call(device: str, handle, args, kwargs):
    return encode(decode(handle, device)(*decode(args, device), **decode(kwargs, device)))
