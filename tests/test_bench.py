import json

import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, SMOKE_PARAMS
from torch.utils.flop_counter import FlopCounterMode

from lenet_mnist.bench.common import trained_models
from lenet_mnist.bench.scale import generated_study
from lenet_mnist.bench.study import bench_study
from lenet_mnist.bench.throughput import BATCH, bench, layer_passes, multiply_add_passes, training_flops_per_sample
from lenet_mnist.params import load_params
from lenet_mnist.stacked import StackedLinear

CONV1, CONV2 = 6 * 28 * 28 * 1 * 25, 16 * 10 * 10 * 6 * 25  # the notebook's LeNet's multiply-adds per image


def test_the_training_step_flops_are_the_layers_multiply_adds():
    """Forward: 2 FLOPs per multiply-add of each layer; backward: the weight gradients of every
    layer and the input gradients of every layer but the first (the images need none)."""
    linear = 400 * 120 + 120 * 84 + 84 * 10
    forward = 2 * (CONV1 + CONV2 + linear)
    backward = 2 * (CONV1 + CONV2 + linear) + 2 * (CONV2 + linear)
    assert training_flops_per_sample(torch.device("cpu")) == forward + backward


def test_the_multiply_add_passes_are_the_training_steps():
    """Forward and weight gradients of every layer, the input gradient of all but the first; FLOPs
    of every seed's share of the stack, the same as the training step's."""
    seeds = 2
    rows = multiply_add_passes(torch.device("cpu"), seeds, repeats=1)
    layers = ["conv1", "conv2", "linear1", "linear2", "linear3"]
    passes = {layer: ["forward", "input gradient", "weight and bias gradients"] for layer in layers}
    passes["conv1"].remove("input gradient")
    assert [(row["layer"], row["pass"]) for row in rows] == [(layer, p) for layer in layers for p in passes[layer]]
    per_image = [row["flops"] / (seeds * BATCH) for row in rows]
    assert per_image[:5] == [2 * CONV1] * 2 + [2 * CONV2] * 3
    assert sum(per_image) == training_flops_per_sample(torch.device("cpu"))
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


def test_bench_writes_each_rate_and_the_multiply_add_bound(tmp_path, raw_dir):
    out = tmp_path / "results.json"
    bench({"lenet": {}}, 2, raw_dir, out, threads=1, samples=256, repeats=1, device_name="cpu")
    results = json.loads(out.read_text())
    assert results["machine"]["device"] == "cpu" and results["seeds"] == 2
    for kind in ("plain", "augmented"):
        assert results[kind]["speedup"] == results[kind]["our_samples_per_s"] / results[kind]["seed_samples_per_s"]
    multiply_adds = results["multiply_adds"]
    assert multiply_adds["seconds_per_step"] == sum(row["seconds"] for row in multiply_adds["passes"])
    bound = multiply_adds["if_only_multiply_adds"]
    assert bound["samples_per_s"] == 2 * BATCH / multiply_adds["seconds_per_step"]
    assert bound["plain_speedup"] == bound["samples_per_s"] / results["plain"]["seed_samples_per_s"]
    flops = results["flops"]
    assert bound["fraction_of_matmul"] == pytest.approx(
        flops["training_flops_per_sample"] * bound["samples_per_s"] / flops["matmul_flops_per_s"]
    )
    # 5x the notebook's augmented rate leaves this much of a step for everything but the multiply-adds:
    five_x = multiply_adds["targets"]["augmented"]
    assert five_x["samples_per_s"] == 5 * results["augmented"]["seed_samples_per_s"]
    assert five_x["rest_seconds_allowed"] == pytest.approx(
        2 * BATCH / five_x["samples_per_s"] - multiply_adds["seconds_per_step"]
    )
    assert five_x["rest_seconds_now"] == pytest.approx(
        2 * BATCH / results["augmented"]["our_samples_per_s"] - multiply_adds["seconds_per_step"]
    )
    forty_percent = multiply_adds["targets"]["fraction_of_matmul"]
    assert forty_percent["samples_per_s"] * flops["training_flops_per_sample"] == pytest.approx(
        0.4 * flops["matmul_flops_per_s"]
    )


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
