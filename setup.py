from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class build_py_with_kernels(build_py):
    """Ship the CUDA sources of kernels/ (the top of the repository) inside the package, as
    minidl/runtime/kernels/; minidl.runtime.sources finds them there when minidl is installed."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "minidl" / "runtime" / "kernels"
        self.mkpath(str(target))
        for source in sorted(Path(__file__).resolve().parent.glob("kernels/*.cu*")):
            self.copy_file(str(source), str(target / source.name))


setup(
    name="minidl",
    version="0.1.0",
    description="A small reverse-mode autodiff framework with readable CUDA kernels, for learning vision on GPUs",
    python_requires=">=3.10",
    packages=find_packages(include=["minidl", "minidl.*"]),
    package_data={"minidl.runtime.emulator": ["runtime.h"]},
    cmdclass={"build_py": build_py_with_kernels},
    install_requires=["numpy>=1.24", "matplotlib>=3.7", "scipy>=1.10", "tqdm>=4.66"],
    extras_require={
        # cuda-bindings + nvidia-cuda-nvrtc: NVIDIA's NVRTC, so the tests compile every kernel without a GPU
        "dev": [
            "pytest>=7",
            "pytest-xdist>=3.5",  # tests/all_devices.sh spreads each leg over the cores (-n auto)
            "hypothesis>=6.80",
            "scipy>=1.10",
            "matplotlib>=3.7",
            "ruff>=0.5",
            "cuda-bindings>=12.8",
            "nvidia-cuda-nvrtc>=12.8",
            # the lab sheets, executed by the tests without Jupyter (and what they need in Jupyter, below)
            "nbformat>=5.9",
            "nbclient>=0.10",
            "ipykernel>=6.29",
            "ipywidgets>=8.1",
        ],
        # what a lab sheet (notebooks/) needs in Jupyter or Colab beside minidl: a kernel, widget progress bars
        "notebook": ["ipykernel>=6.29", "ipywidgets>=8.1"],
        # CuPy with NVIDIA's runtime compiler (NVRTC) and libraries, so kernels compile without a CUDA toolkit
        "cuda12": ["cupy-cuda12x[ctk]>=14"],
        "cuda13": ["cupy-cuda13x[ctk]>=14"],
        # PyTorch, the benchmarks' peer and the parity tests' oracle, at the version those tests are written
        # against: 2.14 changed clamp's gradient at a tie between the input and a tensor bound (split in two)
        "bench": ["torch==2.13.*"],
    },
)
