"""The CUDA kernels without a GPU: every .cu file compiles with NVRTC for the architectures
we target, and every kernel runs on the CPU emulator (the same source, through the same
launch code) against the NumPy implementation, in float64 and float32. The same cases run
on a real GPU when there is one (marker `gpu`)."""

import collections
import concurrent.futures
import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import KERNEL_DEVICES, host_only, needs_cxx
from hypothesis import given
from hypothesis import strategies as st
from test_gradcheck_ops import conv_case, pool_case

import minidl as md
from minidl import runtime
from minidl.lab import solutions
from minidl.lab.exercises import stubs
from minidl.nn import functional as F
from minidl.ops import conv
from minidl.runtime import compiler, profile, sources

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-5)}


# ------------------------------------------------------------------ NVRTC compile
CUPY_ADDS = ("-ftz=true",)  # what cupy.RawModule adds to our options (with -arch=sm_XX for the device)


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        pytest.skip("NVIDIA's NVRTC Python bindings are not installed (pip install cuda-bindings nvidia-cuda-nvrtc)")
    return nvrtc


def nvrtc_compile(source: str, arch: str, extra=(), code: str | None = None) -> tuple[str, dict[str, str]]:
    """Compile a kernel file as cupy.RawModule does (same code string, our options and CuPy's);
    returns NVRTC's log and the lowered (mangled) name of every instantiation. code: the
    file's text to compile instead (with its headers pasted in), e.g. a student copy's."""
    nvrtc = _nvrtc()
    code = sources.read_source(source) if code is None else code
    err, program = nvrtc.nvrtcCreateProgram(code.encode(), source.encode(), 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS
    names = sources.name_expressions(source)
    for name in names:
        nvrtc.nvrtcAddNameExpression(program, name.encode())
    options = [o.encode() for o in (*compiler.compile_options(source), *CUPY_ADDS, f"-arch={arch}", *extra)]
    (err,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
    _, size = nvrtc.nvrtcGetProgramLogSize(program)
    log = bytearray(size)  # NVRTC writes into it: never pass an immutable (possibly shared) bytes object
    nvrtc.nvrtcGetProgramLog(program, log)
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, log.decode(errors="replace")
    lowered = {}
    for name in names:  # every instantiation exists in the compiled program
        err, mangled = nvrtc.nvrtcGetLoweredName(program, name.encode())
        assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS and mangled
        lowered[name] = mangled.decode()
    err, cubin_size = nvrtc.nvrtcGetCUBINSize(program)
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS and cubin_size > 100
    nvrtc.nvrtcDestroyProgram(program)
    return log.decode(errors="replace"), lowered


@pytest.mark.parametrize("source", sources.sources())
@pytest.mark.parametrize("arch", compiler.ARCHITECTURES)
def test_kernel_compiles_with_nvrtc(source, arch):
    nvrtc_compile(source, arch)


@pytest.mark.parametrize("source", sources.sources())
def test_a_student_copys_kernels_compile_with_nvrtc(source):
    """The stubs of python -m minidl.lab student (a comment and minidl_trap) compile for a GPU."""
    code = sources.read_source(source)
    regions = solutions.regions_in(code, Path(source))
    nvrtc_compile(source, compiler.ARCHITECTURES[-1], code=solutions.blank(code, regions, stubs()))


@pytest.mark.parametrize("source", sources.sources())
@pytest.mark.parametrize("arch", compiler.ARCHITECTURES)
def test_float_kernels_keep_everything_in_registers(source, arch):
    """ptxas (inside NVRTC) reports each kernel's stack frame and spills: the float instantiations
    must have neither (an array indexed at run time, like conv2d_forward's accumulators once were,
    lands in slow local memory)."""
    log, lowered = nvrtc_compile(source, arch, extra=("--ptxas-options=-v",))
    for name, mangled in lowered.items():
        if not name.endswith("<float>") and "<" in name:
            continue
        found = re.search(rf"Function properties for {re.escape(mangled)}\n.*?(\d+) bytes stack frame, "
                          rf"(\d+) bytes spill stores, (\d+) bytes spill loads", log)  # fmt: skip
        assert found, f"ptxas reported nothing for {name}:\n{log}"
        assert found.groups() == ("0", "0", "0"), f"{name} on {arch}: {found.group(0)}"


@host_only
@needs_cxx
def test_compiler_messages_name_the_real_file_and_line(tmp_path, monkeypatch):
    """read_source pastes headers in; the compiler (g++, the reference) still names the line of the
    file where each mistake is, before and after the include, and sees no `#pragma once` in a main file."""
    (tmp_path / "helpers.cuh").write_text("#pragma once\n// a helper\nint helper() { return missing_in_header; }\n")
    (tmp_path / "kernel.cu").write_text(
        '// a kernel\nint before() { return missing_before; }\n#include "helpers.cuh"\n\n'
        '#include "helpers.cuh"\n\nint after() { return missing_after; }\n'
    )
    monkeypatch.setattr(sources, "SOURCE_DIR", tmp_path)
    code = sources.read_source("kernel.cu")
    result = subprocess.run(["g++", "-fsyntax-only", "-Wall", "-x", "c++", "-"], input=code, capture_output=True,
                            text=True)  # fmt: skip
    where = dict(re.findall(r"^([\w.]+:\d+):\d+: error: .(missing_\w+).", result.stderr, re.MULTILINE))
    assert where == {"kernel.cu:2": "missing_before", "helpers.cuh:3": "missing_in_header",
                     "kernel.cu:7": "missing_after"}, result.stderr  # fmt: skip
    assert "pragma once" not in result.stderr
    assert code.count("int helper()") == 1  # pasted once


def test_every_kernel_signature_is_read_from_the_sources():
    """launch() knows each kernel's parameters from the .cu text alone."""
    table = sources.kernels()
    assert {"conv2d_forward", "max_pool2d_forward", "sigmoid_loss_forward", "adam_update"} <= set(table)
    pool = table["max_pool2d_forward"]
    assert [str(p) for p in pool.params[:3]] == ["const T* x", "T* y", "int* argmax"]
    assert table["adam_update"].params[4] == sources.Param("count", "long long", pointer=False, const=False)
    code = sources.read_source("conv2d.cu")
    assert "__device__ T block_sum" in code and '#include "common.cuh"' not in code  # the header is in the code


# ------------------------------------------- kernels against the NumPy implementation
def _run_both(device, dtype, fn, *arrays):
    """fn's output and input gradients on the cpu (NumPy) and on `device` (kernels)."""
    results = []
    weights = None
    for dev in ("cpu", device):
        tensors = [md.tensor(a, requires_grad=True, device=dev, dtype=dtype) for a in arrays]
        out = fn(*tensors)
        if weights is None:
            weights = np.random.default_rng(0).standard_normal(out.shape)
        (out * md.tensor(weights, device=dev, dtype=dtype)).sum().backward()
        results.append([out.numpy()] + [t.grad.numpy() for t in tensors])
    return results


def _assert_same(results, dtype):
    for expect, got in zip(*results):
        assert got.dtype == expect.dtype
        np.testing.assert_allclose(got, expect, **TOLERANCE[dtype])


dtypes = st.sampled_from([np.float64, np.float32])


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@given(case=conv_case(), dtype=dtypes, seed=st.integers(0, 999))
def test_conv2d_kernels(device, case, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    w = rng.standard_normal((case["o"], case["c"], *case["k"]))
    b = rng.standard_normal(case["o"])
    results = _run_both(device, dtype, lambda x, w, b: F.conv2d(x, w, b, case["stride"], case["padding"]), x, w, b)
    _assert_same(results, dtype)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@given(case=conv_case(transpose=True), dtype=dtypes, seed=st.integers(0, 999))
def test_conv_transpose2d_kernels(device, case, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    w = rng.standard_normal((case["c"], case["o"], *case["k"]))
    b = rng.standard_normal(case["o"])
    kw = dict(stride=case["stride"], padding=case["padding"], output_padding=case["output_padding"])
    _assert_same(_run_both(device, dtype, lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), x, w, b), dtype)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("min_blocks", [1, conv.FORWARD_MIN_BLOCKS])
def test_conv_kernel_with_many_channels_and_large_images(device, min_blocks, monkeypatch):
    """More output channels than one block's group and more pixels than one tile (8×8): in
    groups of 64 (min_blocks 1) and of 4 (the default, as this grid is small)."""
    monkeypatch.setattr(conv, "FORWARD_MIN_BLOCKS", min_blocks)
    assert conv.forward_group(2, 70, 9) == (64 if min_blocks == 1 else 4)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 5, 19, 17)), rng.standard_normal((70, 5, 3, 3))
    _assert_same(_run_both(device, np.float64, lambda x, w: F.conv2d(x, w, None, 1, 1), x, w), np.float64)


def test_conv_forward_fills_a_gpu_on_small_images():
    """Model C at batch 128: its 7×7 layers (one tile per image) get groups of 16 channels,
    4 groups x 128 images = 512 blocks; its 14×14 layers (4 tiles) keep whole groups."""
    assert conv.forward_group(128, 64, 1) == 16
    assert conv.forward_group(128, 32, 4) == 32 and conv.forward_group(128, 64, 4) == 64
    assert conv.forward_group(1, 6, 1) == 4  # at least CONV_LANES


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_weight_gradient_splits_its_sum_and_repeats_bit_for_bit(device, dtype):
    """The split-K weight gradient with its bias row: m = N·Ho·Wo = 1350 in 5 splits (the last
    one shorter), O = 21 and C·kh·kw + 1 = 28 columns, neither a multiple of the 16×16 tile."""
    from minidl.ops.conv import SPLIT_MIN_CHUNK, conv2d_weight_grad, conv2d_weight_grad_kernel

    rng = np.random.default_rng(11)
    x, gy = rng.standard_normal((6, 3, 15, 15)).astype(dtype), rng.standard_normal((6, 21, 15, 15)).astype(dtype)
    assert 6 * 15 * 15 // SPLIT_MIN_CHUNK == 5
    on = [md.tensor(a, device=device, dtype=dtype).data for a in (x, gy)]
    runs = [conv2d_weight_grad_kernel(*on, (3, 3), (1, 1), (1, 1), with_bias=True) for _ in range(2)]
    (gw, gb), (gw_again, gb_again) = [[md.backend.to_numpy(a) for a in run] for run in runs]
    exact = conv2d_weight_grad(x.astype(np.float64), gy.astype(np.float64), (3, 3), (1, 1), (1, 1))
    # a sum of 1350 products: bound the error by the sum of their magnitudes (times ε of the dtype, with room)
    magnitude = conv2d_weight_grad(np.abs(x).astype(np.float64), np.abs(gy).astype(np.float64), (3, 3), (1, 1), (1, 1))
    assert (np.abs(gw - exact) <= 16 * np.finfo(dtype).eps * magnitude).all()
    np.testing.assert_allclose(gb, gy.astype(np.float64).sum(axis=(0, 2, 3)), atol=16 * np.finfo(dtype).eps * 1350)
    assert gw.tobytes() == gw_again.tobytes() and gb.tobytes() == gb_again.tobytes()
    _, no_bias = conv2d_weight_grad_kernel(*on, (3, 3), (1, 1), (1, 1))
    assert no_bias is None


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transposed_conv_bias_gradient_splits_its_sum_and_repeats_bit_for_bit(device, dtype):
    """m = N·Ho·Wo = 675 values per channel in 2 splits (338 and 337), 3 channels."""
    from minidl.ops.conv import SPLIT_MIN_CHUNK, bias_grad_kernel

    gy = np.random.default_rng(12).standard_normal((3, 3, 15, 15)).astype(dtype)
    assert 3 * 15 * 15 // SPLIT_MIN_CHUNK == 2
    on = md.tensor(gy, device=device, dtype=dtype).data
    gb, again = (md.backend.to_numpy(bias_grad_kernel(on)) for _ in range(2))
    exact, magnitude = gy.astype(np.float64).sum(axis=(0, 2, 3)), np.abs(gy.astype(np.float64)).sum(axis=(0, 2, 3))
    assert (np.abs(gb - exact) <= 16 * np.finfo(dtype).eps * magnitude).all() and gb.dtype == dtype
    assert gb.tobytes() == again.tobytes()


matmul_shapes = st.sampled_from(
    [((5, 7), (7, 3)), ((65, 17), (17, 130)), ((3, 1, 4, 5), (2, 5, 6)), ((6,), (6, 3)), ((2, 6), (6,)),
     ((2, 3, 70), (70, 2)), ((1, 1), (1, 1)), ((0, 4), (4, 3)), ((3, 0), (0, 2))]
)  # fmt: skip


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@given(shapes=matmul_shapes, dtype=dtypes, transpose=st.booleans(), seed=st.integers(0, 999))
def test_gemm_kernel_in_matmul(device, shapes, dtype, transpose, seed):
    """matmul's output and gradients through kernels/matmul.cu against NumPy's @, partial tiles, a
    batch broadcast and vectors included; a transposed operand goes in as stored (TRANS flag)."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    if transpose and b.ndim >= 2:
        b = np.ascontiguousarray(b.swapaxes(-1, -2))
        _assert_same(_run_both(device, dtype, lambda a, b: a @ b.transpose(-1, -2), a, b), dtype)
    else:
        _assert_same(_run_both(device, dtype, lambda a, b: a @ b, a, b), dtype)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@given(n=st.integers(1, 70), fan_in=st.integers(1, 40), fan_out=st.integers(1, 70), dtype=dtypes,
       seed=st.integers(0, 999))  # fmt: skip
def test_gemm_kernel_in_linear(device, n, fan_in, fan_out, dtype, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, fan_in)), rng.standard_normal((fan_out, fan_in)), rng.standard_normal(fan_out)
    _assert_same(_run_both(device, dtype, F.linear, x, w, b), dtype)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_linear_and_matmul_run_as_gemm_and_gradcheck(device, monkeypatch):
    """float64 finite differences through the kernel path; its launches prove that it is the kernel."""
    from minidl.ops import linalg

    launched = []
    monkeypatch.setattr(linalg, "launch", lambda name, *a, **k: launched.append(name) or runtime.launch(name, *a, **k))
    rng = np.random.default_rng(3)
    x = md.tensor(rng.standard_normal((3, 5)), requires_grad=True, device=device)
    w = md.tensor(rng.standard_normal((4, 5)), requires_grad=True, device=device)
    b = md.tensor(rng.standard_normal(4), requires_grad=True, device=device)
    F.linear(x, w, b).sum().backward()
    assert launched == ["gemm"] * 3  # forward, and the gradients of x and w
    assert md.gradcheck(F.linear, [x, w, b])
    assert md.gradcheck(lambda x, w: x[None] @ w.transpose(0, 1)[None], [x, w])


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_case(), dtype=dtypes, seed=st.integers(0, 999))
def test_pooling_kernels(device, kind, case, dtype, seed):
    x = np.random.default_rng(seed).permutation(np.prod(case["shape"])).reshape(case["shape"]) * 0.25  # no ties
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    fn = lambda x: pool(x, case["k"], case["stride"], case["padding"])  # noqa: E731
    _assert_same(_run_both(device, dtype, fn, x), dtype)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@given(
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    scale=st.sampled_from([1, 2, 3, 1.5, 0.5, (2, 3), 2.5]),
    dtype=dtypes,
    seed=st.integers(0, 999),
)
def test_upsample_kernels(device, mode, h, w, scale, dtype, seed):
    factors = scale if isinstance(scale, tuple) else (scale, scale)
    if int(h * factors[0]) < 1 or int(w * factors[1]) < 1:
        return
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    _assert_same(_run_both(device, dtype, lambda x: F.upsample(x, scale, mode), x), dtype)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("loss", [F.binary_cross_entropy_with_logits, F.sigmoid_mse_loss])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(size=st.integers(1, 3000), dtype=dtypes, seed=st.integers(0, 999))
def test_fused_sigmoid_loss_kernels(device, loss, reduction, size, dtype, seed):
    rng = np.random.default_rng(seed)
    z, y = rng.standard_normal(size) * 4, rng.random(size)
    results = []
    for dev in ("cpu", device):
        zt = md.tensor(z, requires_grad=True, device=dev, dtype=dtype)
        out = loss(zt, md.tensor(y, device=dev, dtype=dtype), reduction)
        out.backward()
        results.append([out.numpy(), zt.grad.numpy()])
    _assert_same(results, dtype)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_fused_loss_is_finite_and_deterministic(device):
    z = np.array([1000.0, -1000.0, 0.0, 30.0] * 700)
    y = np.tile([0.0, 1.0, 0.5, 1.0], 700)
    first = F.binary_cross_entropy_with_logits(md.tensor(z, device=device), md.tensor(y, device=device)).item()
    again = F.binary_cross_entropy_with_logits(md.tensor(z, device=device), md.tensor(y, device=device)).item()
    assert np.isfinite(first) and first == again
    np.testing.assert_allclose(first, (2000 + np.log(2) + np.log1p(np.exp(-30))) / 4, rtol=1e-12)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_adam_kernel_matches_numpy_update(device, dtype):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((7, 13))
    grads = [rng.standard_normal((7, 13)) for _ in range(4)]
    params = {}
    for dev in ("cpu", device):
        p = md.nn.Parameter(w0, device=dev, dtype=dtype)
        opt = md.optim.Adam([p], lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)
        for g in grads:
            p.grad = md.tensor(g, device=dev, dtype=dtype)
            opt.step()
        params[dev] = p.numpy()
    np.testing.assert_allclose(params[device], params["cpu"], **TOLERANCE[dtype])


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@given(case=conv_case(), seed=st.integers(0, 999))
def test_gradcheck_through_conv_kernels(device, case, seed):
    rng = np.random.default_rng(seed)
    x = md.tensor(rng.standard_normal((case["n"], case["c"], case["h"], case["w"])), requires_grad=True, device=device)
    w = md.tensor(rng.standard_normal((case["o"], case["c"], *case["k"])), requires_grad=True, device=device)
    assert md.gradcheck(lambda x, w: F.conv2d(x, w, None, case["stride"], case["padding"]), [x, w])
    assert md.gradcheck(lambda x, w: F.conv_transpose2d(x, w.permute(1, 0, 2, 3), None, case["stride"]), [x, w])


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_gradcheck_through_pooling_upsample_and_loss_kernels(device):
    rng = np.random.default_rng(5)
    x = md.tensor(rng.permutation(2 * 2 * 6 * 5).reshape(2, 2, 6, 5) * 0.1, requires_grad=True, device=device)
    y = md.tensor(rng.random((2, 2, 6, 5)), device=device)
    assert md.gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1), [x])
    assert md.gradcheck(lambda x: F.avg_pool2d(x, (2, 3), 1, 1), [x])
    assert md.gradcheck(lambda x: F.upsample(x, 2, "bilinear"), [x])
    assert md.gradcheck(lambda x: F.upsample(x, 1.5, "nearest"), [x])
    assert md.gradcheck(lambda x: F.sigmoid_mse_loss(x, y), [x])
    assert md.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, y, "sum"), [x])


# ------------------------------------------------------------- the emulator itself
def _module(code: str, names):
    from minidl.runtime.emulator import EmuModule

    return EmuModule(code=textwrap.dedent(code), name_expressions=names)


@needs_cxx
def test_emulator_barrier_and_shared_memory():
    """Reversing through shared memory is right only if __syncthreads() really waits for every thread."""
    module = _module(
        """
        template <typename T>
        __global__ void reverse(const T* x, T* y) {
            __shared__ T tile[64];
            tile[threadIdx.x] = x[blockIdx.x * 64 + threadIdx.x];
            __syncthreads();
            y[blockIdx.x * 64 + threadIdx.x] = tile[63 - threadIdx.x];
        }
        """,
        ["reverse<double>"],
    )
    x, y = np.arange(192.0), np.zeros(192)
    module.get_function("reverse<double>")((3,), (64,), (x, y))
    np.testing.assert_array_equal(y, x.reshape(3, 64)[:, ::-1].ravel())


@needs_cxx
def test_emulator_reports_a_divergent_barrier():
    module = _module(
        """
        __global__ void early_exit(float* y) {
            if (threadIdx.x == 0) return;
            __syncthreads();
            y[threadIdx.x] = 1.0f;
        }
        """,
        ["early_exit"],
    )
    with pytest.raises(RuntimeError, match="divergent __syncthreads"):
        module.get_function("early_exit")((1,), (32,), (np.zeros(32, np.float32),))


AFTER_A_FAILED_LAUNCH = r'''
import textwrap

import numpy as np

from minidl.runtime.emulator import EmuModule

FAILING = """
__global__ void early_exit(float* y) {
    float local[64];
    for (int i = 0; i < 64; ++i) local[i] = i;
    if (threadIdx.x == 0) return;
    __syncthreads();
    y[threadIdx.x] = local[threadIdx.x];
}
__global__ void trapped(float* y) {
    float local[64];
    local[0] = 1;
    if (threadIdx.x == 3) minidl_trap("stop");
    y[0] = local[0];
}
"""
BUSY = """
__global__ void deep(const float* x, float* y) {
    float local[256];
    for (int i = 0; i < 256; ++i) local[i] = x[threadIdx.x] + i;
    y[blockIdx.x * blockDim.x + threadIdx.x] = local[255 - threadIdx.x % 256];
}
"""
failing = EmuModule(code=FAILING, name_expressions=["early_exit", "trapped"])
for name in ("early_exit", "trapped"):
    try:
        failing.get_function(name)((1,), (256,), (np.zeros(256, np.float32),))
    except RuntimeError:
        pass
busy = EmuModule(code=BUSY, name_expressions=["deep"])
for _ in range(20):
    busy.get_function("deep")((64,), (256,), (np.ones(256, np.float32), np.zeros(64 * 256, np.float32)))
print("fine")
'''


@needs_cxx
def test_a_launch_after_a_failed_one_runs_clean():
    """A launch that failed at a divergent barrier or a trap left its abandoned threads' stack redzones
    poisoned in memory it gave back: a later kernel (Adam, in the suite) aborted as a stack underflow."""
    result = subprocess.run([sys.executable, "-c", AFTER_A_FAILED_LAUNCH], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "fine" in result.stdout, result.stderr[-3000:]


@needs_cxx
def test_emulator_rejects_python_scalars_and_wrong_argument_counts():
    module = _module(
        "__global__ void fill(float* y, int n) { if ((int)threadIdx.x < n) y[threadIdx.x] = n; }", ["fill"]
    )
    fill, y = module.get_function("fill"), np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="NumPy scalars"):
        fill((1,), (4,), (y, 4))
    with pytest.raises(RuntimeError, match="takes 2 arguments, the launch passed 1"):
        fill((1,), (4,), (y,))
    fill((1,), (4,), (y, np.int32(3)))
    np.testing.assert_array_equal(y, [3, 3, 3, 0])


@needs_cxx
def test_emulator_runs_blocks_in_a_shuffled_order():
    """A GPU promises no order of blocks; a kernel that relies on one fails here too."""
    module = _module(
        """
        __global__ void record(int* seen, int* count) {
            seen[count[0]++] = blockIdx.x;
        }
        """,
        ["record"],
    )
    seen, count = np.zeros(64, np.int32), np.zeros(1, np.int32)
    module.get_function("record")((64,), (1,), (seen, count))
    assert sorted(seen) == list(range(64)) and list(seen) != list(range(64))


@needs_cxx
def test_emulator_shared_memory_starts_as_nan():
    """Dynamic shared memory holds garbage on a GPU: here NaN, so reading it before writing shows."""
    module = _module(
        """
        __global__ void peek(float* y) {
            y[threadIdx.x] = reinterpret_cast<float*>(minidl_dynamic_shared)[threadIdx.x];
        }
        """,
        ["peek"],
    )
    y = np.zeros(8, np.float32)
    module.get_function("peek")((2,), (8,), (y,), shared_mem=32)
    assert np.isnan(y).all()


@needs_cxx
def test_emulator_static_shared_memory_starts_as_nan_in_every_block():
    """Static __shared__ arrays were zeros on the emulator (garbage on a GPU), so a block reduction that
    read slots no thread wrote passed: now each block starts with them all NaN (-1 in an int), also
    after an earlier block of the same launch wrote them."""
    module = _module(
        """
        template <typename T>
        __global__ void half_written(T* y, int* flags) {
            __shared__ T slots[8];
            __shared__ int flag[8];
            if (threadIdx.x < 4) { slots[threadIdx.x] = T(1); flag[threadIdx.x] = 7; }
            __syncthreads();
            y[blockIdx.x * 8 + threadIdx.x] = slots[threadIdx.x];
            flags[blockIdx.x * 8 + threadIdx.x] = flag[threadIdx.x];
        }
        """,
        ["half_written<float>", "half_written<double>"],
    )
    for name, dtype in (("half_written<float>", np.float32), ("half_written<double>", np.float64)):
        y, flags = np.zeros((3, 8), dtype), np.zeros((3, 8), np.int32)
        module.get_function(name)((3,), (8,), (y, flags))
        np.testing.assert_array_equal(y[:, :4], 1)
        assert np.isnan(y[:, 4:]).all(), y
        np.testing.assert_array_equal(flags, np.tile([7, 7, 7, 7, -1, -1, -1, -1], (3, 1)))


RACY = """
    template <typename T>
    __global__ void last_sums(const T* x, T* sums) {
        __shared__ T slots[8];
        slots[threadIdx.x] = x[blockIdx.x * 8 + threadIdx.x];
        // no __syncthreads() here: on a GPU the last thread may sum before the others wrote
        if (threadIdx.x == 7) {
            T total = T(0);
            for (int j = 0; j < 8; ++j) total += slots[j];
            sums[blockIdx.x] = total;
        }
    }

    __global__ void everyone_writes(int* y) {
        __shared__ int slot[2];
        slot[1] = threadIdx.x;  // every thread writes the same slot: which value stays is a race
        __syncthreads();
        y[threadIdx.x] = slot[1];
    }
"""


@needs_cxx
def test_emulator_reports_a_missing_syncthreads_as_a_race(monkeypatch):
    """Threads in order 0..7 hide the missing barrier (the summing thread runs last); the second run,
    threads reversed, sums unwritten (NaN) slots: the launch fails naming the kernel and the block."""
    module = _module(RACY, ["last_sums<double>", "everyone_writes"])
    x, sums = np.arange(24.0), np.zeros(3)
    with pytest.raises(RuntimeError, match=r"last_sums<double>: a race between the threads of block \(\d, 0, 0\).*"
                       r"argument 2 differs at element \d"):  # fmt: skip
        module.get_function("last_sums<double>")((3,), (8,), (x, sums))
    np.testing.assert_array_equal(sums, 0)  # a failed launch writes nothing back
    with pytest.raises(RuntimeError, match=r"everyone_writes: a race .* __shared__ slot\[1\] differs at barrier 1"):
        module.get_function("everyone_writes")((1,), (4,), (np.zeros(4, np.int32),))

    monkeypatch.setenv("MINIDL_EMU_RACES", "0")  # one run, threads in order: the race goes unseen
    module.get_function("last_sums<double>")((3,), (8,), (x, sums))
    np.testing.assert_array_equal(sums, x.reshape(3, 8).sum(1))


@needs_cxx
def test_emulator_flushes_float_denormals_as_cupy_compiles():
    """CuPy compiles with -ftz=true: float results below 1.2e-38 become 0; doubles keep theirs."""
    module = _module(
        """
        template <typename T>
        __global__ void product(const T* x, T* y) { y[0] = x[0] * x[1]; }
        """,
        ["product<float>", "product<double>"],
    )
    y32, y64 = np.ones(1, np.float32), np.ones(1)
    module.get_function("product<float>")((1,), (1,), (np.array([1e-20, 1e-20], np.float32), y32))
    module.get_function("product<double>")((1,), (1,), (np.array([1e-160, 1e-160]), y64))
    assert y32[0] == 0 and y64[0] == 1e-320


PLANTED_BUG = """
import numpy as np, pathlib, sys
from minidl.runtime.emulator import EmuModule
code = ('''
__global__ void off_by_one(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 2.0f * x[i < n ? i : 0];   // planted bug: i == n writes past the end
}
''')
module = EmuModule(code=code, name_expressions=["off_by_one"])
x = np.ones(10, np.float32)
module.get_function("off_by_one")((1,), (32,), (x, np.zeros(10, np.float32), np.int32(10)))
print("no error was caught")
"""


@needs_cxx
def test_emulator_catches_a_planted_out_of_bounds_write():
    """AddressSanitizer aborts the process, so the bug runs in a child process."""
    result = subprocess.run([sys.executable, "-c", PLANTED_BUG], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout
    assert "AddressSanitizer" in result.stderr and "off_by_one" in result.stderr
    assert "WRITE of size 4" in result.stderr
    assert "minidl emulator: in kernel off_by_one, block (0, 0, 0), thread (10, 0, 0)" in result.stderr
    assert "no error was caught" not in result.stdout


FIGURE_AFTER_KERNELS = """
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # matplotlib's C++ font code brings libstdc++, loaded locally
import numpy as np
import minidl as md
from minidl.nn import functional as F
F.max_pool2d(md.tensor(np.ones((1, 1, 4, 4)), device="emu"), 2).numpy()  # AddressSanitizer loads now
plt.plot([0, 1], [1, 0], label="a line")
plt.title("text drawn after the emulator loaded")
plt.legend()
plt.savefig(sys.argv[1])
"""


@needs_cxx
def test_an_example_draws_its_figures_after_running_kernels_on_the_emulator(tmp_path):
    """Examples on emu draw figures after training: AddressSanitizer, loaded with the first kernel,
    must find the C++ runtime matplotlib already uses (it used to abort the process at exit)."""
    result = subprocess.run([sys.executable, "-c", FIGURE_AFTER_KERNELS, str(tmp_path / "f.png")],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_cxx
def test_emulator_stops_a_trapping_kernel_with_its_message():
    """minidl_trap (a student copy's stub) and __trap() end the launch with an error, not a crash."""
    module = _module(
        """
        __global__ void stub(float* y) {
            if (threadIdx.x == 5) minidl_trap("Exercise 9 not implemented");
            __syncthreads();
            y[threadIdx.x] = 1.0f;
        }
        __global__ void trap(float* y) { __trap(); }
        """,
        ["stub", "trap"],
    )
    with pytest.raises(RuntimeError, match="stub: Exercise 9 not implemented"):
        module.get_function("stub")((2,), (32,), (np.zeros(32, np.float32),))
    with pytest.raises(RuntimeError, match=r"trap: __trap\(\) called"):
        module.get_function("trap")((1,), (1,), (np.zeros(1, np.float32),))
    y = np.zeros(4, np.float32)  # the module still launches after a trap
    module.get_function("stub")((1,), (4,), (y,))
    np.testing.assert_array_equal(y, 1)


@needs_cxx
def test_emulator_builds_are_cached(tmp_path, monkeypatch):
    from minidl.runtime import emulator

    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path))
    args = (sources.read_source("adam.cu"), compiler.compile_options("adam.cu"), sources.name_expressions("adam.cu"))
    first = emulator.build(*args)
    stamp = first.stat().st_mtime_ns
    assert emulator.build(*args) == first
    assert first.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name, first.name + ".sha256"]  # nothing else


