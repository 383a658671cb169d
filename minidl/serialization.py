"""minidl.save / minidl.load: flat dicts of arrays as .npz, written atomically.

Nested dicts (an optimizer's state_dict, a checkpoint) are flattened with "/" between
keys and rebuilt on load. Files are read with allow_pickle=False: loading never runs
code from a file.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import backend
from .autograd.tensor import Tensor


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if "/" in str(key):
            raise ValueError(f"save: key {name!r} may not contain '/'")
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            flat.update(_flatten({str(i): v for i, v in enumerate(value)}, name + "/"))
        else:
            flat[name] = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
    return flat


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(state: dict, path: str | os.PathLike) -> None:
    """Write a (nested) dict of tensors, arrays and numbers to an .npz file, atomically."""
    flat = _flatten(state)
    atomic_write(path, lambda f: np.savez(f, **flat))


def load(path: str | os.PathLike) -> dict:
    """Read what save() wrote: a (nested) dict of NumPy arrays. A damaged file is a clear error."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            flat = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable minidl .npz file ({type(e).__name__}: {e})") from e
    return _unflatten(flat)
