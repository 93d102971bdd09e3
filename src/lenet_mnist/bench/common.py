"""Helpers of the benchmark tools: the machine a measurement names, a median of repeated timings,
and the models a study trains."""

import os
import platform
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


def machine(device, threads):
    model = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "gpu": gpu,
        "device": str(device),
        "threads": threads,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


def trained_models(params):
    """Every model the study trains: each run once per seed, in params order."""
    return [(run, seed) for run in params["runs"] for seed in params["seeds"]]
