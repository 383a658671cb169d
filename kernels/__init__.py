"""The CUDA C sources of minidl's kernels (*.cu), installed as the package minidl.kernels."""

from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
