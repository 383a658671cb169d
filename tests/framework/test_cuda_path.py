"""The cuda path without a GPU: the launch contract, the strict CuPy stand-in's rules, and one
test for each defect that a first run on a GPU would have met. Tests that need the cuda
device run in the `MINIDL_DEVICE=cuda` leg of the suite (a GPU, or the stand-in)."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import KERNEL_DEVICES, needs_cuda, needs_cxx, quick_experiment, standin

import minidl as md
from minidl import backend, runtime
from minidl.experiments import corruptions
from minidl.experiments.models import ModelC, ModelD
from minidl.nn import functional as F
from minidl.ops import conv
from minidl.runtime import compiler, sources

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------ the stand-in's rules
def test_standin_refuses_what_cupy_refuses():
    cupy = standin()
    a = cupy.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(3)
    assert not hasattr(a, "tofile_fast")  # only what CuPy has
    assert not hasattr(cupy.random.default_rng(0), "normal")  # CuPy 13's Generator has none
    assert not hasattr(cupy.random.default_rng(0), "permutation")
    total = a.sum()
    assert isinstance(total, cupy.ndarray) and total.shape == ()  # reductions stay on the device
    cupy.counters.reset()
    assert float(total) == 15.0 and a.get().sum() == 15.0 and cupy.counters.syncs == 2


def _standin_module():
    """The stand-in's module, loaded from its file under another name (on any leg of the suite)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("standin_cupy", ROOT / "tests" / "standin" / "cupy" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


CITATION = re.compile(r"(?:cupy|cupy_backends)/[\w/]+\.pyx?:\d+(?:-\d+)?")


def test_every_rule_of_the_standin_cites_cupys_source_in_both_versions():
    """Each behaviour the stand-in enforces or imitates is a Rule citing CuPy's file and lines at v13.6.0 and
    v14.2.0, and the code applies every rule by name (no rule that nothing applies, no name without one)."""
    module = _standin_module()
    applied = set(re.findall(r'_rule\("([\w-]+)"\)', (ROOT / "tests/standin/cupy/__init__.py").read_text()))
    assert applied == set(module.RULES), applied ^ set(module.RULES)
    for name, rule in module.RULES.items():
        for version in (rule.v13, rule.v14):
            assert CITATION.match(version), f"{name}: {version!r} names no CuPy file and lines"
            # every file named has its lines
            for path in re.findall(r"((?:cupy|cupy_backends)/[\w/]+\.pyx?)\b(?!:)", version):
                raise AssertionError(f"{name}: {path} is cited without lines")
        assert rule.what, name


@needs_cuda
def test_matmul_while_capturing_raises_cupys_cublas_error():
    """CuPy's matmul, dot, tensordot, einsum and @ of float arrays call cuBLAS, which CuPy refuses to call
    while a stream captures; integer products use CuPy's own kernels and are recorded."""
    cupy = standin()
    a, ints = cupy.ones((3, 3), dtype=np.float32), cupy.ones((3, 3), dtype=np.int64)
    stream = cupy.cuda.Stream()
    with stream:
        stream.begin_capture()
        try:
            for call in (lambda: a @ a, lambda: cupy.matmul(a, a), lambda: a.dot(a), lambda: cupy.tensordot(a, a),
                         lambda: cupy.einsum("ij,jk->ik", a, a), lambda: cupy.linalg.norm(a)):  # fmt: skip
                with pytest.raises(NotImplementedError, match="cuBLAS API during stream capture"):
                    call()
            product = ints @ ints
        finally:
            stream.end_capture()
    assert product.shape == (3, 3)


@needs_cuda
def test_the_standins_generator_is_not_numpys():
    """CuPy's default_rng is cuRAND's XORWOW: a test that expected NumPy's draws would fail on a GPU, so it
    fails on the stand-in too."""
    cupy = standin()
    draws = cupy.random.default_rng(0).random(4).get()
    assert not np.array_equal(draws, np.random.default_rng(0).random(4))
    np.testing.assert_array_equal(cupy.random.default_rng(0).random(4).get(), draws)  # but it is seeded


