"""A strict stand-in for CuPy: minidl's cuda path, tested on a machine without a GPU.

NumPy computes underneath; CuPy's rules are enforced on top, so code that passes here
does not break on a GPU for want of a rule. Each rule is an entry of RULES, which cites the
lines of CuPy's source (v13.6.0 and v14.2.0) that show it, and the code that applies it names
it by _rule(name). In short:
  - a cupy.ndarray never turns into a NumPy array implicitly (np.asarray, __array__,
    mixing with NumPy arrays in one operation: TypeError, as in CuPy); transfers are
    explicit (.get(), .item(), float(), cupy.asnumpy) and counted as host syncs;
  - reductions give 0-d device arrays, not host scalars, as in CuPy;
  - only names that real CuPy has exist (module functions, ndarray methods, the
    random Generator's methods), from names.json, which make_names.py writes from the
    real CuPy wheels (the names every listed version has);
  - cupy.RawModule compiles the kernel code with minidl's CPU emulator and runs it;
    its kernels take device arrays and NumPy scalars only (a Python int would reach a
    kernel as a 64-bit long long);
  - fresh memory (cupy.empty) holds NaN, as uninitialised GPU memory holds garbage;
  - stream capture (Stream.begin_capture / end_capture, Graph.launch) as CUDA does it: while
    a stream captures, operations are recorded and not run (their fresh outputs hold NaN, in
    place writes and kernels do not happen, the random generators do not advance), a host
    transfer, an operation on another stream or a cuBLAS call (matmul, dot, einsum, ... of
    floats) is an error; Graph.launch runs the recording again, writing each recorded output
    into the same memory;
  - the random generator is not NumPy's default (CuPy's is cuRAND's XORWOW): tests compare a
    device's draws with its own, never with NumPy's.
`counters` counts host syncs, uploads, launches of CuPy's own kernels and of RawModule
kernels; tests read it to prove that a training step stays on the device.
"""

from __future__ import annotations

import contextlib
import copy
import json
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as _np

_NAMES = json.loads((Path(__file__).resolve().parents[1] / "names.json").read_text())
MODULE_NAMES, NDARRAY_NAMES = frozenset(_NAMES["cupy"]), frozenset(_NAMES["ndarray"])
GENERATOR_NAMES, UFUNC_NAMES = frozenset(_NAMES["random.Generator"]), frozenset(_NAMES["ufunc"])
__version__ = "14.2.0"  # the newest version whose names the stand-in offers
STANDIN = True  # how tests tell the stand-in from the real CuPy


@dataclass(frozen=True)
class Rule:
    """One behaviour of CuPy (or of CUDA as CuPy meets it) that the stand-in enforces or imitates,
    with the lines of CuPy's source that show it, at tags v13.6.0 and v14.2.0 of github.com/cupy/cupy.
    Each place in this file that applies a rule names it by _rule(name); tests/test_gpu_path.py
    checks that every rule cites both versions and is applied somewhere."""

    what: str
    v13: str  # "file:lines" at v13.6.0
    v14: str  # "file:lines" at v14.2.0


