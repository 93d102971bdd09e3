import json

import pandas as pd
import torch
import yaml

from conftest import ROOT
from lenet_mnist.bench import bench_study, generated_study, training_flops_per_sample
from lenet_mnist.params import load_params, trained_models


def test_the_training_step_flops_are_the_layers_multiply_adds():
    """Forward: 2 FLOPs per multiply-add of each layer; backward: the weight gradients of every
    layer and the input gradients of every layer but the first (the images need none)."""
    conv1, conv2 = 6 * 28 * 28 * 1 * 25, 16 * 10 * 10 * 6 * 25
    linear = 400 * 120 + 120 * 84 + 84 * 10
    forward = 2 * (conv1 + conv2 + linear)
    backward = 2 * (conv1 + conv2 + linear) + 2 * (conv2 + linear)
    assert training_flops_per_sample(torch.device("cpu")) == forward + backward


def test_a_generated_study_has_distinct_valid_runs(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    study = generated_study(params, 500)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(study))
    loaded = load_params(tmp_path / "params.yaml")  # refuses duplicate runs and dangling names
    assert len(loaded["runs"]) == 500 and len(trained_models(loaded)) == 500 * len(params["seeds"])


def test_the_study_summary_adds_up_the_benchmark_files(tmp_path, params):
    columns = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for path, seconds, rss in (("train/tiny/0.tsv", 10.0, 900.0), ("train/tiny/1.tsv", 14.0, 950.0),
                               ("split.tsv", 2.0, 300.0)):
        (tmp_path / "b" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "b" / path).write_text(columns + f"{seconds}\t0:00:10\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")
    bench_study(params, tmp_path / "b", wall_s=20.0, out_path=tmp_path / "study.json")
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["rules"]["train"] == {"jobs": 2, "total_s": 24.0, "median_s": 12.0, "max_s": 14.0, "cpu_s": 12.0,
                                       "max_rss_mb": 950.0}
    # Every epoch of every seed over the run's subset: all of MNIST's training split (fraction 1).
    assert study["training_samples"] == len(params["seeds"]) * 2 * (60_000 - params["split"]["val_size"])
    assert study["training_samples_per_s"] == study["training_samples"] / 20.0
    assert pd.Series(study["rules"]).index.tolist() == ["split", "train"]