@needs_cuda
def test_ascontiguousarray_of_a_0d_array_is_1d_as_in_cupy():
    cupy = standin()
    scalar = cupy.asarray(np.float32(2.0))
    assert cupy.ascontiguousarray(scalar).shape == (1,) and cupy.ascontiguousarray(scalar, np.float64).shape == (1,)


@pytest.mark.parametrize("device", ["cpu", *KERNEL_DEVICES])
def test_adam_keeps_a_0d_parameter_0d(device):
    """On emu Adam raised TypeError for a 0-d parameter (NumPy's 0-d results are scalars); on a GPU
    ascontiguousarray would have made it (1,). It stays 0-d and steps as on the cpu."""
    results = {}
    for dev in ("cpu", device):
        p = md.nn.Parameter(md.tensor(np.float32(2.0), device=dev))
        opt = md.optim.Adam([p], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
        assert p.shape == () and p.grad.shape == ()
        results[dev] = p.numpy()
    np.testing.assert_allclose(results[device], results["cpu"], rtol=1e-5)  # the float32 kernel


def test_cupy_13_is_refused_with_the_reason(tmp_path):
    """CuPy 13.x frees a captured step's .grad with its graph's pool and never reads its compile cache
    for our modules: minidl asks for CuPy >= 14 and says why, in a fresh process that finds CuPy 13.6."""
    fake = tmp_path / "cupy"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '13.6.0'\n")
    code = (
        "import minidl as md\n"
        "from minidl import backend\n"
        "assert not md.cuda_available()\n"
        "try:\n    backend.resolve_device('cuda')\nexcept backend.DeviceUnavailable as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MINIDL_DEVICE": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "CuPy 13.6.0 is installed and minidl needs CuPy >= 14.0" in result.stdout
    assert "cupy-cuda12x>=14" in result.stdout


def test_standin_cuda_offers_only_what_real_cupy_has():
    """The stand-in's cupy.cuda (streams, graphs, memory pools, events) names only what CuPy 13.6
    and 14.2 both have, read from their wheels into names.json."""
    cupy = standin()
    names = cupy._NAMES
    assert set(vars(cupy.cuda)) <= set(names["cuda"])
    for name in ("Stream", "Graph", "MemoryPool", "Event"):
        offered = {n for n in dir(getattr(cupy.cuda, name)) if not n.startswith("_")}
        assert offered <= set(names[f"cuda.{name}"]), (name, offered - set(names[f"cuda.{name}"]))


def test_standin_kernels_take_device_arrays_and_numpy_scalars():
    cupy = standin()
    module = cupy.RawModule(code=sources.read_source("adam.cu"), options=compiler.compile_options("adam.cu"),
                            name_expressions=sources.name_expressions("adam.cu"))  # fmt: skip
    adam = module.get_function("adam_update<float>")
    p = cupy.zeros(4, dtype=np.float32)
    host = np.zeros(4, np.float32)
    schedule = cupy.ones(2)
    scalars = tuple(np.float32(v) for v in (0.9, 0.99, 1e-8, 0.0))
    with pytest.raises(TypeError, match="argument 1 is ndarray"):
        adam((1,), (32,), (p, host, p, p, np.int64(4), schedule, *scalars))
    with pytest.raises(TypeError, match="64-bit long long"):
        adam((1,), (32,), (p, p, p, p, 4, schedule, *scalars))
    with pytest.raises(RuntimeError, match="InvalidConfiguration"):
        adam((1, 1, 65536), (32,), (p, p, p, p, np.int64(4), schedule, *scalars))


# --------------------------------------------------------------- the launch contract
@needs_cxx
def test_launch_checks_every_argument_against_the_signature():
    x32, x64 = np.zeros((1, 1, 4, 4), np.float32), np.zeros((1, 1, 4, 4), np.float64)
    sizes = POOL_SIZES
    out = runtime.Out((1, 1, 2, 2))
    with pytest.raises(TypeError, match=r"takes 2 arrays, got 1, and its numbers by name \(N=, C=, H=.*"
                                        r"avg_pool2d_backward\(const T\* gy"):  # fmt: skip
        runtime.launch("avg_pool2d_backward", x32, **sizes, threads=16)
    with pytest.raises(TypeError, match="gy is float64 but T is float32"):
        runtime.launch("max_pool2d_backward", x64, x64.astype(np.int32), runtime.Out((1,)), **sizes, dtype=np.float32,
                       threads=1)  # fmt: skip
    with pytest.raises(TypeError, match="argmax needs dtype int32, got int64"):
        runtime.launch("max_pool2d_backward", x32, np.zeros(4, np.int64), runtime.Out((1,)), **sizes, threads=1)
    with pytest.raises(TypeError, match="int N needs an integer, got 1.5"):
        runtime.launch("avg_pool2d_forward", x32, out, **{**sizes, "N": 1.5}, threads=4)
    with pytest.raises(OverflowError, match="does not fit in int"):
        runtime.launch("avg_pool2d_forward", x32, out, **{**sizes, "N": 2**31}, threads=4)
    with pytest.raises(ValueError, match="outside CUDA's limits"):
        runtime.launch("avg_pool2d_forward", x32, out, **sizes, grid=(1, 1, 65536))
    with pytest.raises(ValueError, match="outside CUDA's limits"):
        runtime.launch("avg_pool2d_forward", x32, out, **sizes, grid=1, block=2048)
    with pytest.raises(ValueError, match="written in place, so it must be C-contiguous"):
        w = np.zeros((8, 2), np.float32)[:, 0]
        runtime.launch("adam_update", w, w, w, w, np.ones(2), count=8, beta1=0.9, beta2=0.99, eps=1e-8,
                       weight_decay=0.0, threads=8)  # fmt: skip
    with pytest.raises(ValueError, match="would leave its outputs unwritten"):
        runtime.launch("avg_pool2d_forward", x32, out, **sizes, grid=0)


POOL_SIZES = dict(N=1, C=1, H=4, W=4, KH=2, KW=2, SH=2, SW=2, PH=0, PW=0, HO=2, WO=2)


@needs_cxx
def test_a_kernels_numbers_go_by_their_names_in_the_signature_and_in_its_order():
    """Same-typed sizes passed in the wrong order passed every type check: now a swapped pair, an unknown
    or a missing name, or numbers passed by position, is an error that names them."""
    x, out = np.zeros((1, 1, 4, 4), np.float32), runtime.Out((1, 1, 2, 2))
    swapped = {("W" if k == "H" else "H" if k == "W" else k): v for k, v in POOL_SIZES.items()}  # ... W=, H= ...
    with pytest.raises(TypeError, match=r"W and H are given in the wrong order \(W before H\); the kernel takes "
                                        r"N, C, H, W, KH"):  # fmt: skip
        runtime.launch("avg_pool2d_forward", x, out, **swapped, threads=4)
    misnamed = {("HEIGHT" if k == "H" else k): v for k, v in POOL_SIZES.items()}
    with pytest.raises(TypeError, match=r"no parameter named HEIGHT; missing H: avg_pool2d_forward\("):
        runtime.launch("avg_pool2d_forward", x, out, **misnamed, threads=4)
    with pytest.raises(TypeError, match="takes 2 arrays, got 14"):
        runtime.launch("avg_pool2d_forward", x, out, *POOL_SIZES.values(), threads=4)
    y = runtime.launch("avg_pool2d_forward", np.arange(16.0).reshape(1, 1, 4, 4), out, **POOL_SIZES, threads=4)
    np.testing.assert_allclose(y, np.arange(16.0).reshape(2, 2, 2, 2).mean(axis=(1, 3)).reshape(1, 1, 2, 2))


@needs_cxx
def test_launch_makes_inputs_contiguous_and_fills_fresh_outputs_with_nan_on_emu():
    x = np.arange(32.0).reshape(1, 1, 4, 8)[:, :, :, ::2]  # a strided view
    y = runtime.launch("avg_pool2d_forward", x, runtime.Out((1, 1, 2, 2)), **POOL_SIZES, threads=4)
    np.testing.assert_allclose(y, x.reshape(2, 2, 2, 2).mean(axis=(1, 3)).reshape(1, 1, 2, 2))
    # one thread per output element but only 3 threads launched: the 4th element stays NaN
    part = runtime.launch("avg_pool2d_forward", x, runtime.Out((1, 1, 2, 2)), **POOL_SIZES, grid=1, block=3)
    assert np.isnan(part.ravel()[3]) and not np.isnan(part.ravel()[:3]).any()


DEVICE_NAMES = {"cpu", "cuda", "emu"}


def device_branches(path: Path) -> list[str]:
    """Where a module's code (not its docstrings, comments or messages) names a device: a string that is
    a device's name, or CuPy, or the kernel devices' table."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in DEVICE_NAMES:
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")
        elif isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in {"cupy", "cupyx", "KERNEL_DEVICES", "DEVICES", "runs_kernels"}:
                found.append(f"{path.name}:{node.lineno}: {name}")
    return found


def test_no_op_autograd_or_optimiser_module_names_a_device():
    """Which calls run as kernels is minidl.runtime's decision alone (runs_as_kernel)."""
    paths = [*(ROOT / "minidl" / "ops").glob("*.py"), *(ROOT / "minidl" / "autograd").glob("*.py"),
             ROOT / "minidl" / "optim.py"]  # fmt: skip
    assert len(paths) > 10
    assert [hit for path in sorted(paths) for hit in device_branches(path)] == []
    assert device_branches(ROOT / "minidl" / "runtime" / "devices.py"), "the test finds what it looks for"


# ------------------------------------------------------------ defects, one test each
@needs_cuda
def test_saving_adam_state_of_device_arrays(tmp_path):
    """md.save used np.asarray on CuPy arrays, which CuPy refuses: every example crashed after epoch 1."""
    model = md.nn.Linear(3, 2, device="cuda")
    opt = md.optim.Adam(model.parameters())
    model(md.ones(4, 3, device="cuda")).sum().backward()
    opt.step()
    md.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "state.npz")
    loaded = md.load(tmp_path / "state.npz")
    exp_avg = backend.to_numpy(opt.state[0]["exp_avg"])
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0]["exp_avg"], exp_avg)
    np.testing.assert_array_equal(loaded["model"]["weight"], model.weight.numpy())


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_load_state_dict_copies_so_fine_tuning_leaves_the_source_alone(device):
    """The Adam kernel updates parameters in place; a loaded parameter that shared the source's
    array overwrote the pretrained model (deep_ae's 'pretrained' rows were the fine-tuned ones)."""
    source = md.nn.Linear(3, 2, device=device)
    before = source.weight.numpy().copy()
    target = md.nn.Linear(3, 2, device=device)
    target.load_state_dict(source.state_dict())
    opt = md.optim.Adam(target.parameters(), lr=0.1)
    target(md.ones(4, 3, device=device)).sum().backward()
    opt.step()
    np.testing.assert_array_equal(source.weight.numpy(), before)
    assert not np.array_equal(target.weight.numpy(), before)