RULES = {
    "no-implicit-host-array": Rule(
        "np.asarray(device array) and __array__ raise TypeError; transfers are explicit (.get())",
        "cupy/_core/core.pyx:1577-1583", "cupy/_core/core.pyx:1803-1809"),
    "no-mixing-with-numpy": Rule(
        "a NumPy array as an operand of a CuPy operation raises TypeError ('Unsupported type')",
        "cupy/_core/_kernel.pyx:127-146",
        "cupy/_core/_kernel.pyx:147-156, cupy/_core/_scalar.pyx:344"),
    "reductions-give-device-arrays": Rule(
        "a reduction returns a 0-d cupy.ndarray (its output argument), never a host scalar",
        "cupy/_core/_reduction.pyx:340-343", "cupy/_core/_reduction.pyx:347-350"),
    "only-cupys-names": Rule(
        "cupy has only its own names: anything else is AttributeError (names.json, written by make_names.py "
        "from the wheels)", "cupy/__init__.py:1083-1087",
        "cupy/__init__.py:1-1161 (no module __getattr__: Python's own AttributeError)"),
    "empty-is-uninitialised": Rule(
        "cupy.empty allocates without writing: the memory holds whatever was there",
        "cupy/_creation/basic.py:13-32", "cupy/_creation/basic.py:15-34"),
    "asarray-keeps-device-arrays": Rule(
        "cupy.asarray of a cupy.ndarray of the same dtype is that array (no copy); of host data, an upload",
        "cupy/_creation/from_data.py:56-90", "cupy/_creation/from_data.py:59-96"),
    "ascontiguousarray-of-0d-is-1d": Rule(
        "cupy.ascontiguousarray of a 0-d array returns shape (1,) (a ravel view, or a copy for another dtype)",
        "cupy/_core/core.pyx:2908-2926", "cupy/_core/core.pyx:3221-3239"),
    "kernel-scalars-by-type": Rule(
        "a RawKernel argument: a Python int goes as int64 (long long), a float as double, a NumPy scalar as "
        "its own type; the stand-in takes device arrays and NumPy scalars only",
        "cupy/cuda/function.pyx:105-155", "cupy/cuda/function.pyx:53-82, cupy/_core/_scalar.pyx:300-316"),
    "grid-within-cudas-limits": Rule(
        "a launch whose grid is outside CUDA's limits fails (cudaErrorInvalidConfiguration from the driver)",
        "cupy/cuda/function.pyx:168-210 (_launch)", "cupy/cuda/function.pyx:92-133 (_launch)"),
    "no-capture-on-the-legacy-stream": Rule(
        "Stream.begin_capture on the null (legacy default) stream raises RuntimeError",
        "cupy/cuda/stream.pyx:376-379", "cupy/cuda/stream.pyx:391-394"),
    "capture-is-relaxed": Rule(
        "begin_capture defaults to cudaStreamCaptureModeRelaxed, so the memory pool may allocate while a "
        "stream captures (the stand-in's fresh outputs are allocated then)",
        "cupy/cuda/stream.pyx:380-389", "cupy/cuda/stream.pyx:395-404"),
    "capture-records-without-running": Rule(
        "while a stream captures, CuPy's kernels are enqueued into the graph, not run; Graph.launch runs "
        "them all again on the same memory", "cupy/cuda/graph.pyx:50-64", "cupy/cuda/graph.pyx:48-63"),
    "no-host-sync-while-capturing": Rule(
        "a device -> host copy (.get(), float(), .item()) synchronizes the stream, which a capturing stream "
        "refuses (cudaErrorStreamCaptureUnsupported)", "cupy/_core/core.pyx:1873-1984 (get)",
        "cupy/_core/core.pyx:2098-2209 (get)"),
    "no-upload-while-capturing": Rule(
        "an upload (cupy.asarray of host data) is an async copy from a staging buffer: captured, a graph would "
        "copy that buffer again on every replay; minidl must not upload while capturing, the stand-in refuses",
        "cupy/_core/core.pyx:2708-2772 (_array_default)", "cupy/_core/core.pyx:3020-3105 (_array_default)"),
    "one-stream-while-capturing": Rule(
        "work goes to the current stream; work on the legacy default stream while another stream captures "
        "is an error (cudaErrorStreamCaptureImplicit)", "cupy/cuda/stream.pyx:376-389",
        "cupy/cuda/stream.pyx:391-404"),
    "no-cublas-while-capturing": Rule(
        "matmul, dot, vdot, inner, tensordot, einsum and linalg of float or complex arrays call cuBLAS, whose "
        "every wrapper first calls setStream, which raises NotImplementedError('calling cuBLAS API during "
        "stream capture is currently unsupported') while the stream captures (integers use CuPy's own kernels)",
        "cupy_backends/cuda/libs/cublas.pyx:485-498, 509-511; cupy/_core/_routines_linalg.pyx:382-393, "
        "631, 762-767; cupy/linalg/_product.py:87, 249, 334; cupy/linalg/_einsum.py:418",
        "cupy_backends/cuda/libs/cublas.pyx:642-655, 666-668; cupy/_core/_routines_linalg.pyx:384-395, "
        "635, 774-779; cupy/linalg/_product.py:124, 335, 420; cupy/linalg/_einsum.py:417"),
    "an-invalidated-capture-fails-to-end": Rule(
        "an operation refused while a stream captures (a sync, work on the legacy stream) invalidates the "
        "capture; cudaStreamEndCapture then ends it, returns no graph and cudaErrorStreamCaptureInvalidated, "
        "which end_capture raises (check_status: CUDARuntimeError, a RuntimeError)",
        "cupy/cuda/stream.pyx:392-412, cupy_backends/cuda/api/runtime.pyx:996-1004",
        "cupy/cuda/stream.pyx:407-425, cupy_backends/cuda/api/runtime.pyx:1027-1033"),
    "generator-is-xorwow": Rule(
        "cupy.random.default_rng(seed) is Generator(XORWOW(seed)), cuRAND's generator, not NumPy's PCG64: "
        "the stand-in draws from another bit generator (SFC64), so nothing may expect NumPy's numbers",
        "cupy/random/__init__.py:20-45", "cupy/random/__init__.py:22-47"),
    "generator-state-on-the-device": Rule(
        "a Generator's state lives in device memory and its draws launch on the current stream: a draw being "
        "captured does not advance it, each replay of the graph does",
        "cupy/random/_bit_generator.pyx:84, cupy/random/_generator_api.pyx:1058-1059",
        "cupy/random/_bit_generator.pyx:84, cupy/random/_generator_api.pyx:1068-1069"),
}  # fmt: skip


