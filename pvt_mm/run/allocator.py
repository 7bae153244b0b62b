"""glibc's heap on a CPU: keep freed memory for reuse instead of returning it to the kernel.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with fresh pages from
the kernel and unmaps them on free, so each large tensor of a training step pays its page
faults again, every step. :func:`keep_freed_memory` tells glibc, through ``mallopt`` at run
time (no environment variable needed), to serve them from the heap and to keep what is freed:
the resident set then stays at its high-water mark between steps. ``tools/train.py`` does this
on a machine without a CUDA GPU; ``tools/analysis/benchmark.py --allocator`` races under
either setting. Other C libraries (musl) and allocators preloaded in glibc's place (jemalloc,
tcmalloc) are left alone, and said so.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER = -1  # M_TRIM_THRESHOLD -1: never trim (mallopt takes a C int; glibc reads -1 as 'off')


def glibc() -> ctypes.CDLL | None:
    """The running process's glibc, or None where the C library is another."""
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return None
    return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')


def keep_freed_memory() -> str:
    """Serve large allocations from glibc's heap and keep freed memory for reuse.

    Returns a line saying what was done, for the log. Must run before the large tensors are
    allocated (it does not move what is already mapped)."""
    libc = glibc()
    if libc is None:
        return 'allocator: not glibc; its defaults are kept.'
    done = libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, NEVER)
    if not done:
        raise RuntimeError('mallopt refused M_MMAP_MAX=0 / M_TRIM_THRESHOLD: glibc changed?')
    return ('allocator: glibc keeps freed memory for reuse (mallopt M_MMAP_MAX=0, '
            'M_TRIM_THRESHOLD=-1): no page faults on every step\'s large tensors; the '
            'resident set stays at its peak.')


__all__ = ['keep_freed_memory', 'glibc']
