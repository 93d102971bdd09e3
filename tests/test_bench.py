import json
import os
import statistics

import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from conftest import ROOT, SMOKE_PARAMS
from torch.utils.flop_counter import FlopCounterMode

from lenet_mnist.bench.common import trained_models
from lenet_mnist.bench.contender import BATCH, layer_passes, multiply_add_passes
from lenet_mnist.bench.scale import generated_study
from lenet_mnist.bench.study import bench_study
from lenet_mnist.bench.throughput import bench
from lenet_mnist.model import lenet
from lenet_mnist.params import load_params
from lenet_mnist.stacked import StackedLinear

CONV1, CONV2 = 6 * 28 * 28 * 1 * 25, 16 * 10 * 10 * 6 * 25  # the notebook's LeNet's multiply-adds per image


def test_the_multiply_add_passes_are_the_training_steps():
    """Forward and weight gradients of every layer, the input gradient of all but the first (the
    images need none); per image, the FLOPs that torch counts in a training step of the notebook's
    LeNet as written, which are 2 per multiply-add of those passes."""
    seeds = 2
    rows = multiply_add_passes(torch.device("cpu"), seeds, repeats=1)
    layers = ["conv1", "conv2", "linear1", "linear2", "linear3"]
    passes = {layer: ["forward", "input gradient", "weight and bias gradients"] for layer in layers}
    passes["conv1"].remove("input gradient")
    assert [(row["layer"], row["pass"]) for row in rows] == [(layer, p) for layer in layers for p in passes[layer]]
    per_image = [row["flops"] / (seeds * BATCH) for row in rows]
    assert per_image[:5] == [2 * CONV1] * 2 + [2 * CONV2] * 3
    x, y = torch.rand(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(lenet()(x), y).backward()
    linear = 400 * 120 + 120 * 84 + 84 * 10
    assert sum(per_image) == counter.get_total_flops() / BATCH == 2 * (2 * (CONV1 + CONV2 + linear) + CONV2 + linear)
    assert all(row["seconds"] > 0 for row in rows)


def test_the_passes_count_flops_as_torch_counts_an_ungrouped_convolution_and_a_stack_of_linear_layers():
    conv, x = torch.nn.Conv2d(6, 16, kernel_size=5), torch.rand(4, 6, 14, 14)
    linear, h = StackedLinear([torch.nn.Linear(400, 120) for _ in range(3)]), torch.rand(3, 4, 400)
    for layer, inputs, taps in ((conv, x, 6 * 25), (linear, h, 400)):
        out = layer(inputs)
        for name, call in layer_passes(layer, inputs, out, first=False).items():
            with FlopCounterMode(display=False) as counter:
                call()
            assert counter.get_total_flops() == 2 * out.numel() * taps, name


def test_bench_times_each_contender_in_a_fresh_process_set_up_as_its_counterpart(tmp_path, raw_dir):
    out = tmp_path / "results.json"
    bench({"lenet_relu_max": {"activation": "relu", "pool": "max"}}, 2, raw_dir, out, 1, 256, 2, "cpu")
    results = json.loads(out.read_text())
    with open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    assert results["machine"]["cpu"] == cpu and results["seeds"] == 2
    rounds = [{c.pop("contender"): c for c in r} for r in results["rounds"]]
    assert len(rounds) == 2 and all(list(r) == list(rounds[0]) for r in rounds)
    # Interleaved: each of ours right after what it is compared with, in every round.
    names = list(rounds[0])
    assert names.index("ours plain") == names.index("notebook plain") + 1
    assert names.index("ours augmented") == names.index("notebook augmented") + 1
    assert names.index("lenet_relu_max ours") == names.index("lenet_relu_max as written") + 1
    pids = [result["pid"] for r in rounds for result in r.values()]
    assert len(set(pids)) == len(pids) and os.getpid() not in pids
    for r in rounds:
        for name, result in r.items():
            assert result["threads"] == 1
            # The notebook's loop as the notebook ran it; ours as a train job runs.
            assert result["deterministic"] == (not name.startswith("notebook")), name
    for kind in ("plain", "augmented"):
        ratios = [r[f"ours {kind}"]["samples_per_s"] / r[f"notebook {kind}"]["samples_per_s"] for r in rounds]
        assert results[kind]["ratio"] == {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    steps = results["multiply_adds"]
    assert [(p["layer"], p["pass"]) for p in steps["passes"]] == [
        (p["layer"], p["pass"]) for p in rounds[0]["multiply-add passes"]["passes"]
    ]
    assert steps["step_over_passes"]["min"] <= steps["step_over_passes"]["median"] <= steps["step_over_passes"]["max"]
    assert set(results["targets"]) == {"plain", "augmented", "step_over_multiply_adds"}


def test_a_generated_study_has_distinct_valid_runs(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    study = generated_study(params, 500)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(study))
    loaded = load_params(tmp_path / "params.yaml")  # refuses duplicate runs and dangling names
    assert len(loaded["runs"]) == 500 and len(trained_models(loaded)) == 500 * len(params["seeds"])


def test_the_study_summary_adds_up_the_benchmark_files(tmp_path, params):
    columns = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for path, seconds, rss in (
        ("train/tiny/0.tsv", 10.0, 900.0),
        ("train/tiny/1.tsv", 14.0, 950.0),
        ("split.tsv", 2.0, 300.0),
    ):
        (tmp_path / "b" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "b" / path).write_text(columns + f"{seconds}\t0:00:10\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")
    bench_study(params, tmp_path / "b", wall_s=20.0, out_path=tmp_path / "study.json")
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["rules"]["train"] == {
        "jobs": 2,
        "total_s": 24.0,
        "median_s": 12.0,
        "max_s": 14.0,
        "cpu_s": 12.0,
        "max_rss_mb": 950.0,
    }
    # Every epoch of every seed over the run's subset: all of MNIST's training split (fraction 1).
    assert study["training_samples"] == len(params["seeds"]) * 2 * (60_000 - params["split"]["val_size"])
    assert study["training_samples_per_s"] == study["training_samples"] / 20.0
    assert pd.Series(study["rules"]).index.tolist() == ["split", "train"]


def test_every_run_is_trained_once_per_seed():
    params = load_params(SMOKE_PARAMS)
    assert trained_models(params) == [("small", 0), ("small", 1), ("larger", 0), ("larger", 1)]