def _rule(name: str) -> Rule:
    """The rule that the code at the call applies (KeyError for a rule that is not in RULES)."""
    return RULES[name]


# calls that make views or read metadata: no kernel runs on a GPU
_NO_LAUNCH = frozenset(
    "reshape transpose swapaxes squeeze view T real imag diagonal broadcast_to expand_dims as_strided "
    "ravel_view shape dtype ndim size strides nbytes itemsize flags base".split()
)


@dataclass
class Counters:
    """What the device was asked to do since reset()."""

    syncs: int = 0  # device -> host transfers (each waits for the device)
    uploads: int = 0  # host -> device transfers
    launches: int = 0  # CuPy's own kernels (elementwise, reductions, copies, fills, random)
    kernel_launches: int = 0  # RawModule kernels
    graph_launches: int = 0  # Graph.launch calls (their operations count as launches too)
    kernels: list = field(default_factory=list)  # (name, grid, block, shared_mem) of each RawModule launch

    def reset(self) -> None:
        self.__init__()


counters = Counters()


class _Refused(TypeError):
    pass


def _unwrap(value):
    """The NumPy value underneath a stand-in value; a NumPy array is refused, as CuPy refuses it."""
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, _np.ndarray):
        _rule("no-mixing-with-numpy")
        raise _Refused(f"Unsupported type {type(value)}: CuPy does not mix host (NumPy) and device arrays")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    """Device arrays for NumPy results; NumPy scalars become 0-d device arrays, as CuPy returns them."""
    if isinstance(value, _np.ndarray):
        return ndarray._of(value)
    if isinstance(value, _np.generic):
        _rule("reductions-give-device-arrays")
        return ndarray._of(_np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


# operations that write into an existing array (besides __i*__ operators and out=; "at" is ufunc.at)
_IN_PLACE = frozenset(
    "__setitem__ copyto put place putmask fill_diagonal fill sort partition resize itemset at".split()
)


def _run(function, name: str, args: tuple, kwargs: dict, while_capturing=None, is_view: bool = False):
    """Run one device operation on NumPy values (a NumPy scalar result becomes a 0-d array, the
    memory a recorded graph writes again). While a stream captures, record it instead: an in
    place operation does not happen; a fresh result is computed (by while_capturing if given:
    a call without side effects) only for its shape and then poisoned (_poison), as CUDA would
    have only allocated it."""
    if _capturing is None:
        result = function(*args, **kwargs)
        if name not in _NO_LAUNCH and not is_view:
            counters.launches += 1
        return _np.asarray(result) if isinstance(result, _np.generic) else result
    _check_capture_stream(name)
    if name in _CUBLAS or name.startswith("linalg."):
        _refuse_cublas(name, (getattr(function, "__self__", None), args, kwargs))
    if name in _IN_PLACE or (name.startswith("__i") and name != "__invert__") or "out" in kwargs:
        _capturing.record(lambda: function(*args, **kwargs))
        out = kwargs.get("out")
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    _rule("capture-records-without-running")
    result = (while_capturing or function)(*args, **kwargs)
    result = _np.asarray(result) if isinstance(result, _np.generic) else result
    inputs = list(_arrays((getattr(function, "__self__", None), args, kwargs)))  # a method's array too
    fresh = [a for a in _arrays(result) if not any(_np.may_share_memory(a, x) for x in inputs)]
    if fresh:  # views need no replay: they read the memory the recorded operations write
        _capturing.record(lambda: _copy_into(result, function(*args, **kwargs)))
        for a in fresh:
            _poison(a)
    return result


# what CuPy computes with cuBLAS for float and complex arrays (integers take CuPy's own kernels)
_CUBLAS = frozenset("matmul __matmul__ __rmatmul__ __imatmul__ dot vdot inner tensordot einsum".split())


def _refuse_cublas(name: str, operands) -> None:
    if any(a.dtype.kind in "fc" for a in _arrays(operands)):
        _rule("no-cublas-while-capturing")
        raise NotImplementedError(
            f"calling cuBLAS API during stream capture is currently unsupported ({name} of float arrays)"
        )


def _arrays(value):
    if isinstance(value, _np.ndarray):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays(v)
    elif isinstance(value, dict):
        yield from _arrays(list(value.values()))


def _copy_into(recorded, result) -> None:
    counters.launches += 1
    if isinstance(recorded, _np.ndarray):
        _np.copyto(recorded, result)
    elif isinstance(recorded, (list, tuple)):
        for r, v in zip(recorded, result):
            _copy_into(r, v)


def _poison(array: _np.ndarray) -> None:
    """What a recording leaves in a fresh output: NaN for floats; 0 for integers, so that later
    operations that index with them (run only for their shapes) stay in bounds."""
    if array.dtype.kind in "fc":
        array[...] = _np.nan
    elif array.dtype.kind in "iu":
        array[...] = 0


def _device_call(function, name: str, while_capturing=None):
    def call(*args, **kwargs):
        uargs, ukwargs = _unwrap(args), {k: _unwrap(v) for k, v in kwargs.items()}
        return _wrap(_run(function, name, uargs, ukwargs, while_capturing))

    call.__name__ = name
    return call


class ndarray:
    """A device array: NumPy memory that only CuPy's operations may touch."""

    __array_priority__ = 100
    __slots__ = ("_array",)

    def __init__(self, shape, dtype=float):
        _rule("empty-is-uninitialised")  # NaN shows a read of memory nothing wrote
        self._array = _np.full(shape, _np.nan, dtype) if _np.dtype(dtype).kind == "f" else _np.empty(shape, dtype)

    @classmethod
    def _of(cls, array: _np.ndarray) -> ndarray:
        out = cls.__new__(cls)
        out._array = array
        return out

    def __getattr__(self, name: str):
        if name not in NDARRAY_NAMES:
            _rule("only-cupys-names")
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        value = getattr(self._array, name)
        return _device_call(value, name) if callable(value) else _wrap(value)

    # explicit transfers: each one waits for the device
    def get(self, stream=None, order="C", out=None) -> _np.ndarray:
        _sync("ndarray.get")
        return self._array.copy()

    def item(self):
        _sync("ndarray.item")
        return self._array.item()

    def tolist(self):
        _sync("ndarray.tolist")
        return self._array.tolist()

    def __float__(self):
        _sync("float(ndarray)")
        return float(self._array)

    def __int__(self):
        _sync("int(ndarray)")
        return int(self._array)

    def __bool__(self):
        _sync("bool(ndarray)")
        return bool(self._array)

    def __array__(self, *args, **kwargs):
        _rule("no-implicit-host-array")
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy "
            "array explicitly."
        )

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(isinstance(x, _np.ndarray) and not isinstance(x, ndarray) for x in inputs):
            return NotImplemented
        return _device_call(getattr(ufunc, method), ufunc.__name__)(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        if func.__name__ not in MODULE_NAMES:
            raise TypeError(f"CuPy has no {func.__name__}")
        return _device_call(func, func.__name__)(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self):
        return (ndarray._of(row) for row in self._array)

    def __repr__(self) -> str:
        return f"array({self._array!r}, device='cuda (stand-in)')"

    __hash__ = None


def _operator(name: str):
    def method(self, *args):
        is_view = name == "__getitem__" and _is_basic(args[0])
        result = _run(getattr(self._array, name), name, _unwrap(args), {}, is_view=is_view)
        if result is NotImplemented:
            return NotImplemented
        return self if name.startswith("__i") and name not in ("__invert__",) else _wrap(result)

    method.__name__ = name
    return method


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in parts)


