"""`lenet-mnist bench-drift`: how much the headline numbers move with the CPU's kernels. Every
checkpoint of params.yaml is scored on the test set twice, each time in a fresh process: with
the kernels oneDNN and ATen pick on this machine, and with both capped at AVX2
(ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2), which is what an AVX2-only machine computes.
Training on another machine type moves the weights too; this measures scoring alone."""

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from lenet_mnist.bench.common import library_versions, machine
from lenet_mnist.checkpoint import load_checkpoint
from lenet_mnist.data import read_part
from lenet_mnist.files import write_json
from lenet_mnist.jobs import run_seeds, trainings
from lenet_mnist.model import predict, score, to_tensors
from lenet_mnist.params import load_params
from lenet_mnist.summarize import mean_ci

log = logging.getLogger(__name__)

KERNELS = {"this machine's": {}, "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


def test_accuracies(params_path, raw_dir, models_dir):
    """{"<run>/<seed>": test accuracy} of every checkpoint, as the evaluate stage computes it."""
    params = load_params(params_path)
    images, labels = to_tensors(*read_part(raw_dir, "test"))
    found = {}
    for run, seed in trainings(params):
        model, _ = load_checkpoint(Path(models_dir) / run / f"{seed}.pt")
        found[f"{run}/{seed}"] = score(predict(model, images, params["evaluate"]["batch_size"]), labels)[1]
    return found


def scored_with(kernels, params_path, raw_dir, models_dir):
    env = {**os.environ, **KERNELS[kernels]}
    command = [sys.executable, "-m", "lenet_mnist.bench.drift", str(params_path), str(raw_dir), str(models_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def bench_drift(params_path, raw_dir, models_dir, out_path):
    params = load_params(params_path)
    scored = {kernels: scored_with(kernels, params_path, raw_dir, models_dir) for kernels in KERNELS}
    runs = {}
    for run in params["runs"]:
        per_seed = {
            kernels: [found["accuracies"][f"{run}/{seed}"] for seed in run_seeds(params, run)]
            for kernels, found in scored.items()
        }
        native, avx2 = per_seed.values()
        runs[run] = {
            "native": mean_ci(native),
            "avx2": mean_ci(avx2),
            "max_seed_difference": max(abs(a - b) for a, b in zip(native, avx2)),
        }
    write_json(
        out_path,
        {
            "machine": machine(torch.device("cpu"), torch.get_num_threads()),
            "when": datetime.now(timezone.utc).isoformat(),
            "kernels": {kernels: found["libraries"] for kernels, found in scored.items()},
            "runs": runs,
        },
    )
    largest = max(runs, key=lambda run: runs[run]["max_seed_difference"])
    log.info("largest difference of a seed's test accuracy: %s, %.4f", largest, runs[largest]["max_seed_difference"])


if __name__ == "__main__":
    accuracies = test_accuracies(*sys.argv[1:4])
    print(json.dumps({"accuracies": accuracies, "libraries": library_versions()}))
