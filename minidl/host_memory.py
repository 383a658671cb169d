"""Host memory: freed arrays stay in the process for the next step instead of going back to the OS.

A training step allocates and frees the same large arrays (activations, im2col matrices, gradients)
every time. glibc's malloc serves blocks of 128 KB and more with fresh mmaps, or trims the heap's
free top back to the OS, so each step's arrays arrive as new pages and every 4 KB page costs a page
fault on its first write: Model C's step (batch 128, 1 thread) took 8,093 faults and 22.5 ms of
system time on top of 46.5 ms of user time. Raising glibc's mmap threshold to its largest fixed value
(32 MB) and its trim threshold to 512 MB keeps those blocks in the heap: no faults, 35 ms a step.
The price: the process keeps up to 512 MB of freed memory instead of returning it at once (its peak
is unchanged). Set MINIDL_HOST_MEMORY=release to keep glibc's defaults. Elsewhere than glibc this
does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # blocks up to this size come from the heap (glibc's largest fixed value)
TRIM_THRESHOLD = 512 * 2**20  # free memory at the heap's top kept, up to this much


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse (see the module's docstring); whether it took effect."""
    if os.environ.get("MINIDL_HOST_MEMORY") == "release" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them (find_library runs ldconfig)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
