"""minidl.save / minidl.load: nested dicts of arrays as .npz, written atomically.

Nested dicts (an optimizer's state_dict, a checkpoint) are flattened with "/" between
keys and rebuilt on load; an empty dict, and a list or tuple that holds tensors, arrays or
dicts, are kept with a marker entry (its items under "0", "1", ...), so that everything
save() accepts comes back as it was, at most MAX_DEPTH levels deep. A list of numbers is one
array (a ragged one is refused). Keys are strings or ints (an int key k is stored as "#k" and
comes back an int); a string key may not hold "/" or NUL, start with "#" or be a marker.
Values are tensors, arrays of numbers, booleans or strings, numbers and strings; anything
else (None, Python objects) is refused when saving.

load() opens regular files only (a FIFO or a device would block or never end), reads with
allow_pickle=False, and checks every entry before it reads one: a damaged or crafted file is
one clear error that names it. What its entries declare they hold, decompressed, may not pass
MAX_EXPANSION times the file's size (save() stores entries uncompressed: about once), so a
small file cannot make load() allocate gigabytes. Temporary files of atomic writes are named
.<target>.<pid>.<random>.tmp and created with the umask's permissions (the umask itself, which
belongs to the whole process, is never touched); a write removes those of its own target whose
process died.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import stat
import zipfile
from pathlib import Path

import numpy as np

from . import backend
from .autograd.tensor import Tensor
from .backend import is_array

EMPTY = "__empty_dict__"  # the leaf that stands for an empty dict
LIST = "__list__"  # the leaf that says: this dict of "0", "1", ... was a list
TUPLE = "__tuple__"  # ... was a tuple
SEQUENCES = {LIST: list, TUPLE: tuple}
MAX_DEPTH = 100  # the most dicts, lists and tuples nested in one another (a checkpoint has about 5)
MAX_EXPANSION = 16  # the most the entries may declare, decompressed, per byte of the file
_INT = "#"  # the prefix of an int key's name


def _name(key, prefix: str) -> str:
    """The stored name of `key` under `prefix`; an error for a key that would not come back as it is."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{prefix}{_INT}{key}"
    if not isinstance(key, str):
        raise TypeError(f"save: key {prefix}{key!r} is {type(key).__name__}; keys are strings or ints")
    if "/" in key or "\0" in key or key.startswith(_INT) or key in (EMPTY, *SEQUENCES):
        raise ValueError(
            f"save: key {prefix}{key!r} may not contain '/' or NUL, start with '{_INT}' or be one of "
            f"{[EMPTY, *SEQUENCES]}"
        )
    try:
        key.encode()
    except UnicodeEncodeError:
        raise ValueError(f"save: key {prefix}{key!r} is not valid text (a file name holds UTF-8 only)") from None
    if zipfile.ZipInfo(prefix + key).filename != prefix + key:  # the zip layer would store another name
        raise ValueError(f"save: key {prefix}{key!r} would not come back from a zip file as it is")
    return prefix + key


def _flatten(tree: dict, prefix: str = "", depth: int = 1) -> dict[str, np.ndarray]:
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {prefix.rstrip('/')[:80]!r}... nests dicts, lists and tuples more than "
                         f"{MAX_DEPTH} deep")  # fmt: skip
    flat = {}
    if not tree and prefix:
        flat[prefix + EMPTY] = np.zeros(0)
    for key, value in tree.items():
        name = _name(key, prefix)
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/", depth + 1))
        elif isinstance(value, list | tuple) and _holds_arrays(value, name, depth + 1):
            flat.update(_flatten({str(i): v for i, v in enumerate(value)}, name + "/", depth + 1))
            flat[f"{name}/{LIST if isinstance(value, list) else TUPLE}"] = np.zeros(0)
        else:
            flat[name] = _leaf(name, value)
    return flat


def _holds_arrays(value, name: str, depth: int) -> bool:
    """Whether a list or tuple is saved item by item (not as one array): it holds, at any depth, a tensor,
    an array or a dict."""
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {name[:80]!r} nests lists and tuples more than {MAX_DEPTH} deep")
    return any(
        isinstance(v, Tensor | dict)
        or (is_array(v) and not isinstance(v, np.generic))
        or (isinstance(v, list | tuple) and _holds_arrays(v, name, depth + 1))
        for v in value
    )


def _leaf(name: str, value) -> np.ndarray:
    if value is None:
        raise TypeError(f"save: {name!r} is None; save stores tensors, arrays, numbers and strings")
    try:
        array = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
    except ValueError as e:
        if "inhomogeneous" not in str(e):
            raise ValueError(f"save: {name!r} cannot be one array: {e}") from None
        raise ValueError(f"save: {name!r} is a ragged list (its rows differ in length); save a list of "
                         "tensors or arrays, or rows of one length") from None  # fmt: skip
    if array.dtype.kind not in "biufcU":
        raise TypeError(f"save: {name!r} is {type(value).__name__} of dtype {array.dtype}; it would need pickling")
    return array