def test_gradients_of_maximum_minimum_and_reductions_keep_float32():
    """Their backward made float64 gradients for float32 inputs, which a kernel then read as T = double."""
    a = md.tensor([1.0, 5.0, 3.0], requires_grad=True)
    b = md.tensor([2.0, 5.0, 1.0], requires_grad=True)
    (md.maximum(a, b).sum() + md.minimum(a, b).sum() + a.max() + b.amin(dim=0)).backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32
    np.testing.assert_allclose(a.grad.numpy(), [1.0, 2.0, 1.0])  # max/min ties split evenly, as PyTorch


@needs_cxx
def test_launch_refuses_arrays_of_another_dtype_than_t():
    with pytest.raises(TypeError, match="but T is float32"):
        runtime.launch("conv2d_backward_input", np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 1, 1)),
                       runtime.Out((1, 1, 2, 2)), N=1, C=1, H=2, W=2, O=1, KH=1, KW=1, SH=1, SW=1, PH=0, PW=0,
                       HO=2, WO=2, threads=4)  # fmt: skip


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_conv2d_with_an_empty_batch_and_with_more_than_65535_image_groups(device):
    """grid.z was N·⌈O/64⌉: above 65535 a launch error, and N = 0 a zero grid dimension."""
    w = md.tensor(np.ones((65, 1, 1, 1)), device=device, dtype=md.float32)
    assert F.conv2d(md.zeros(0, 1, 3, 3, device=device), w).shape == (0, 65, 3, 3)
    x = np.arange(33_000, dtype=np.float32).reshape(33_000, 1, 1, 1)  # 33,000 images × 2 groups of channels
    w = md.tensor(np.arange(65.0).reshape(65, 1, 1, 1), device=device, dtype=md.float32)
    y = F.conv2d(md.tensor(x, device=device), w)
    np.testing.assert_array_equal(y.numpy()[:, :, 0, 0], x[:, :, 0, 0] * np.arange(65.0, dtype=np.float32))


