"""Helpers of the benchmark tools: the machine a measurement names and a median of repeated timings."""

import os
import platform
import re
import statistics
import time

import torch
import torchvision


def median_seconds(step, repeats):
    step()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")  # what oneDNN and MKL pick kernels by


def cpu_info():
    """The CPU's model name and which of ISA_FLAGS it has, from /proc/cpuinfo."""
    model, flags = platform.processor(), set()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    return model, [flag for flag in ISA_FLAGS if flag in flags]


def library_versions():
    """oneDNN's and MKL's versions and the CPU capability ATen uses, as torch reports its build."""
    config = torch.__config__.show()
    found = {
        "onednn": re.search(r"MKL-DNN (v[\d.]+)", config),
        "mkl": re.search(r"Math Kernel Library Version ([\w.-]+)", config),
        "aten_cpu_capability": re.search(r"CPU capability usage: (\w+)", config),
    }
    return {name: m[1] if m else None for name, m in found.items()}


def machine(device, threads):
    model, isa = cpu_info()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "cpu": model,
        "isa": isa,
        "cpus": os.cpu_count(),
        "gpu": gpu,
        "device": str(device),
        "threads": threads,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        **library_versions(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),  # a cap set for the run, if any
        "python": platform.python_version(),
    }
