from setuptools import setup

setup(
    name="minidl",
    version="0.1.0",
    description="A small reverse-mode autodiff framework with readable CUDA kernels, for learning vision on GPUs",
    python_requires=">=3.10",
    packages=[
        "minidl", "minidl.autograd", "minidl.ops", "minidl.nn", "minidl.emulator", "minidl.kernels", "minidl.lab"
    ],
    # the CUDA sources live in kernels/ at the top of the repository and ship inside the package
    package_dir={"minidl.kernels": "kernels"},
    package_data={"minidl.kernels": ["*.cu", "*.cuh"], "minidl.emulator": ["runtime.h"]},
    install_requires=["numpy>=1.24", "matplotlib>=3.7", "scipy>=1.10"],
    extras_require={
        # cuda-bindings + nvidia-cuda-nvrtc: NVIDIA's NVRTC, so the tests compile every kernel without a GPU
        "dev": [
            "pytest>=7",
            "hypothesis>=6.80",
            "scipy>=1.10",
            "matplotlib>=3.7",
            "ruff>=0.5",
            "cuda-bindings>=12.8",
            "nvidia-cuda-nvrtc>=12.8",
        ],
        # CuPy with NVIDIA's runtime compiler (NVRTC) and libraries, so kernels compile without a CUDA toolkit
        "cuda12": ["cupy-cuda12x[ctk]>=14"],
        "cuda13": ["cupy-cuda13x[ctk]>=14"],
        "bench": ["torch>=2.1"],
    },
)