def test_the_code_compiled_holds_its_headers():
    """CuPy 14 caches a RawModule by its code string: with #include "common.cuh" in it, a header edit
    kept the old binaries."""
    code = sources.read_source("pooling.cu")
    assert "#include" not in code and "__device__ T block_sum" in code and '#line 1 "common.cuh"' in code
    for name, value in compiler.DEFINES.items():
        assert f"-D{name}={value}" in compiler.compile_options("pooling.cu")
    for name, value in conv.TILES.items():  # conv's own constants reach conv2d.cu alone
        assert f"-D{name}={value}" in compiler.compile_options("conv2d.cu")
        assert f"-D{name}={value}" not in compiler.compile_options("pooling.cu")


def test_a_missing_nvrtc_is_explained(monkeypatch):
    class NoCompiler:
        def get_function(self, name):
            raise RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: cannot open shared object file")

    monkeypatch.setitem(compiler._modules, ("adam.cu", "cuda"), NoCompiler())
    monkeypatch.setattr(compiler, "_functions", {})
    with pytest.raises(RuntimeError, match=r"needs NVIDIA's runtime compiler \(NVRTC\).*cupy-cuda12x\[ctk\]"):
        compiler.function(sources.kernels()["adam_update"], np.dtype(np.float32), "cuda")