def _key(part: str):
    return int(part[len(_INT) :]) if part.startswith(_INT) and part[len(_INT) :].lstrip("-").isdigit() else part


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for depth, part in enumerate(parents):
            node = node.setdefault(_key(part), {})
            if not isinstance(node, dict):
                raise ValueError(f"entry {name!r}: {'/'.join(parents[: depth + 1])!r} is also an array")
        if leaf != EMPTY:
            if _key(leaf) in node:
                raise ValueError(f"entry {name!r} is also a folder of entries")
            node[_key(leaf)] = value
    return _listed(tree)


def _listed(node):
    """node with every dict that holds a LIST or TUPLE marker (and keys "0".."n-1") made a list or tuple."""
    if not isinstance(node, dict):
        return node
    items = {k: _listed(v) for k, v in node.items()}
    markers = [marker for marker in SEQUENCES if items.pop(marker, None) is not None]
    if not markers:
        return items
    if len(markers) > 1 or sorted(items) != sorted(str(i) for i in range(len(items))):
        raise ValueError(f"a list's entries are {sorted(items)} (markers {markers}), not 0 to {len(items) - 1}")
    return SEQUENCES[markers[0]](items[str(i)] for i in range(len(items)))


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of writes to `path` (.<name>.<pid>.<random>.tmp, not those of another target
    whose name starts alike) whose process died (killed mid-write)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid, _, token = stale.name[len(path.name) + 2 : -len(".tmp")].partition(".")
        if pid.isdigit() and token and "." not in token and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            except PermissionError:  # alive, another user's
                pass


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`: a crash
    never leaves a half-written file. The file gets the umask's permissions, as open() gives."""
    path = _writable_path(path)
    _remove_stale_temporaries(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a Ctrl-C may come after the rename too: then there is nothing to remove
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _writable_path(path: str | os.PathLike) -> Path:
    """`path` as a Path, its folders made; an error naming it for an empty path, a folder, or a folder
    on the way that is a file."""
    if not str(path):
        raise ValueError("the path to write is empty: give a file name such as 'model.npz'")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"'{path}' is a folder: give the name of a file to write, e.g. '{path / 'model.npz'}'")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(f"cannot write '{path}': '{folder}' is a file, not a folder")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _temporary(path: Path) -> tuple[int, Path]:
    """A new file .<name>.<pid>.<random>.tmp beside `path`, opened for writing, with mode 0o666 less
    the umask (the kernel applies it: the process's umask is never changed)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def save(state: dict, path: str | os.PathLike) -> None:
    """Write a (nested) dict of tensors, arrays, numbers and strings to an .npz file, atomically."""
    if not isinstance(state, dict):
        raise TypeError(f"save takes a dict, got {type(state).__name__}")
    flat = _flatten(state)
    atomic_write(path, lambda f: _write_npz(f, flat))


def _write_npz(file, flat: dict[str, np.ndarray]) -> None:
    """What np.savez writes (an uncompressed zip of .npy entries), without its own keyword arguments
    (a key named 'allow_pickle' or 'file' is an entry like any other)."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in flat.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def _checked_entries(archive: zipfile.ZipFile, file_bytes: int) -> None:
    """Every entry is a .npy array of numbers or strings whose header fits the bytes it holds, each
    name once, and all of them together declare at most MAX_EXPANSION times the file's bytes."""
    infos = archive.infolist()
    declared = sum(info.file_size for info in infos)
    if declared > MAX_EXPANSION * max(file_bytes, 1):
        raise ValueError(f"its entries would expand to {declared} bytes from a file of {file_bytes} "
                         f"(more than {MAX_EXPANSION} times)")  # fmt: skip
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise ValueError(f"it holds entries of one name twice: {sorted({n for n in names if names.count(n) > 1})}")
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ValueError(f"entry {info.filename!r} is not an array")
        if info.filename.count("/") > MAX_DEPTH:
            raise ValueError(f"entry {info.filename[:80]!r}... nests more than {MAX_DEPTH} deep")
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
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file (a FIFO, a socket or a device); minidl loads files")
    try:
        with open(path, "rb") as file:
            opened = os.fstat(file.fileno())
            if not stat.S_ISREG(opened.st_mode):  # replaced since the check above
                raise ValueError("not a regular file")
            with zipfile.ZipFile(file) as archive:
                _checked_entries(archive, opened.st_size)
                flat = {info.filename[: -len(".npy")]: _read_entry(archive, info) for info in archive.infolist()}
        tree = _unflatten(flat)
    except Exception as e:  # zip, header and array errors of every kind: one message, no advice to unpickle
        detail = str(e).split("allow_pickle")[0].rstrip(" ,;:(")
        raise ValueError(f"{path} is not a readable minidl .npz file (damaged or not written by minidl.save): "
                         f"{type(e).__name__}: {detail}") from None  # fmt: skip
    return tree


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)
