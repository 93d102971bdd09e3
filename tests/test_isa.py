"""CI runs on several machine types (AVX2 only, AVX-512, AVX-512 with AMX), whose oneDNN and ATen
kernels add in other orders. The numerics tests run here with this machine's kernels, and again
in a child process limited to AVX2's, so that any machine catches what an AVX2-only one would."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.isa

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def test_the_numerics_tests_pass_with_avx2_kernels():
    env = {**os.environ, **AVX2}
    capability = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert capability == "AVX2"  # the child really runs AVX2's kernels
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "numerics", "-p", "no:cacheprovider", str(ROOT / "tests")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout.splitlines()[-1]