def test_nothing_uses_the_deprecated_cupyx_scatter_add():
    for path in (ROOT / "minidl").rglob("*.py"):
        assert "cupyx" not in path.read_text(), path
    x = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2]].sum().backward()  # repeated indices: add.at on NumPy and CuPy
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])


@pytest.mark.parametrize("spec", ["gaussian:0.5", "gaussian:0.3:noclip", "masking:0.3", "salt_and_pepper:0.2",
                                  "uniform:0.4"])  # fmt: skip
def test_corruptions_draw_on_the_device_of_the_batch(spec):
    """Noise comes from the device's generator, with only the methods CuPy's Generator has: the same
    seed draws the same noise, another seed other noise. (A GPU's generator is cuRAND's XORWOW, not
    NumPy's PCG64: its numbers are compared with its own, never with NumPy's.)"""
    x = md.rand(4, 1, 5, 5)

    def noisy(seed):
        md.manual_seed(seed)
        return corruptions.corruption(spec)(x, backend.generator(x.device))

    first = noisy(3)
    assert first.device == x.device and first.shape == x.shape and first.dtype == x.dtype
    assert not np.array_equal(first.numpy(), x.numpy())
    np.testing.assert_array_equal(noisy(3).numpy(), first.numpy())
    assert not np.array_equal(noisy(4).numpy(), first.numpy())


