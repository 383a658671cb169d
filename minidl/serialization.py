"""minidl.save / minidl.load: nested dicts of arrays as .npz, written atomically.

Nested dicts (an optimizer's state_dict, a checkpoint) are flattened with "/" between
keys and rebuilt on load; an empty dict is kept as a marker entry, so that everything
save() accepts comes back. Values are tensors, arrays of numbers, booleans or strings,
numbers and strings; anything else (None, Python objects) is refused when saving.
Files are read with allow_pickle=False, and every entry is checked before it is read: a
damaged or crafted file is one clear error that names it, and cannot make load()
allocate more memory than the file holds.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import backend
from .autograd.tensor import Tensor

EMPTY = "__empty_dict__"  # the leaf that stands for an empty dict
MAX_EXPANSION = 1000  # the most a compressed entry may grow when read (a zip bomb grows far more)


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    if not tree and prefix:
        flat[prefix + EMPTY] = np.zeros(0)
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if "/" in str(key) or str(key) == EMPTY:
            raise ValueError(f"save: key {name!r} may not contain '/' or be {EMPTY!r}")
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            flat.update(_flatten({str(i): v for i, v in enumerate(value)}, name + "/"))
        else:
            flat[name] = _leaf(name, value)
    return flat


def _leaf(name: str, value) -> np.ndarray:
    if value is None:
        raise TypeError(f"save: {name!r} is None; save stores tensors, arrays, numbers and strings")
    array = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in "biufcU":
        raise TypeError(f"save: {name!r} is {type(value).__name__} of dtype {array.dtype}; it would need pickling")
    return array


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        if leaf != EMPTY:
            node[leaf] = value
    return tree


def _creation_mode() -> int:
    """The permissions a new file gets from the umask (0o666 & ~umask), as open() would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of writes to `path` whose process died (killed mid-write)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2 :].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            except PermissionError:  # alive, another user's
                pass


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`: a crash
    never leaves a half-written file. The file gets the umask's permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), _creation_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(state: dict, path: str | os.PathLike) -> None:
    """Write a (nested) dict of tensors, arrays, numbers and strings to an .npz file, atomically."""
    if not isinstance(state, dict):
        raise TypeError(f"save takes a dict, got {type(state).__name__}")
    flat = _flatten(state)
    atomic_write(path, lambda f: np.savez(f, **flat))


def _checked_entries(archive: zipfile.ZipFile) -> None:
    """Every entry is a .npy array of numbers or strings whose header fits the bytes it holds."""
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ValueError(f"entry {info.filename!r} is not an array")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
            raise ValueError(f"entry {info.filename!r} would expand {info.file_size} bytes from {info.compress_size}")
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"entry {info.filename!r} has .npy format {version}, which minidl does not write")
            shape, _, dtype = read_header[version](stream)
            header = stream.tell()
        if dtype.hasobject or dtype.kind not in "biufcU":
            raise ValueError(f"entry {info.filename!r} holds Python objects ({dtype}), which minidl never loads")
        if int(np.prod(shape, dtype=object)) * dtype.itemsize != info.file_size - header:
            raise ValueError(f"entry {info.filename!r}: its header declares shape {shape} of {dtype}, "
                             f"which does not fit its {info.file_size - header} bytes")  # fmt: skip


def load(path: str | os.PathLike) -> dict:
    """Read what save() wrote: a (nested) dict of NumPy arrays. A damaged file is a clear error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a minidl .npz file")
    try:
        with zipfile.ZipFile(path) as archive:
            _checked_entries(archive)
        with np.load(path, allow_pickle=False) as npz:
            flat = {name: npz[name] for name in npz.files}
    except Exception as e:  # zip, header and array errors of every kind: one message, no advice to unpickle
        detail = str(e).split("allow_pickle")[0].rstrip(" ,;:(")
        raise ValueError(f"{path} is not a readable minidl .npz file (damaged or not written by minidl.save): "
                         f"{type(e).__name__}: {detail}") from None  # fmt: skip
    return _unflatten(flat)
