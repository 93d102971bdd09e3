import json
import os
import statistics

import pandas as pd
import pytest

from lenet_mnist.bench.common import ISA_FLAGS
from lenet_mnist.bench.study import bench_study
from lenet_mnist.bench.throughput import VMAP_SEEDS, bench


@pytest.mark.bench
def test_bench_times_each_contender_in_a_fresh_process_set_up_as_its_counterpart(tmp_path, raw_dir):
    out = tmp_path / "results.json"
    models = {"lenet_relu_max": {"activation": "relu", "pool": "max", "batchnorm": "none", "init": "default"}}
    bench({"models": models}, raw_dir, out, 1, 256, 2, "cpu")
    results = json.loads(out.read_text())
    with open("/proc/cpuinfo") as f:
        cpu = [line.split(":", 1)[1] for line in f if line.startswith(("model name", "flags"))]
    assert results["machine"]["cpu"] == cpu[0].strip()
    assert results["machine"]["isa"] == [flag for flag in ISA_FLAGS if flag in cpu[1].split()]
    assert results["machine"]["onednn"].startswith("v") and results["machine"]["aten_cpu_capability"]
    rounds = [{c.pop("contender"): c for c in r} for r in results["rounds"]]
    assert len(rounds) == 2 and all(list(r) == list(rounds[0]) for r in rounds)
    # Interleaved: each of ours right after what it is compared with, in every round.
    names = list(rounds[0])
    assert names.index("ours plain") == names.index("notebook plain") + 1
    assert names.index("vmap plain") == names.index("ours plain") + 1
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
    vmap = [r["vmap plain"]["samples_per_s"] / r["ours plain"]["samples_per_s"] for r in rounds]
    assert results["vmap"]["ratio_to_ours"]["median"] == statistics.median(vmap)
    assert results["vmap"]["seeds"] == len(VMAP_SEEDS)
    assert isinstance(results["vmap"]["bit_identical_beside_other_seeds"], bool)


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
    assert study["training_samples"] == params["seeds"] * 2 * (60_000 - params["split"]["val_size"])
    assert study["training_samples_per_s"] == study["training_samples"] / 20.0
    assert pd.Series(study["rules"]).index.tolist() == ["split", "train"]