# -------------------------------------------------------------- the backward pass
class Constant(md.Function):
    """y = 2x, whose backward hands out one fixed tensor (to see whether a leaf copies its array)."""

    handed = None

    def forward(self, x):
        return x * 2

    def backward(self, g):
        return Constant.handed


def test_a_leaf_takes_a_fresh_gradient_without_copying_it():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    Constant.handed = md.tensor([2.0, 2.0])
    Constant.apply(x).backward(md.ones(2))
    assert x.grad.data is Constant.handed.data
    a, b = md.tensor([1.0], requires_grad=True), md.tensor([2.0], requires_grad=True)
    (a + b).backward(md.ones(1))  # Add hands the same array to both: the second leaf gets a copy
    assert a.grad.data is not b.grad.data
    a.grad.data[0] = 5
    assert b.grad.numpy()[0] == 1


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_adam_steps_a_float16_parameter_on_the_array_path_as_every_op_does(device):
    """Adam decided by hand which parameters ran as kernels, without the ops' dtype rule: a float16
    parameter on a kernel device reached launch() and raised. It now takes the array path, beside a
    float32 parameter on the kernels, and both match the cpu."""
    start = np.linspace(-1, 1, 6).reshape(2, 3)
    results = {}
    for dev in ("cpu", device):
        half = md.nn.Parameter(md.tensor(start, dtype=np.float16, device=dev))
        single = md.nn.Parameter(md.tensor(start, dtype=md.float32, device=dev))
        opt = md.optim.Adam([half, single], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            ((half.float() * 3).sum() + (single * single).sum()).backward()
            opt.step()
        assert half.dtype == np.float16 and half.grad.dtype == np.float16
        steps = [s["step"] for s in opt.state_dict()["state"].values()]
        results[dev] = (half.numpy(), single.numpy(), steps)
    np.testing.assert_array_equal(results[device][0], results["cpu"][0])
    np.testing.assert_allclose(results[device][1], results["cpu"][1], rtol=1e-5, atol=1e-6)  # float32 kernel
    assert results[device][2] == results["cpu"][2] == [3, 3]


def test_adam_creates_its_state_once():
    p = md.nn.Parameter(np.zeros(3, np.float32))
    opt = md.optim.Adam([p])
    p.grad = md.ones(3)
    opt.step()
    moments = opt.state[0]["exp_avg"], opt.state[0]["exp_avg_sq"]
    values = [backend.to_numpy(m).copy() for m in moments]
    opt.step()  # the moments are updated in place on every device (the kernel's and the array path alike)
    assert opt.state[0]["exp_avg"] is moments[0] and opt.state[0]["exp_avg_sq"] is moments[1]
    assert not np.array_equal(backend.to_numpy(moments[0]), values[0])
    assert opt.state_dict()["state"][0]["step"] == 2


@pytest.mark.parametrize("device", ["cpu", *KERNEL_DEVICES])
def test_a_state_dict_is_a_snapshot_that_rolls_adam_back(device):
    """Taken before a step, a state_dict keeps its moments and its step count (its step had been frozen
    while its moments moved on with the optimiser's in place: half old, half new on every device), so
    loading it and stepping again gives what the first step after it gave."""
    p = md.nn.Parameter(md.tensor(np.array([1.0, -2.0], np.float32), device=device))
    opt = md.optim.Adam([p], lr=0.1)

    def step():
        opt.zero_grad()
        (p * p * p).sum().backward()
        opt.step()
        return p.numpy().copy()

    step()
    taken, weights = opt.state_dict(), p.numpy().copy()
    moments = backend.to_numpy(taken["state"][0]["exp_avg"]).copy()
    after = step()
    assert taken["state"][0]["step"] == 1
    np.testing.assert_array_equal(backend.to_numpy(taken["state"][0]["exp_avg"]), moments)
    opt.load_state_dict(taken)
    p.data[...] = backend.move(weights, device)  # the weights as they were too
    p.mark_changed()
    np.testing.assert_array_equal(step(), after)


# -------------------------------------------------------- training stays on the device
def _train(tmp_path, device, model_class, images, epochs, resume=False, step_counts=None, same_numbers=False):
    """Train on `images` with Gaussian noise; same_numbers: with no draws on the device (the weights
    made on the cpu and copied, no dropout, the noisy images made on the host), so that any two
    devices are given the same numbers."""
    exp = quick_experiment(tmp_path, device, epochs=epochs, resume=resume)
    model = model_class(device=device)
    loss_fn = F.binary_cross_entropy_with_logits if model_class is ModelC else F.mse_loss
    if same_numbers:
        md.manual_seed(0)
        model.load_state_dict(model_class(device="cpu").state_dict())
        for m in model.modules():
            if isinstance(m, md.nn.Dropout):
                m.p = 0.0
        noisy = np.clip(images + 0.5 * np.random.default_rng(8).standard_normal(images.shape, np.float32), 0, 1)
        return _fit(exp, model, lambda x_noisy, x, rng: loss_fn(model(x_noisy), x), [noisy, images])
    noise = corruptions.corruption("gaussian:0.5")

    def step(x, rng):
        if step_counts is not None:
            step_counts.append(_counts())
        return loss_fn(model(noise(x, rng)), x)

    return _fit(exp, model, step, [images])


def _fit(exp, model, step, arrays):
    history, _ = exp.fit(type(model).__name__, model, md.optim.Adam(model.parameters()), step, arrays)
    return [p.numpy() for p in model.parameters()], history


def _counts():
    counters = backend.cupy().counters
    return counters.syncs, counters.uploads, counters.launches + counters.kernel_launches


def _images(count):
    return np.random.default_rng(7).random((count, 1, 28, 28)).astype(np.float32)


@needs_cuda
@pytest.mark.parametrize("model_class", [ModelD, ModelC])
def test_cuda_trains_exactly_as_cpu(tmp_path, model_class):
    """Given the same numbers (initial weights, batches, noisy images; no dropout), both devices train
    to the same weights up to float32 rounding."""
    images = _images(8)
    cpu_weights, cpu_history = _train(tmp_path / "cpu", "cpu", model_class, images, epochs=1, same_numbers=True)
    cuda_weights, cuda_history = _train(tmp_path / "cuda", "cuda", model_class, images, epochs=1, same_numbers=True)
    np.testing.assert_allclose(cuda_history, cpu_history, rtol=1e-5)
    for expect, got in zip(cpu_weights, cuda_weights):
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-6)


