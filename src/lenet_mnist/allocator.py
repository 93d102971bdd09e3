"""Keep freed memory in the process for reuse, instead of handing it back to the kernel.

glibc's malloc serves a block of 128 KiB or more with its own mmap and unmaps it when freed, and
trims the top of its heap back as soon as 128 KiB are free there. A training step's activations
(2.4 MB for the first convolution's output on a batch of 128) are therefore mapped, page-faulted
and zeroed by the kernel anew at every step. With the thresholds raised, freed blocks are
reused; `lenet-mnist bench` measures the difference.
"""

import ctypes
import platform

# glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks above this still get their own mapping: the data arrays, which live the whole job.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20


def reuse_freed_memory():
    """Raise glibc's mmap and trim thresholds for this process; True if set (glibc only)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
