"""The grader's messages to and from the student's process: plain values and NumPy arrays, never pickles.

A message is a frame: its length (8 bytes, little-endian), the length of a JSON header (8 bytes),
the header, then the arrays it names in .npy format, read back with allow_pickle=False, so a
message from the student's process can hold data and nothing that runs. Values are None, bool,
int, float, str, lists, tuples, dicts with str keys and NumPy arrays (a NumPy scalar arrives as
a 0-d array).
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import time

import numpy as np

LIMIT = 1 << 30  # the largest message read (bytes): the grader's replies are megabytes
_LENGTH = struct.Struct("<Q")


class WireError(ValueError):
    """A message that is not one: malformed, too long, or holding something other than data."""


def pack(value) -> bytes:
    """The frame that carries `value`."""
    arrays: list[bytes] = []

    def encode(v):
        if isinstance(v, np.ndarray | np.generic):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(v), allow_pickle=False)
            arrays.append(buffer.getvalue())
            return {"array": len(arrays) - 1}
        if isinstance(v, tuple):
            return {"tuple": [encode(x) for x in v]}
        if isinstance(v, list):
            return [encode(x) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError(f"a message's dicts have str keys, got {sorted(map(repr, v))}")
            return {"dict": {k: encode(x) for k, x in v.items()}}
        if v is None or isinstance(v, bool | int | float | str):
            return v
        raise TypeError(f"a message holds plain values and NumPy arrays, got a {type(v).__name__}")

    header = json.dumps({"value": encode(value), "arrays": [len(a) for a in arrays]}).encode()
    body = _LENGTH.pack(len(header)) + header + b"".join(arrays)
    return _LENGTH.pack(len(body)) + body


def unpack(body: bytes):
    """The value a frame's body carries; WireError if it is not a message."""
    try:
        (size,) = _LENGTH.unpack_from(body)
        header = json.loads(body[_LENGTH.size : _LENGTH.size + size])
        offset, arrays = _LENGTH.size + size, []
        for length in header["arrays"]:
            arrays.append(np.lib.format.read_array(io.BytesIO(body[offset : offset + length]), allow_pickle=False))
            offset += length
        return _decode(header["value"], arrays)
    except WireError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, struct.error) as e:
        raise WireError(f"an unreadable message ({type(e).__name__}: {e})") from None


def _decode(v, arrays: list[np.ndarray]):
    if isinstance(v, list):
        return [_decode(x, arrays) for x in v]
    if isinstance(v, dict) and len(v) == 1:
        ((kind, inner),) = v.items()
        if kind == "array" and type(inner) is int and 0 <= inner < len(arrays):
            return arrays[inner]
        if kind == "tuple" and isinstance(inner, list):
            return tuple(_decode(x, arrays) for x in inner)
        if kind == "dict" and isinstance(inner, dict):
            return {k: _decode(x, arrays) for k, x in inner.items()}
    if isinstance(v, dict):
        raise WireError(f"an unreadable message: {json.dumps(v)[:80]}")
    return v


def send(fd: int, value, deadline: float | None = None) -> None:
    """Write `value` to `fd`; by `deadline` (time.monotonic()) if one is given, else TimeoutError
    (with a deadline, `fd` must be non-blocking)."""
    write(fd, pack(value), deadline)


def write(fd: int, frame: bytes, deadline: float | None = None) -> None:
    """Write a packed frame to `fd` (as send does)."""
    data = memoryview(frame)
    while data:
        _wait(fd, deadline, for_writing=True)
        data = data[os.write(fd, data) :]


def receive(fd: int, deadline: float | None = None):
    """The next value from `fd`: EOFError if it was closed first, TimeoutError at `deadline`."""
    (length,) = _LENGTH.unpack(_read(fd, _LENGTH.size, deadline))
    if length > LIMIT:
        raise WireError(f"a message of {length} bytes, more than the {LIMIT} read")
    return unpack(_read(fd, length, deadline))


def _read(fd: int, count: int, deadline: float | None) -> bytes:
    chunks, left = [], count
    while left:
        _wait(fd, deadline, for_writing=False)
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _wait(fd: int, deadline: float | None, for_writing: bool) -> None:
    if deadline is None:
        return
    left = max(deadline - time.monotonic(), 0)
    readable, writable, _ = select.select([] if for_writing else [fd], [fd] if for_writing else [], [], left)
    if not (writable or readable):
        raise TimeoutError