@needs_cxx
def test_a_kernel_cache_on_a_read_only_file_system_is_an_error_naming_minidl_cache(tmp_path, monkeypatch):
    """pathlib.mkdir's OSError (EROFS) came through as a traceback; a read-only file system cannot be made
    in a test, so mkdir answers as one does."""
    import errno

    from minidl.runtime import emulator

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "mounted-read-only"))
    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(emulator.EmulatorSettingError, match="Read-only file system.*Set MINIDL_CACHE to a folder"):
        emulator.build("// nothing cached\n", [], ["never_built"])


@needs_cxx
def test_a_truncated_cached_build_is_built_again_not_loaded(tmp_path):
    """A crash or a full disk while the cache was written left a truncated library, which gave 'Bus error'
    on every later run: a library that does not match the digest beside it is built again."""
    script = (
        "import numpy as np, minidl as md\n"
        "y = md.nn.functional.avg_pool2d(md.tensor(np.arange(16.0).reshape(1, 1, 4, 4), device='emu'), 2)\n"
        "print(y.numpy().ravel().tolist())\n"
    )
    env = {**os.environ, "MINIDL_CACHE": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    (library,) = (tmp_path / "emulator").glob("*.so")  # pooling.cu's build, the only one
    library.write_bytes(library.read_bytes()[: library.stat().st_size // 3])  # as a crash mid-write would leave it
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout == "[2.5, 4.5, 10.5, 12.5]\n"
    assert (tmp_path / "emulator" / (library.name + ".sha256")).read_text() == hashlib.sha256(
        library.read_bytes()
    ).hexdigest()


@needs_cxx
def test_two_threads_running_emulated_kernels_at_once_get_their_own_results():
    """ctypes lets threads run while a launch does, and the emulator's scheduler and __shared__ variables
    are process-wide: two threads launching at once crashed under AddressSanitizer."""
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((4, 3, 12, 12)) for _ in range(2)]
    weight = rng.standard_normal((5, 3, 3, 3))
    expected = [F.conv2d(md.tensor(x), md.tensor(weight), padding=1).numpy() for x in images]

    def work(k: int) -> list:
        x, w = md.tensor(images[k], device="emu"), md.tensor(weight, device="emu")
        return [F.conv2d(x, w, padding=1).numpy() for _ in range(15)]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(work, range(2)))
    for k in range(2):
        for got in results[k]:
            np.testing.assert_allclose(got, expected[k], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_minidl_profile_times_every_kernel(device, monkeypatch):
    monkeypatch.setattr(profile, "PROFILE", True)
    monkeypatch.setattr(profile, "_timings", collections.defaultdict(list))
    x = md.tensor(np.ones((2, 1, 4, 4)), device=device)
    F.avg_pool2d(x, 2)
    F.avg_pool2d(x, 2)
    table = profile.profile_table().splitlines()
    assert table[0].split() == ["kernel", "launches", "total", "ms", "mean", "us", "of", "run"]
    assert table[1].split()[:2] == ["avg_pool2d_forward<double>", "2"] and len(table) == 2


@needs_cxx
def test_minidl_profile_prints_its_table_at_exit():
    script = "import numpy as np, minidl as md; md.nn.functional.max_pool2d(md.ones(1, 1, 4, 4, device='emu'), 2)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "MINIDL_PROFILE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "MINIDL_PROFILE: the kernels of this run" in result.stderr
    assert re.search(r"max_pool2d_forward<float>\s+1\s", result.stderr)


def test_launch_rejects_integer_dtypes():
    p = np.zeros(3, np.int32)
    with pytest.raises(TypeError, match="float32 or float64"):
        runtime.launch("adam_update", p, p, p, p, np.ones(2), count=3, beta1=0.9, beta2=0.99, eps=1e-8,
                       weight_decay=0.0, threads=3)  # fmt: skip


POOL_SIZES = dict(N=1, C=1, H=4, W=4, KH=2, KW=2, SH=2, SW=2, PH=0, PW=0, HO=2, WO=2)
TWO_IMAGES_OF_ONE = """
import minidl as md
from minidl import runtime
x = md.ones(1, 1, 4, 4, device={device!r}).data  # one image, launched as N=2: the kernel reads past x
try:
    runtime.launch("avg_pool2d_forward", x, runtime.Out((2, 1, 2, 2)), **{sizes}, threads=8)
except ValueError as e:
    print(e)
"""


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_a_launch_whose_sizes_do_not_fit_its_arrays_is_an_error(device):
    """A raw avg_pool2d_forward with N=2 for one image read past x: on emu AddressSanitizer aborted the
    whole process (a notebook's kernel with it). The sizes the kernel declares are checked first. (The
    call runs in a child process, so that the old abort fails this test without killing the suite.)"""
    script = TWO_IMAGES_OF_ONE.format(device=device, sizes={**POOL_SIZES, "N": 2})
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "avg_pool2d_forward: x holds 16 elements, but N*C*H*W = 2*1*4*4 = 32" in result.stdout
    x = md.ones(1, 1, 4, 4, device=device).data
    with pytest.raises(ValueError, match=r"y holds 9 elements, but N\*C\*HO\*WO = 1\*1\*2\*2 = 4"):
        runtime.launch("avg_pool2d_forward", x, runtime.Out((1, 1, 3, 3)), **POOL_SIZES, threads=4)
    y = runtime.launch("avg_pool2d_forward", x, runtime.Out((1, 1, 2, 2)), **POOL_SIZES, threads=4)
    np.testing.assert_array_equal(md.tensor(y, device=device).numpy(), np.ones((1, 1, 2, 2)))


def test_a_kernels_declared_sizes_name_its_own_parameters():
    """The sizes line is read with the signature: a factor that is not an integer parameter is an error."""
    assert sources.kernels()["avg_pool2d_forward"].sizes[0] == ("x", ("N", "C", "H", "W"))
    code = "// sizes: x = N*Q\ntemplate <typename T>\n__global__ void k(const T* __restrict__ x, int N) {}"
    with pytest.raises(ValueError, match=r"k.cu: kernel k: cannot read the size 'x = N\*Q'"):
        sources.parse_kernels(code, "k.cu")