for _name in sorted(NDARRAY_NAMES):
    if (
        _name in {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__getitem__", "__setitem__"}
        or (
            _name.startswith("__")
            and _name[2:-2].lstrip("ri")
            in {
                "add",
                "sub",
                "mul",
                "truediv",
                "floordiv",
                "mod",
                "pow",
                "matmul",
                "and",
                "or",
                "xor",
                "lshift",
                "shift",
                "divmod",
            }  # fmt: skip
        )
        or _name in {"__neg__", "__pos__", "__abs__", "__invert__"}
    ):
        setattr(ndarray, _name, _operator(_name))


# ----------------------------------------------------------------- the module
def _sync(what: str) -> None:
    """A device -> host transfer: it waits for the device, which a capturing stream forbids."""
    if _capturing is not None:
        _rule("no-host-sync-while-capturing")
        _rule("an-invalidated-capture-fails-to-end")
        _capturing.invalidated = what
        raise RuntimeError(f"cudaErrorStreamCaptureUnsupported: {what} waits for the device while a stream captures")
    counters.syncs += 1


def _upload(value, dtype=None):
    if _capturing is not None:
        _rule("no-upload-while-capturing")
        raise RuntimeError(
            "cudaErrorStreamCaptureUnsupported: a host -> device copy while a stream captures (a graph would copy "
            "the same host bytes on every replay)"
        )
    counters.uploads += 1
    return ndarray._of(_np.array(value, dtype=dtype, copy=True))


def asarray(a, dtype=None, order=None, *, blocking=False):
    _rule("asarray-keeps-device-arrays")
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else _device_call(a._array.astype, "astype")(dtype)
    return _upload(a, dtype)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        return _device_call(lambda a: _np.array(a, dtype=dtype, copy=True), "array")(obj)
    return _upload(obj, dtype)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get()
    return _np.asarray(a)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.ascontiguousarray takes a cupy.ndarray, got {type(a)}")
    if a.ndim == 0:
        _rule("ascontiguousarray-of-0d-is-1d")
        if dtype is None or a.dtype == dtype:
            return ndarray._of(a._array.reshape(1))  # a view, as CuPy's ravel
        return _device_call(lambda x: _np.array(x, dtype=dtype).reshape(1), "ascontiguousarray")(a)
    if a._array.flags.c_contiguous and (dtype is None or a.dtype == dtype):
        return a
    return _device_call(lambda x: _np.array(x, dtype=dtype, order="C", copy=True), "ascontiguousarray")(a)


def empty(shape, dtype=float, order="C"):
    return ndarray(shape, dtype)


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    return ndarray(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


class _Ufunc:
    """A CuPy ufunc: callable, with .at/.reduce/... where CuPy has them."""

    def __init__(self, ufunc):
        self._ufunc = ufunc

    def __call__(self, *args, **kwargs):
        return _device_call(self._ufunc, self._ufunc.__name__)(*args, **kwargs)

    def __getattr__(self, name: str):
        if name not in UFUNC_NAMES:
            raise AttributeError(f"cupy.ufunc has no attribute {name!r}")
        return _device_call(getattr(self._ufunc, name), name)


_stride_tricks = types.SimpleNamespace(as_strided=_device_call(_np.lib.stride_tricks.as_strided, "as_strided"))
lib = types.SimpleNamespace(stride_tricks=_stride_tricks)


_MISSING = object()


def __getattr__(name: str):
    if name not in MODULE_NAMES:
        _rule("only-cupys-names")
        raise AttributeError(f"module 'cupy' has no attribute {name!r}")
    if name == "linalg":
        return linalg
    value = getattr(_np, name, _MISSING)
    if value is _MISSING:
        raise NotImplementedError(f"the CuPy stand-in does not offer cupy.{name} (CuPy has it)")
    if isinstance(value, _np.ufunc):
        return _Ufunc(value)
    if isinstance(value, type) or not callable(value):  # dtypes (float32, ...), constants (pi, inf, newaxis)
        return value
    return _device_call(value, name)


# ------------------------------------------------------------ random numbers
class _Generator:
    """cupy.random.Generator: only the methods CuPy's has (no normal, no permutation), drawing from a
    bit generator that is not NumPy's default, as CuPy's (XORWOW) is not."""

    def __init__(self, seed):
        _rule("generator-is-xorwow")
        self._generator = _np.random.Generator(_np.random.SFC64(seed))

    def __getattr__(self, name: str):
        if name not in GENERATOR_NAMES:
            _rule("only-cupys-names")
            raise AttributeError(f"'cupy.random.Generator' object has no attribute {name!r}")
        _rule("generator-state-on-the-device")  # while a stream captures, the draw runs on a copy
        shadow = lambda *a, **k: getattr(copy.deepcopy(self._generator), name)(*a, **k)  # noqa: E731
        return _device_call(getattr(self._generator, name), name, while_capturing=shadow)


random = types.SimpleNamespace(default_rng=_Generator, Generator=_Generator)


class _Linalg:
    """cupy.linalg: NumPy's functions on device arrays (cuBLAS and cuSOLVER on a GPU)."""

    def __getattr__(self, name: str):
        return _device_call(getattr(_np.linalg, name), f"linalg.{name}")


linalg = _Linalg()


# ---------------------------------------------------------------- CUDA itself
class _Runtime:
    """cupy.cuda.runtime: the device it pretends to be (a GPU of compute capability 9.0)."""

    @staticmethod
    def getDeviceCount() -> int:
        return 1

    @staticmethod
    def getDeviceProperties(device: int) -> dict:
        return {"name": b"CuPy stand-in (kernels on minidl's CPU emulator)", "major": 9, "minor": 0,
                "totalGlobalMem": 2**30}  # fmt: skip

    @staticmethod
    def runtimeGetVersion() -> int:
        return 12080

    @staticmethod
    def driverGetVersion() -> int:
        return 12080

    @staticmethod
    def deviceSynchronize() -> None:
        _sync("cudaDeviceSynchronize")


class _Event:
    """cupy.cuda.Event: here it records the host clock."""

    def __init__(self, *args, **kwargs):
        self.seconds = None

    def record(self, stream=None) -> None:
        self.seconds = time.perf_counter()

    def synchronize(self) -> None:
        _sync("Event.synchronize")


def _get_elapsed_time(start: _Event, end: _Event) -> float:
    """Milliseconds between two recorded events, as cupy.cuda.get_elapsed_time."""
    return (end.seconds - start.seconds) * 1e3


class Stream:
    """cupy.cuda.Stream: `with stream:` makes it current; begin_capture/end_capture record a Graph."""

    null: Stream

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.is_null = null

    def __enter__(self) -> Stream:
        _streams.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _streams.pop()

    def synchronize(self) -> None:
        _sync("Stream.synchronize")

    def begin_capture(self, mode=None) -> None:
        global _capturing
        if self.is_null:
            _rule("no-capture-on-the-legacy-stream")
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if _capturing is not None:
            raise RuntimeError("cudaErrorIllegalState: a stream is capturing already")
        _rule("capture-is-relaxed")  # fresh outputs are allocated while recording (see _run)
        _capturing = _Recording(self)

    def end_capture(self) -> Graph:
        global _capturing
        if _capturing is None or _capturing.stream is not self:
            raise RuntimeError("cudaErrorIllegalState: this stream is not capturing")
        recording, _capturing = _capturing, None
        if recording.invalidated is not None:
            _rule("an-invalidated-capture-fails-to-end")
            raise RuntimeError(
                f"cudaErrorStreamCaptureInvalidated: the capture was invalidated by {recording.invalidated}"
            )
        return Graph(recording.operations)

    def is_capturing(self) -> bool:
        return _capturing is not None and _capturing.stream is self


Stream.null = Stream(null=True)
_streams: list[Stream] = [Stream.null]  # the current stream is the last


def get_current_stream() -> Stream:
    return _streams[-1]


@dataclass
class _Recording:
    """What a capturing stream has recorded: a callable per operation that runs it again."""

    stream: Stream
    operations: list = field(default_factory=list)
    invalidated: str | None = None  # the refused operation that invalidated the capture, if one was

    def record(self, operation) -> None:
        self.operations.append(operation)


_capturing: _Recording | None = None


def _check_capture_stream(name: str) -> None:
    if _streams[-1] is not _capturing.stream:
        _rule("one-stream-while-capturing")
        _rule("an-invalidated-capture-fails-to-end")
        _capturing.invalidated = f"{name} on another stream"
        raise RuntimeError(
            f"cudaErrorStreamCaptureImplicit: {name} runs on another stream while a stream captures "
            "(the legacy default stream waits for the capturing one)"
        )


class Graph:
    """cupy.cuda.Graph: launch() runs every recorded operation again, in order."""

    def __init__(self, operations: list):
        self._operations = operations

    def launch(self, stream=None) -> None:
        if _capturing is not None:
            raise RuntimeError("cudaErrorStreamCaptureUnsupported: launching a graph while a stream captures")
        _rule("capture-records-without-running")
        counters.graph_launches += 1
        for operation in self._operations:
            operation()


class MemoryPool:
    """cupy.cuda.MemoryPool: here NumPy allocates; the pool only has to be kept with its graph."""

    def malloc(self, size: int):
        raise NotImplementedError("the CuPy stand-in allocates with NumPy")


@contextlib.contextmanager
def _using_allocator(allocator=None):
    if allocator is not None and not callable(allocator):
        raise TypeError(f"using_allocator takes a callable, got {type(allocator).__name__}")
    yield


cuda = types.SimpleNamespace(
    runtime=_Runtime(), Event=_Event, get_elapsed_time=_get_elapsed_time, Stream=Stream, Graph=Graph,
    get_current_stream=get_current_stream, MemoryPool=MemoryPool, using_allocator=_using_allocator,
)  # fmt: skip


class RawModule:
    """cupy.RawModule: the code is compiled by minidl's CPU emulator (AddressSanitizer on)."""

    built: list[RawModule] = []  # every module compiled, for tests that inspect the code

    def __init__(self, code: str, options=(), name_expressions=None, **kwargs):
        from minidl.runtime.emulator import EmuModule

        self.code, self.options = code, tuple(options)
        self._module = EmuModule(code=code, options=options, name_expressions=name_expressions or ())
        RawModule.built.append(self)

    def get_function(self, name: str):
        return _RawKernel(self._module.get_function(name), name)


class _RawKernel:
    def __init__(self, function, name: str):
        self._function, self.name = function, name

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        unwrapped = []
        for k, arg in enumerate(args):
            if isinstance(arg, ndarray):
                unwrapped.append(arg._array)
            elif isinstance(arg, _np.generic):
                unwrapped.append(arg)
            else:
                _rule("kernel-scalars-by-type")
                raise TypeError(
                    f"{self.name}: argument {k} is {type(arg).__name__}; pass device arrays and NumPy scalars of "
                    "the parameter's type (CuPy turns a Python int into a 64-bit long long)"
                )
        grid3, block3 = (tuple(d) if isinstance(d, tuple) else (d,) for d in (grid, block))
        if min(grid3) < 1 or max(grid3[1:], default=1) > 65535 or grid3[0] > 2**31 - 1:
            _rule("grid-within-cudas-limits")
            raise RuntimeError(f"{self.name}: cudaErrorInvalidConfiguration: grid {grid3}")

        def run() -> None:
            counters.kernel_launches += 1
            counters.kernels.append((self.name, grid3, block3, shared_mem))
            self._function(grid3, block3, tuple(unwrapped), shared_mem=shared_mem)

        if _capturing is None:
            run()
        else:  # recorded, not run: its outputs keep what they held
            _check_capture_stream(self.name)
            _capturing.record(run)
