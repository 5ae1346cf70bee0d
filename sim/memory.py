"""Keep freed memory for reuse: the model's arrays are re-made every week at the same sizes.

A trust's tie arrays (tens of thousands of ties, eight fields) and the week's temporaries over them are a few
hundred kilobytes each. glibc's malloc serves blocks above its mmap threshold (128 KB at first) straight from the
kernel and gives them back when freed, so every week's new arrays are fresh pages, each zero-filled by a page fault
on first touch: measured on this project's machine, making the eight tie arrays of a 45,000-tie network cost 1.2 ms
that way against 0.08 ms from reused memory (benchmarks/bench_speedup.py gives the effect on a whole run). Raising
the threshold (and the trim threshold with it, so the freed top of the heap is kept) makes malloc reuse the
process's own freed memory instead. Results do not change: only where arrays live does.

Only glibc (Linux) has ``mallopt``; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1     # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 64 << 20     # blocks up to 64 MB come from (and return to) the process's heap
TRIM_THRESHOLD_BYTES = 256 << 20    # free heap kept for reuse before any is given back to the system


def reuse_freed_memory() -> bool:
    """Set glibc's thresholds (once per process; forked workers inherit them). True if they were set."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
