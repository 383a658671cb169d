"""The stand-in's cupyx: scatter_add is deprecated in CuPy 13.6 and 14 (use cupy.add.at)."""

import warnings


def scatter_add(a, slices, value):
    warnings.warn("cupyx.scatter_add is deprecated; use cupy.add.at", DeprecationWarning, stacklevel=2)
    import cupy

    cupy.add.at(a, slices, value)