@needs_cuda
def test_resume_on_cuda_equals_the_uninterrupted_run(tmp_path):
    images = _images(16)
    straight, straight_history = _train(tmp_path / "straight", "cuda", ModelD, images, epochs=2)
    _train(tmp_path / "stopped", "cuda", ModelD, images, epochs=1)
    resumed, resumed_history = _train(tmp_path / "stopped", "cuda", ModelD, images, epochs=2, resume=True)
    assert resumed_history == straight_history
    for expect, got in zip(straight, resumed):
        np.testing.assert_array_equal(got, expect)


@needs_cuda
def test_a_training_step_neither_syncs_nor_uploads(tmp_path):
    """Between two progress-bar redraws a step reads nothing back and sends nothing to the device."""
    standin()
    images = _images(64)
    counts: list = []
    _train(tmp_path, "cuda", ModelD, images, epochs=1, step_counts=counts)
    per_step = [tuple(b - a for a, b in zip(first, second)) for first, second in zip(counts, counts[1:])]
    redraws = [i for i, (syncs, _, _) in enumerate(per_step) if syncs]
    assert len(redraws) <= 4  # the log draws at each quarter: a loss read each time
    assert all(syncs <= 1 for syncs, _, _ in per_step)
    assert all(uploads == 0 for _, uploads, _ in per_step)
    # after Adam's first step (which makes its state) every step asks the device for the same work
    assert len({launches for _, _, launches in per_step[1:]}) == 1
