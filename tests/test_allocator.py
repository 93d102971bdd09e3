import platform
import subprocess
import sys

import pytest

# Holds six 4 MiB blocks at once and frees them, 50 times (as a training step does with its
# activations), and prints the minor page faults that took after a first round.
FAULTS = """
import resource, sys
import numpy as np
from lenet_mnist.allocator import reuse_freed_memory
if sys.argv[1] == "tuned":
    assert reuse_freed_memory()
[np.ones(1 << 20, dtype=np.float32) for _ in range(6)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    [np.ones(1 << 20, dtype=np.float32) for _ in range(6)]
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode):
    return int(subprocess.run([sys.executable, "-c", FAULTS, mode], check=True, capture_output=True, text=True).stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    round_pages = 6 * (4 << 20) // 4096
    assert page_faults("default") > 10 * round_pages  # the heap is trimmed and faulted in again
    assert page_faults("tuned") < round_pages  # less than one round's worth in all
