"""Keep freed tensor memory for the next training step (glibc malloc on Linux CPUs).

glibc serves every allocation above `M_MMAP_THRESHOLD` (dynamic, at most 32 MiB by default on
64-bit) with its own mmap and returns it to the kernel with munmap when freed. A training or
sampling step at 256 px frees its activations at the end of every step and allocates them again
at the start of the next, so each step page-faults its whole working set in afresh, zeroed by
the kernel: the CPU time goes to the kernel, not to the convolutions. Raising the mmap and trim
thresholds (`mallopt`, glibc's documented tunables `M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD`)
keeps freed blocks in the heap for reuse. The price is a higher resident set, so it is opt-in:
`GENMED_KEEP_FREED_MEMORY=1` makes the engine and `genmed sample` apply it on CPU
(benchmarks/cpu_allocator.py: 256-px pixel diffusion 1.87x faster, peak RSS +1.4 GiB; a
128^3 autoencoder step 1.47x faster, peak RSS +3.4 GiB, which would break the 12 GiB 3-D
target; docs/training.md). Without genmed, glibc's own
`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824`,
set before the process starts, does the same.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
THRESHOLD = 1 << 30  # bytes: blocks up to 1 GiB are reused, not returned to the kernel
ENV = "GENMED_KEEP_FREED_MEMORY"
_applied: bool | None = None


def keep_freed_memory(threshold: int = THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to `threshold` bytes, once per process.

    Returns True when set (now or earlier); False unless `GENMED_KEEP_FREED_MEMORY=1`, and off
    Linux/glibc (e.g. macOS, musl). The cost is a higher resident set: freed blocks stay mapped.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get(ENV, "0") != "1":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    _applied = all(mallopt(option, threshold) == 1 for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))
    return _applied
